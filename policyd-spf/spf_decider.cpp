// The policyd-spf decider (see spf_decider.h).
#include "spf_decider.h"

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "daemon/log.h"

namespace spf {

namespace asio = boost::asio;
using proto::policy::ActionKind;
using proto::policy::Decision;

namespace {
constexpr std::string_view kQueueFull = "SPF worker queue full";
}

SpfDecider::SpfDecider(Options options, std::shared_ptr<Engine> engine,
                       proto::metrics::Registry& metrics, const proto::Clock& clock)
    : options_(std::move(options)),
      engine_(std::move(engine)),
      metrics_(metrics),
      clock_(clock),
      pool_full_(metrics.counter("spf_pool_full_total",
                                 "SPF checks refused because the worker queue was full (temperror)")),
      instance_hits_(metrics.counter("spf_instance_cache_hits_total",
                                     "Requests answered from the per-message result")),
      inline_checks_(metrics.counter("spf_cached_checks_total",
                                     "Checks answered from the DNS cache on the I/O thread")) {
    // Resolved once: a labelled lookup per check costs more than the check
    // when every answer is cached.
    for (std::size_t id = 0; id < 2; ++id)
        for (std::size_t r = 0; r < kResults; ++r)
            checks_[id][r] = &metrics.counter(
                "spf_checks_total", "SPF evaluations by identity and result",
                {{"identity", id == 0 ? "helo" : "mailfrom"},
                 {"result", std::string(result_word(static_cast<Result>(r)))}});
}

namespace {

// Runs one check on the pool and completes on the caller's executor. A plain
// function, not a coroutine: g++ 12 destroys a capturing lambda temporary
// twice when it appears inside a co_await expression.
auto on_pool(std::shared_ptr<Engine> engine, asio::any_io_executor executor, Query query) {
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(Outcome)>(
        [engine = std::move(engine), executor = std::move(executor),
         query = std::move(query)](auto handler) mutable {
            auto shared = std::make_shared<decltype(handler)>(std::move(handler));
            bool queued = engine->pool.try_submit([engine, executor, shared, query] {
                Outcome out = engine->checker->check(query);
                asio::post(executor, [shared, out = std::move(out)]() mutable {
                    (*shared)(std::move(out));
                });
            });
            if (!queued) {
                Outcome busy{Result::temperror, {}, std::string(kQueueFull)};
                asio::post(executor, [shared, busy = std::move(busy)]() mutable {
                    (*shared)(std::move(busy));
                });
            }
        },
        asio::use_awaitable);
}

}  // namespace

asio::awaitable<Outcome> SpfDecider::check(Query query) {
    auto executor = co_await asio::this_coro::executor;
    std::size_t identity = query.identity == Identity::helo ? 0 : 1;
    bool query_was_forward_confirm = query.forward_confirm;
    // With every answer cached the check cannot block: run it here and save
    // two thread hand-offs; otherwise on the pool.
    query.cache_only = true;
    Outcome outcome = engine_->checker->check(query);
    if (outcome.needs_dns) {
        query.cache_only = false;
        outcome = co_await on_pool(engine_, executor, std::move(query));
    } else {
        inline_checks_.inc();
    }
    if (outcome.result == Result::temperror && outcome.problem == kQueueFull) pool_full_.inc();
    if (!query_was_forward_confirm) checks_[identity][static_cast<std::size_t>(outcome.result)]->inc();
    co_return outcome;
}

std::optional<Decision> SpfDecider::cached(const std::string& key) {
    auto it = instances_.find(key);
    if (it == instances_.end()) return std::nullopt;
    if (it->second.expires_ms <= clock_.now_ms()) {
        instances_.erase(it);
        return std::nullopt;
    }
    return it->second.decision;
}

void SpfDecider::remember(const std::string& key, const Decision& d) {
    // Later recipients of the message: the same refusal, or nothing more
    // (the header was prepended once already).
    Decision later = d;
    if (!later.action.refuses()) later = Decision{proto::policy::Action::dunno(), "already checked"};
    std::int64_t expires =
        clock_.now_ms() + std::chrono::duration_cast<std::chrono::milliseconds>(
                              options_.instance_cache_ttl).count();
    auto [it, fresh] = instances_.insert_or_assign(key, Remembered{later, expires});
    if (fresh) instance_order_.push_back(key);
    while (instances_.size() > options_.instance_cache_entries && !instance_order_.empty()) {
        instances_.erase(instance_order_.front());
        instance_order_.pop_front();
    }
    if (instance_order_.size() > 2 * options_.instance_cache_entries) {
        std::deque<std::string> live;
        for (auto& k : instance_order_)
            if (instances_.count(k)) live.push_back(std::move(k));
        instance_order_.swap(live);
    }
}

asio::awaitable<Decision> SpfDecider::decide(const proto::policy::Request& request) {
    Facts facts{std::string(request.get("client_address")), std::string(request.get("helo_name")),
                std::string(request.get("sender"))};
    std::string instance(request.get("instance"));
    std::string key;
    if (!instance.empty()) {
        key = instance + '\x1f' + facts.client_ip + '\x1f' + facts.sender;
        if (auto hit = cached(key)) {
            instance_hits_.inc();
            co_return *hit;
        }
    }
    auto finish = [&](Decision d) {
        if (!key.empty()) remember(key, d);
        return d;
    };
    if (auto why = skip_reason(options_, facts)) co_return finish(Decision{proto::policy::Action::dunno(), *why});

    // One lookup budget for the whole message: all checks end by this time.
    auto deadline = std::chrono::steady_clock::now() + options_.lookup_time;
    auto make_query = [&](Identity id, std::string sender, std::string domain) {
        Query q;
        q.identity = id;
        q.client_ip = facts.client_ip;
        q.sender = std::move(sender);
        q.domain = std::move(domain);
        q.helo = facts.helo;
        q.deadline = deadline;
        q.void_limit = options_.void_limit;
        q.receiver = options_.authserv_id;
        return q;
    };

    // helo_whitelist: only when the HELO name has the client's address, so a
    // forged HELO of a whitelisted name does not skip the checks.
    if (helo_whitelisted(options_, facts.helo)) {
        Query q = make_query(Identity::helo, "postmaster@" + facts.helo, facts.helo);
        q.forward_confirm = true;
        Outcome o = co_await check(std::move(q));
        if (o.result == Result::pass)
            co_return finish(Decision{proto::policy::Action::dunno(), "whitelisted HELO"});
    }

    for (const auto& domain : options_.domain_whitelist) {
        Outcome o = co_await check(make_query(Identity::mailfrom, "postmaster@" + domain, domain));
        if (o.result == Result::pass)
            co_return finish(Decision{proto::policy::Action::dunno(), "domain_whitelist " + domain});
    }

    std::optional<Outcome> helo, mailfrom;
    if (!facts.helo.empty() && options_.helo_reject != HeloReject::no_check)
        helo = co_await check(make_query(Identity::helo, "postmaster@" + facts.helo, facts.helo));
    if (options_.mail_from_reject != MailFromReject::no_check) {
        if (facts.sender.empty()) {
            // RFC 7208 2.4: a null sender is checked as postmaster@HELO,
            // which is the HELO evaluation itself.
            if (helo)
                mailfrom = helo;
            else if (!facts.helo.empty())
                mailfrom = co_await check(
                    make_query(Identity::helo, "postmaster@" + facts.helo, facts.helo));
        } else {
            mailfrom = co_await check(
                make_query(Identity::mailfrom, facts.sender, facts.sender_domain()));
        }
    }
    co_return finish(verdict(options_, facts, helo, mailfrom));
}

}  // namespace spf
