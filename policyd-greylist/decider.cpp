// The greylisting decider; see decider.h.
#include "decider.h"

#include <atomic>
#include <ctime>

#include "daemon/log.h"
#include "daemon/metrics.h"
#include "sender.h"

namespace greylist {

namespace {

using proto::policy::Action;
using proto::policy::ActionKind;
using proto::policy::Decision;

bool equals_nocase(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 'a' + 'A');
        if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 'a' + 'A');
        if (x != y) return false;
    }
    return true;
}

// RFC 5322 date-time in UTC, for the X-Greylist header.
std::string rfc5322_date(std::int64_t seconds) {
    std::time_t t = static_cast<std::time_t>(seconds);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buffer[64];
    std::size_t n = std::strftime(buffer, sizeof buffer, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    return std::string(buffer, n);
}

// Time of the last store-error log line (steady seconds), shared by deciders.
std::atomic<std::int64_t> last_error_log{-1};
std::atomic<std::uint64_t> errors_since_log{0};

}  // namespace

DeciderMetrics::DeciderMetrics(proto::metrics::Registry& r)
    : whitelisted_client(r.counter("greylist_whitelisted_total",
                                   "Requests passed by a static whitelist",
                                   {{"list", "client"}})),
      whitelisted_recipient(r.counter("greylist_whitelisted_total",
                                      "Requests passed by a static whitelist",
                                      {{"list", "recipient"}})),
      skipped(r.counter("greylist_skipped_total",
                        "Requests not greylisted: other protocol stage or no usable client "
                        "address")),
      store_errors(r.counter("greylist_store_errors_total",
                             "Decisions answered with on_store_error because Redis failed")),
      dry_run_defers(r.counter("greylist_dry_run_defers_total",
                               "Deferrals not sent because dry_run is on")),
      clients_auto_whitelisted(r.counter("greylist_clients_auto_whitelisted_total",
                                         "Client keys that reached auto_whitelist_clients")) {
    for (int v = 0; v < 5; ++v)
        verdicts[v] = &r.counter("greylist_verdicts_total", "Store verdicts by kind",
                                 {{"verdict", std::string(to_string(static_cast<Verdict>(v)))}});
}

GreylistDecider::GreylistDecider(std::shared_ptr<const Settings> settings,
                                 std::shared_ptr<GreylistStore> store,
                                 std::shared_ptr<const ClientKeyer> keyer,
                                 const proto::Clock& clock,
                                 std::shared_ptr<DeciderMetrics> metrics)
    : settings_(std::move(settings)),
      store_(std::move(store)),
      keyer_(std::move(keyer)),
      clock_(clock),
      metrics_(std::move(metrics)) {}

Decision GreylistDecider::defer(std::int64_t seconds, std::string_view recipient,
                                std::string reason) {
    const Settings& s = *settings_;
    if (s.dry_run) {
        metrics_->dry_run_defers.inc();
        return {Action::dunno(), "dry run, would defer: " + reason};
    }
    Action a = s.greylist_action;
    std::string text = format_greylist_text(s.greylist_text, seconds, recipient);
    a.text = a.text.empty() ? std::move(text) : a.text + " " + text;
    return {std::move(a), std::move(reason)};
}

Decision GreylistDecider::store_failed(const std::string& error) {
    metrics_->store_errors.inc();
    std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::steady_clock::now().time_since_epoch())
                           .count();
    std::uint64_t suppressed = errors_since_log.fetch_add(1);
    std::int64_t last = last_error_log.load();
    if (last != now && last_error_log.compare_exchange_strong(last, now)) {
        errors_since_log.store(0);
        proto::log::event(proto::log::Level::warning, "greylist store unavailable, answering on_store_error",
                          {{"error", error},
                           {"action", settings_->on_store_error.to_string()},
                           {"failures_not_logged", std::to_string(suppressed), true}});
    }
    return {settings_->on_store_error, "store error: " + error};
}

bool GreylistDecider::new_instance(std::string_view instance) {
    if (instance.empty()) return true;
    for (const auto& seen : instances_)
        if (seen == instance) return false;
    instances_[next_instance_].assign(instance);
    next_instance_ = (next_instance_ + 1) % instances_.size();
    return true;
}

boost::asio::awaitable<Decision> GreylistDecider::decide(const proto::policy::Request& request) {
    const Settings& s = *settings_;
    std::string_view state = request.get("protocol_state");
    std::string_view recipient = request.get("recipient");
    if (equals_nocase(state, "RCPT")) {
        if (recipient.empty()) {
            metrics_->skipped.inc();
            co_return Decision{Action::dunno(), "no recipient at RCPT"};
        }
    } else if (!equals_nocase(state, "DATA")) {
        metrics_->skipped.inc();
        co_return Decision{Action::dunno(), "not greylisted at this stage"};
    }
    auto address = proto::net::IpAddress::parse(request.get("client_address"));
    if (!address) {
        metrics_->skipped.inc();
        co_return Decision{Action::dunno(), "no valid client_address"};
    }
    std::string_view client_name = request.get("client_name");
    if (s.whitelist_clients->matches(client_name, *address)) {
        metrics_->whitelisted_client.inc();
        co_return Decision{Action::dunno(), "whitelisted client"};
    }
    if (!recipient.empty() && s.whitelist_recipients->matches(recipient)) {
        metrics_->whitelisted_recipient.inc();
        co_return Decision{Action::dunno(), "whitelisted recipient"};
    }

    Triplet triplet{keyer_->key(s.client_key, *address, client_name, s.ipv4_prefix, s.ipv6_prefix),
                    normalise_sender(request.get("sender")), lower_ascii(recipient)};
    const std::int64_t now = clock_.now_seconds();
    // The server holds this decider (and so settings_ and store_) until the
    // decision is made, even if a reload replaces it meanwhile.
    StoreResult result = co_await store_->check(triplet, now);
    if (!result.outcome) co_return store_failed(result.error);

    const Outcome& o = *result.outcome;
    metrics_->verdicts[static_cast<int>(o.verdict)]->inc();
    switch (o.verdict) {
        case Verdict::new_triplet:
            co_return defer(o.seconds, recipient, "new triplet");
        case Verdict::early_retry:
            co_return defer(o.seconds, recipient,
                            "early retry, " + std::to_string(o.seconds) + "s left");
        case Verdict::client_whitelisted:
            co_return Decision{Action::dunno(), "auto-whitelisted client"};
        case Verdict::known:
            co_return Decision{Action::dunno(), "known triplet"};
        case Verdict::passed: {
            if (o.client_now_whitelisted) {
                metrics_->clients_auto_whitelisted.inc();
                proto::log::event(proto::log::Level::info, "client auto-whitelisted",
                                  {{"client_key", s.privacy ? "(private)" : triplet.client}});
            }
            std::string reason = "retried after " + std::to_string(o.seconds) + "s";
            if (s.x_greylist_header && new_instance(request.get("instance"))) {
                Action prepend{ActionKind::prepend,
                               "X-Greylist: delayed " + std::to_string(o.seconds) +
                                   " seconds by policyd-greylist at " + s.hostname + "; " +
                                   rfc5322_date(now),
                               {}};
                co_return Decision{std::move(prepend), std::move(reason)};
            }
            co_return Decision{Action::dunno(), std::move(reason)};
        }
    }
    co_return Decision{Action::dunno(), "unexpected verdict"};
}

}  // namespace greylist
