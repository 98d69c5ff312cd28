// The queue manager; see qmgr.h.
#include "qmgr/qmgr.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <ctime>
#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "daemon/blocking.h"
#include "daemon/metrics.h"
#include "maillog.h"
#include "message_header.h"
#include "queue/queue_store.h"
#include "smtp/dsn.h"

namespace mta::qmgr {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

std::string seconds_text(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, s < 10 ? "%.2g" : "%.0f", s);
    return buf;
}

}  // namespace

std::string make_bounce(const std::string& myhostname, const std::string& queue_id,
                        const std::string& sender, const std::vector<Failure>& failures,
                        std::string_view original_message, std::int64_t arrival, bool delayed,
                        const ReportOptions& options) {
    const bool success = !failures.empty() && std::all_of(failures.begin(), failures.end(), [](const Failure& f) {
        return f.action == "delivered" || f.action == "relayed";
    });
    std::string boundary = queue_id + "." + std::to_string(std::time(nullptr)) + "/" + myhostname;
    std::string m;
    m += "From: MAILER-DAEMON@" + myhostname + " (Mail Delivery System)\r\n";
    m += "Subject: " + std::string(success ? "Successful Mail Delivery Report"
                                   : delayed ? "Delayed Mail (still being retried)"
                                             : "Undelivered Mail Returned to Sender") + "\r\n";
    m += "To: " + sender + "\r\n";
    m += "Auto-Submitted: auto-replied\r\n";
    m += "MIME-Version: 1.0\r\n";
    m += "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"" + boundary + "\"\r\n";
    m += "Content-Transfer-Encoding: 8bit\r\n";
    m += "Date: " + rfc5322_date(std::time(nullptr)) + "\r\n";
    m += "\r\nThis is a MIME-encapsulated message.\r\n\r\n";
    m += "--" + boundary + "\r\n";
    m += "Content-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n";
    m += "This is the mail system at host " + myhostname + ".\r\n\r\n";
    m += success   ? "Your message was successfully delivered to the destination(s)\r\n"
                     "listed below. If the message was delivered to mailbox you will\r\n"
                     "receive no further notifications. Otherwise you may still receive\r\n"
                     "notifications of mail delivery errors from other systems.\r\n\r\n"
         : delayed ? "Your message could not be delivered yet; it will be retried.\r\n\r\n"
                   : "I'm sorry to have to inform you that your message could not\r\n"
                     "be delivered to one or more recipients.\r\n\r\n";
    for (const auto& f : failures) m += "<" + f.recipient + ">: " + f.diagnostic + "\r\n";
    m += "\r\n--" + boundary + "\r\n";
    m += "Content-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n";
    // RFC 3464 2.2: per-message fields, then one block per recipient.
    m += "Reporting-MTA: dns; " + myhostname + "\r\n";
    m += "X-Postfix-Queue-ID: " + queue_id + "\r\n";
    m += "X-Postfix-Sender: rfc822; " + sender + "\r\n";
    if (!options.envid.empty()) m += "Original-Envelope-Id: " + options.envid + "\r\n";
    m += "Arrival-Date: " + rfc5322_date(static_cast<std::time_t>(arrival)) + "\r\n";
    for (const auto& f : failures) {
        m += "\r\nFinal-Recipient: rfc822; " + f.recipient + "\r\n";
        if (!f.orcpt.empty())
            m += "Original-Recipient: " + f.orcpt + "\r\n";
        else if (!f.original.empty() && f.original != f.recipient)
            m += "Original-Recipient: rfc822;" + f.original + "\r\n";
        m += "Action: " + (delayed && f.action == "failed" ? std::string("delayed") : f.action) + "\r\n";
        m += "Status: " + f.status + "\r\n";
        m += "Diagnostic-Code: " + f.diagnostic + "\r\n";
    }
    m += "\r\n--" + boundary + "\r\n";
    // RFC 3462 / RFC 3461 4.3: the whole message unless RET=HDRS (or too
    // large for bounce_size_limit, or a success report), else its header.
    const bool full = !success && !options.headers_only && original_message.size() <= options.size_limit;
    if (full) {
        m += std::string("Content-Description: ") + (delayed ? "Delayed Message" : "Undelivered Message") +
             "\r\nContent-Type: message/rfc822\r\n\r\n";
        m += std::string(original_message);
        if (!original_message.empty() && !original_message.ends_with("\r\n")) m += "\r\n";
    } else {
        m += std::string("Content-Description: ") + (success ? "Message Headers" : "Undelivered Message Headers") +
             "\r\nContent-Type: text/rfc822-headers\r\n\r\n";
        auto end = original_message.find("\r\n\r\n");
        m += std::string(original_message.substr(0, end == std::string_view::npos ? original_message.size() : end + 2));
    }
    m += "\r\n--" + boundary + "--\r\n";
    return m;
}

struct QueueManager::Impl : std::enable_shared_from_this<Impl> {
    Impl(asio::any_io_executor io, asio::any_io_executor blocking, queue::QueueStore& store)
        : io(io), blocking(blocking), store(store) {}

    asio::any_io_executor io, blocking;
    queue::QueueStore& store;
    Settings settings;
    proto::metrics::Registry* metrics = nullptr;
    bool stopping = false;
    std::size_t running = 0;
    std::deque<std::string> ready;           // ids waiting for a delivery slot
    std::set<std::string> known;             // ids ready, running or waiting
    std::map<std::string, std::shared_ptr<asio::steady_timer>> waiting;  // deferred
    std::map<std::string, std::chrono::seconds> backoff;

    void schedule(const std::string& id) {
        if (stopping) return;
        if (!known.insert(id).second) return;
        if (metrics) metrics->gauge("queue_messages", "Messages in the queue (active and deferred)").set(
                         static_cast<std::int64_t>(known.size()));
        ready.push_back(id);
        pump();
    }

    // Per-destination slots: a waiter holds a timer that release() cancels
    // to hand its slot over.
    struct Slots {
        std::size_t busy = 0;
        std::deque<std::shared_ptr<asio::steady_timer>> waiters;
    };
    std::map<std::string, Slots> destinations;

    asio::awaitable<void> acquire(const std::string& destination, std::size_t limit) {
        auto& slots = destinations[destination];
        if (slots.busy < std::max<std::size_t>(limit, 1)) {
            ++slots.busy;
            co_return;
        }
        auto timer = std::make_shared<asio::steady_timer>(io, asio::steady_timer::time_point::max());
        slots.waiters.push_back(timer);
        boost::system::error_code ec;
        co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
        // Woken by release(): the slot is ours (busy was not decremented).
    }

    void release(const std::string& destination) {
        auto it = destinations.find(destination);
        if (it == destinations.end()) return;
        if (!it->second.waiters.empty()) {
            auto next = it->second.waiters.front();
            it->second.waiters.pop_front();
            next->cancel();
            return;
        }
        if (--it->second.busy == 0) destinations.erase(it);
    }

    // One recipient group to a smtp destination: its addresses from DNS,
    // tried in order until one is not a server failure (smtp(8)).
    asio::awaitable<std::pair<delivery::Attempt, std::string>> deliver_smtp(delivery::Nexthop hop, std::string sender,
                                                                            std::vector<std::string> rcpts,
                                                                            const std::string& content, std::string id,
                                                                            const delivery::DsnParameters* dsn) {
        auto resolve = settings.resolve;
        auto session_for = settings.smtp_session;
        const std::size_t session_limit = settings.mx_session_limit;
        delivery::Attempt attempt;
        attempt.recipients.resize(rcpts.size());
        std::string relay = "none";
        delivery::Destination destination = *hop.destination;
        auto lookup = resolve(destination);
        delivery::Resolution found = co_await std::move(lookup);
        if (found.kind != delivery::Resolution::Kind::deliver) {
            attempt.code = found.kind == delivery::Resolution::Kind::bounce ? 550 : 450;
            attempt.enhanced = found.dsn;
            attempt.error = found.reason;
            co_return std::make_pair(std::move(attempt), relay);
        }
        if (found.targets.empty()) {
            attempt.code = 450;
            attempt.enhanced = "4.4.3";
            attempt.error = "no address to deliver to for " + destination.text();
        }
        std::size_t sessions = 0;
        for (const auto& target : found.targets) {
            delivery::Nexthop at = hop;
            at.endpoint.kind = proto::net::Endpoint::Kind::inet;
            at.endpoint.host = target.address;
            at.endpoint.port = target.port;
            delivery::SessionOptions options = session_for(hop, target);
            // Sessions are shared only where everything that shaped them is the same.
            const std::string key = target.address + ":" + std::to_string(target.port) + "|" + target.host + "|" +
                                    delivery::tls_level_name(options.tls.level) + "|" +
                                    (options.sasl ? options.sasl->user : "") + "|" + options.helo_name;
            std::unique_ptr<delivery::Session> session = take_idle(key);
            if (session) {
                auto reuse = session->transfer(sender, rcpts, content, dsn);
                attempt = co_await std::move(reuse);
                // A kept session the server has closed meanwhile: a new one.
                if (attempt.try_next) session.reset();
                else attempt.connected = true;
            }
            if (!session) {
                delivery::Attempt opened;
                opened.recipients.resize(rcpts.size());
                auto op = delivery::Session::open(io, at, options, opened);
                session = co_await std::move(op);
                if (!session && opened.tls_handshake_failed && options.tls.level == delivery::TlsLevel::may) {
                    // TLS_README: at "may", a failed handshake is retried in the clear.
                    maillog::line("smtp", id + ": " + opened.error + "; retrying without TLS");
                    options.tls_skip = true;
                    opened = delivery::Attempt{};
                    opened.recipients.resize(rcpts.size());
                    auto again = delivery::Session::open(io, at, options, opened);
                    session = co_await std::move(again);
                }
                if (!opened.tls_log.empty()) maillog::line("smtp", opened.tls_log);
                if (session) {
                    auto transfer = session->transfer(sender, rcpts, content, dsn);
                    attempt = co_await std::move(transfer);
                } else {
                    attempt = std::move(opened);
                }
            }
            if (session) asio::co_spawn(io, keep_or_close(shared_from_this(), key, std::move(session)), asio::detached);
            relay = attempt.connected ? target.text() : "none";
            // Postfix's maillog field for a reused connection.
            if (attempt.connected && attempt.conn_use > 1) relay += ", conn_use=" + std::to_string(attempt.conn_use);
            if (!attempt.try_next) break;
            maillog::line("smtp", id + ": " + attempt.error);
            if (attempt.connected && ++sessions >= session_limit) break;
        }
        co_return std::make_pair(std::move(attempt), relay);
    }

    // Postfix's connection cache (smtp_connection_cache_on_demand): a
    // session that ended its transaction cleanly is kept, after an RSET,
    // for smtp_connection_cache_time_limit, for the next message to the
    // same address.
    struct IdleSession {
        std::unique_ptr<delivery::Session> session;
        std::shared_ptr<asio::steady_timer> timer;
    };
    std::multimap<std::string, IdleSession> idle;

    std::unique_ptr<delivery::Session> take_idle(const std::string& key) {
        auto it = idle.find(key);
        if (it == idle.end()) return nullptr;
        auto session = std::move(it->second.session);
        it->second.timer->cancel();
        idle.erase(it);
        return session;
    }

    static asio::awaitable<void> close_session(std::unique_ptr<delivery::Session> session) {
        co_await session->quit();
    }

    // self keeps the queue manager alive until the spawned coroutine ends.
    asio::awaitable<void> keep_or_close(std::shared_ptr<Impl> self, std::string key,
                                        std::unique_ptr<delivery::Session> session) {
        bool keep = !stopping && settings.connection_cache && session->reusable();
        if (keep) keep = co_await session->reset();
        if (!keep || stopping) {
            co_await session->quit();
            co_return;
        }
        auto timer = std::make_shared<asio::steady_timer>(io, settings.connection_cache_time);
        idle.emplace(key, IdleSession{std::move(session), timer});
        timer->async_wait([self, key, timer](boost::system::error_code ec) {
            if (ec) return;  // taken, or stopping
            auto range = self->idle.equal_range(key);
            for (auto it = range.first; it != range.second; ++it) {
                if (it->second.timer != timer) continue;
                auto expired = std::move(it->second.session);
                self->idle.erase(it);
                asio::co_spawn(self->io, close_session(std::move(expired)), asio::detached);
                return;
            }
        });
    }

    void pump() {
        while (!stopping && running < settings.process_limit && !ready.empty()) {
            std::string id = ready.front();
            ready.pop_front();
            ++running;
            asio::co_spawn(io, deliver_one(id), asio::detached);
        }
    }

    // Callers name the lambda first: g++ 12 destroys a capturing lambda
    // temporary twice when it stands inside a co_await expression.
    template <typename F>
    auto on_blocking(F f) {
        return proto::daemon::run_blocking<decltype(f())>(blocking, io, std::move(f));
    }

    void defer(const std::string& id, std::vector<std::pair<std::string, std::string>> why = {},
               bool warned = false) {
        auto& b = backoff[id];
        b = b.count() == 0 ? settings.minimal_backoff
                           : std::min(settings.maximal_backoff, b * 2);
        // The note `queue list` shows; advisory, so written off this thread
        // and never waited for.
        queue::DeferInfo info{static_cast<std::int64_t>(std::time(nullptr) + b.count()), warned, std::move(why)};
        asio::post(blocking, [store = &store, id, info = std::move(info)] { store->write_defer_info(id, info); });
        auto timer = std::make_shared<asio::steady_timer>(io, b);
        waiting[id] = timer;
        timer->async_wait([self = shared_from_this(), id, timer](boost::system::error_code ec) {
            auto it = self->waiting.find(id);
            if (it != self->waiting.end() && it->second == timer) self->waiting.erase(it);
            if (ec) return;
            self->known.erase(id);
            self->schedule(id);
        });
    }

    asio::awaitable<void> deliver_one(std::string id) {
        auto self = shared_from_this();
        std::string error;
        auto load = [this, id, &error] { return store.load(queue::Place::active, id, &error); };
        auto loaded = co_await on_blocking(std::move(load));
        if (!loaded) {
            if (error != "No such file or directory") {
                maillog::line("qmgr", id + ": warning: corrupt queue file: " + error);
                auto quarantine = [this, id] { return store.move(id, queue::Place::active, queue::Place::corrupt); };
                co_await on_blocking(std::move(quarantine));
            }
            finish(id, false);
            co_return;
        }
        auto& env = loaded->envelope;
        const auto arrival = env.arrival;
        const std::time_t now = std::time(nullptr);
        const bool expired = now - arrival >= (env.sender.empty() ? settings.bounce_queue_lifetime
                                                                  : settings.maximal_queue_lifetime)
                                                   .count();
        // Group recipients by nexthop; one conversation per nexthop.
        std::map<std::string, std::vector<std::size_t>> groups;
        std::map<std::string, delivery::Nexthop> hops;
        std::vector<Route> routes(env.recipients.size());
        std::vector<std::size_t> done;
        std::vector<Failure> failures;
        bool deferred = false;
        std::vector<std::pair<std::string, std::string>> waiting_why;  // for `queue list`
        auto log_result = [&](std::size_t i, const std::string& relay, std::string_view dsn,
                              std::string_view status, const std::string& text) {
            if (metrics)
                metrics
                    ->counter("qmgr_deliveries_total", "Recipient delivery attempts, by transport and status",
                              {{"transport", routes[i].nexthop.lmtp ? "lmtp" : "smtp"}, {"status", std::string(status)}})
                    .inc();
            double delay = static_cast<double>(std::time(nullptr) - arrival);
            std::string line = id + ": to=<" + maillog::printable(env.recipients[i].address) + ">";
            if (env.recipients[i].original != env.recipients[i].address)
                line += ", orig_to=<" + maillog::printable(env.recipients[i].original) + ">";
            line += ", relay=" + relay + ", delay=" + seconds_text(delay) +
                    ", delays=0/0/0/0, dsn=" + std::string(dsn) + ", status=" + std::string(status) +
                    " (" + maillog::printable(text) + ")";
            maillog::line(routes[i].nexthop.lmtp ? "lmtp" : "smtp", line);
        };
        for (std::size_t i = 0; i < env.recipients.size(); ++i) {
            if (env.recipients[i].done) continue;
            routes[i] = env.filter.empty() || !settings.filter_route
                            ? settings.route(env.recipients[i].address)
                            : settings.filter_route(env.filter, env.recipients[i].address);
            const auto& r = routes[i];
            if (r.kind == Route::Kind::deliver) {
                groups[r.nexthop.text].push_back(i);
                hops[r.nexthop.text] = r.nexthop;
            } else if (r.kind == Route::Kind::bounce || expired) {
                log_result(i, "none", "5.0.0", "bounced", r.reason);
                if (proto::smtp::notify_of(env.recipients[i].dsn_notify).failure)
                    failures.push_back({env.recipients[i].address, env.recipients[i].original, "5.0.0",
                                        "X-Postfix; " + r.reason, "failed", env.recipients[i].dsn_orcpt});
                done.push_back(i);
            } else {
                log_result(i, "none", "4.0.0", "deferred", r.reason);
                waiting_why.emplace_back(env.recipients[i].address, r.reason);
                deferred = true;
            }
        }
        std::vector<Failure> successes;  // NOTIFY=SUCCESS (RFC 3461 4.1)
        const auto notify = [&](std::size_t i) { return proto::smtp::notify_of(env.recipients[i].dsn_notify); };
        for (auto& [name, indexes] : groups) {
            std::vector<std::string> rcpts;
            delivery::DsnParameters dsn{env.dsn_ret, env.dsn_envid, {}};
            for (auto i : indexes) {
                rcpts.push_back(routes[i].address);
                dsn.recipients.emplace_back(env.recipients[i].dsn_notify, env.recipients[i].dsn_orcpt);
            }
            const delivery::Nexthop hop = hops[name];
            const std::size_t limit = hop.lmtp ? settings.lmtp_concurrency : settings.concurrency;
            const std::string slot = (hop.lmtp ? "lmtp:" : "smtp:") + name;
            co_await acquire(slot, limit);
            delivery::Attempt attempt;
            std::string relay = name;
            if (hop.destination) {
                auto op = deliver_smtp(hop, env.sender, rcpts, loaded->content, id, &dsn);
                auto result = co_await std::move(op);
                attempt = std::move(result.first);
                relay = std::move(result.second);
            } else {
                delivery::SessionOptions options;
                options.helo_name = settings.helo_name;
                options.timeouts = settings.timeouts;
                options.peer = hop.text;
                options.line_length_limit = hop.lmtp ? settings.lmtp_line_length_limit
                                                     : delivery::SessionOptions{}.line_length_limit;
                auto op = delivery::deliver(io, hop, options, env.sender, rcpts, loaded->content, &dsn);
                attempt = co_await std::move(op);
            }
            release(slot);
            for (std::size_t k = 0; k < indexes.size(); ++k) {
                std::size_t i = indexes[k];
                const auto& rr = attempt.recipients[k];
                int code = rr.code ? rr.code : attempt.code;
                std::string enhanced = rr.code ? rr.enhanced : attempt.enhanced;
                std::string text = rr.code ? std::to_string(rr.code) + " " +
                                                 (rr.enhanced.empty() ? "" : rr.enhanced + " ") + rr.text
                                           : attempt.error;
                if (enhanced.empty()) enhanced = std::to_string(code / 100) + ".0.0";
                if (!attempt.connected) relay = "none";
                if (code >= 200 && code < 300) {
                    log_result(i, relay, enhanced, "sent", text);
                    done.push_back(i);
                    // A mailbox (LMTP) is the end: "delivered". A server that
                    // took the DSN request on reports itself; one that did
                    // not offer DSN leaves us to say "relayed" (RFC 3461 5.2.2).
                    if (notify(i).success && (hop.lmtp || !attempt.dsn_offered))
                        successes.push_back({env.recipients[i].address, env.recipients[i].original, enhanced,
                                             (hop.lmtp ? "lmtp; " : "smtp; ") + text,
                                             hop.lmtp ? "delivered" : "relayed", env.recipients[i].dsn_orcpt});
                } else if (code >= 500 || (expired && code >= 400)) {
                    log_result(i, relay, enhanced, "bounced", text);
                    if (notify(i).failure)
                        failures.push_back({env.recipients[i].address, env.recipients[i].original, enhanced,
                                            (!rr.code && !attempt.connected ? "X-Postfix; "
                                             : hop.lmtp                    ? "lmtp; "
                                                                           : "smtp; ") +
                                                text,
                                            "failed", env.recipients[i].dsn_orcpt});
                    done.push_back(i);
                } else {
                    log_result(i, relay, enhanced, "deferred", text);
                    waiting_why.emplace_back(env.recipients[i].address, text);
                    deferred = true;
                }
            }
        }
        // A bounce (or notice) that cannot be delivered: the postmaster's, with
        // notify_classes = 2bounce; never a notice about a notice.
        if (!failures.empty() && env.sender.empty() && env.protocol != kNoticeProtocol &&
            !settings.double_bounce_notice_recipient.empty()) {
            std::string to = settings.double_bounce_notice_recipient;
            auto op = queue_notice(id, to, failures, loaded->content, arrival, report_options(env));
            std::string notice_id = co_await std::move(op);
            if (!notice_id.empty())
                maillog::line("bounce", id + ": postmaster non-delivery notification: " + notice_id);
        }
        if (!failures.empty() && !env.sender.empty() && !settings.bounce_notice_recipient.empty()) {
            std::string to = settings.bounce_notice_recipient;
            ReportOptions headers = report_options(env);
            headers.headers_only = true;  // the postmaster's copy: the header only (Postfix)
            auto op = queue_notice(id, to, failures, loaded->content, arrival, headers);
            std::string notice_id = co_await std::move(op);
            if (!notice_id.empty())
                maillog::line("bounce", id + ": postmaster non-delivery notification: " + notice_id);
        }
        if (!failures.empty() && !env.sender.empty()) {
            queue::Envelope bounce;
            bounce.id = store.new_id();
            bounce.arrival = std::time(nullptr);
            bounce.sender = "";
            bounce.recipients.push_back({env.sender, env.sender, false, 0});
            bounce.protocol = "local";
            std::string content = make_bounce(settings.helo_name, id, env.sender, failures, loaded->content,
                                              arrival, false, report_options(env));
            auto write = [this, &bounce, &content] { return store.commit(bounce, content); };
            int err = co_await on_blocking(std::move(write));
            if (err) {
                // Without its bounce, the failure must not be forgotten: retry later.
                maillog::line("qmgr", id + ": warning: cannot queue the bounce: " + std::strerror(err));
                deferred = true;
                done.erase(std::remove_if(done.begin(), done.end(),
                                          [&](std::size_t i) {
                                              return std::any_of(failures.begin(), failures.end(),
                                                                 [&](const Failure& f) {
                                                                     return f.recipient == env.recipients[i].address;
                                                                 });
                                          }),
                           done.end());
            } else {
                maillog::line("bounce", id + ": sender non-delivery notification: " + bounce.id);
                schedule(bounce.id);
            }
        }
        if (!successes.empty() && !env.sender.empty()) {
            // Best effort: the deliveries happened whether or not the report is written.
            queue::Envelope report;
            report.id = store.new_id();
            report.arrival = std::time(nullptr);
            report.recipients.push_back({env.sender, env.sender, false, 0});
            report.protocol = "local";
            std::string content = make_bounce(settings.helo_name, id, env.sender, successes, loaded->content,
                                              arrival, false, report_options(env));
            auto write = [this, &report, &content] { return store.commit(report, content); };
            int err = co_await on_blocking(std::move(write));
            if (err) {
                maillog::line("qmgr", id + ": warning: cannot queue the delivery report: " + std::strerror(err));
            } else {
                maillog::line("bounce", id + ": sender delivery status notification: " + report.id);
                schedule(report.id);
            }
        }
        // RFC 3464 "delayed": once, after delay_warning_time, for the
        // recipients still waiting whose NOTIFY allows it (the default does).
        // Whether the delay notice went out already (the note of the last
        // deferral): read only where one may be due, not for every delivery.
        bool warned = false;
        if (deferred && settings.delay_warning_time.count() > 0) {
            auto read_note = [this, id] { return store.read_defer_info(id); };
            std::optional<queue::DeferInfo> note = co_await on_blocking(std::move(read_note));
            warned = note && note->warned;
        }
        if (deferred && !warned && !env.sender.empty() && settings.delay_warning_time.count() > 0 &&
            std::time(nullptr) - arrival >= settings.delay_warning_time.count()) {
            std::vector<Failure> delays;
            for (const auto& [rcpt, reason] : waiting_why)
                for (const auto& r : env.recipients)
                    if (r.address == rcpt && proto::smtp::notify_of(r.dsn_notify).delay) {
                        delays.push_back({r.address, r.original, "4.0.0", "X-Postfix; " + reason, "delayed",
                                          r.dsn_orcpt});
                        break;
                    }
            if (!delays.empty()) {
                queue::Envelope notice;
                notice.id = store.new_id();
                notice.arrival = std::time(nullptr);
                notice.recipients.push_back({env.sender, env.sender, false, 0});
                notice.protocol = "local";
                ReportOptions options = report_options(env);
                options.headers_only = true;  // a delay notice carries the header only, as Postfix's
                std::string content =
                    make_bounce(settings.helo_name, id, env.sender, delays, loaded->content, arrival, true, options);
                auto write = [this, &notice, &content] { return store.commit(notice, content); };
                int err = co_await on_blocking(std::move(write));
                if (!err) {
                    warned = true;
                    maillog::line("bounce", id + ": sender delay notification: " + notice.id);
                    schedule(notice.id);
                }
            }
        }
        if (!done.empty()) {
            auto mark = [this, id, &env, &done] { return store.mark_done(id, env, done); };
            int err = co_await on_blocking(std::move(mark));
            if (err) maillog::line("qmgr", id + ": warning: cannot update the queue file: " + std::strerror(err));
        }
        std::size_t remaining = 0;
        for (std::size_t i = 0; i < env.recipients.size(); ++i)
            if (!env.recipients[i].done && std::find(done.begin(), done.end(), i) == done.end()) ++remaining;
        if (remaining == 0) maillog::line("qmgr", id + ": removed");
        finish(id, remaining > 0 && deferred, std::move(waiting_why), warned);
    }

    // A report to the postmaster, from the null sender; its protocol marks it
    // so that its own failure makes no further notice. The new id, or "".
    static constexpr const char* kNoticeProtocol = "notice";
    asio::awaitable<std::string> queue_notice(std::string id, std::string to, std::vector<Failure> failures,
                                              std::string original, std::int64_t arrival, ReportOptions options) {
        queue::Envelope notice;
        notice.id = store.new_id();
        notice.arrival = std::time(nullptr);
        notice.recipients.push_back({to, to, false, 0});
        notice.protocol = kNoticeProtocol;
        std::string content = make_bounce(settings.helo_name, id, to, failures, original, arrival, false, options);
        auto write = [this, &notice, &content] { return store.commit(notice, content); };
        int err = co_await on_blocking(std::move(write));
        if (err) {
            maillog::line("qmgr", id + ": warning: cannot queue the postmaster notice: " + std::strerror(err));
            co_return std::string();
        }
        schedule(notice.id);
        co_return notice.id;
    }

    ReportOptions report_options(const queue::Envelope& env) const {
        ReportOptions o;
        o.envid = env.dsn_envid;
        o.headers_only = env.dsn_ret == "HDRS";
        o.size_limit = settings.bounce_size_limit;
        return o;
    }

    void finish(const std::string& id, bool retry, std::vector<std::pair<std::string, std::string>> why = {},
                bool warned = false) {
        --running;
        if (retry && !stopping) {
            defer(id, std::move(why), warned);
        } else {
            known.erase(id);
            backoff.erase(id);
            if (metrics) metrics->gauge("queue_messages", "Messages in the queue (active and deferred)").set(
                             static_cast<std::int64_t>(known.size()));
        }
        pump();
    }
};

QueueManager::QueueManager(asio::any_io_executor io, asio::any_io_executor blocking,
                           queue::QueueStore& store)
    : impl_(std::make_shared<Impl>(io, blocking, store)) {}

QueueManager::~QueueManager() { stop(); }

void QueueManager::configure(Settings settings) { impl_->settings = std::move(settings); }

void QueueManager::set_metrics(proto::metrics::Registry* metrics) { impl_->metrics = metrics; }

void QueueManager::start() {
    auto removed = impl_->store.remove_incomplete();
    if (removed) maillog::line("qmgr", "removed " + std::to_string(removed) + " incomplete queue file(s)");
    for (const auto& id : impl_->store.list(queue::Place::active)) impl_->schedule(id);
}

void QueueManager::enqueue(const std::string& id) { impl_->schedule(id); }

void QueueManager::flush() {
    auto waiting = impl_->waiting;
    for (auto& [id, timer] : waiting) timer->cancel();
    impl_->waiting.clear();
    for (auto& [id, timer] : waiting) {
        impl_->known.erase(id);
        impl_->schedule(id);
    }
    for (const auto& id : impl_->store.list(queue::Place::active)) impl_->schedule(id);
}

void QueueManager::stop() {
    impl_->stopping = true;
    for (auto& [key, idle] : impl_->idle) idle.timer->cancel();
    impl_->idle.clear();
    for (auto& [id, timer] : impl_->waiting) timer->cancel();
    impl_->waiting.clear();
}

std::size_t QueueManager::in_flight() const { return impl_->running; }

}  // namespace mta::qmgr
