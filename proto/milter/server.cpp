#include "milter/server.h"

#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <array>
#include <chrono>
#include <cstdio>
#include <unordered_map>
#include <unordered_set>

#include "daemon/log.h"
#include "daemon/metrics.h"
#include "milter/policy.h"
#include "net/stream_server.h"
#include "policy/decider.h"

namespace proto::milter {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

ServerOptions ServerOptions::from(const policy::ServerOptions& o) {
    ServerOptions m;
    m.max_sessions = o.max_connections;
    m.idle_timeout = o.idle_timeout;
    // Below the MTAs' wait for a reply (Sendmail's T=R: 10 s by default,
    // Postfix's milter_command_timeout 30 s), so the MTA hears from us, or
    // sees the session close and applies its default action, before it
    // gives up by itself.
    m.decision_timeout = std::min(o.decision_timeout, kMaxDecisionTimeout);
    m.unix_mode = o.unix_mode;
    m.log_decisions = o.log_decisions;
    return m;
}

namespace {

// What one SMTP session asked for, beyond the Session's facts.
struct Edits {
    std::vector<InsertHeader> headers;       // PREPEND, inserted at the top at end of message
    std::optional<std::string> quarantine;   // HOLD
    void clear() {
        headers.clear();
        quarantine.reset();
    }
};

std::string describe(const Reply& r) {
    if (auto* code = std::get_if<ReplyCode>(&r)) return code->text;
    if (std::holds_alternative<Continue>(r)) return "continue";
    if (std::holds_alternative<Discard>(r)) return "discard";
    if (std::holds_alternative<Tempfail>(r)) return "tempfail";
    if (std::holds_alternative<Reject>(r)) return "reject";
    return std::string(reply_name(code_of(r)));
}

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
    Impl(asio::io_context& io, ServerOptions o, metrics::Registry& r,
         policy::Server::DeciderSource d)
        : io(io),
          options(o),
          registry(r),
          decider_source(std::move(d)),
          in_flight(r.gauge("milter_requests_in_flight", "Milter stages waiting for a decision")),
          malformed(r.counter("milter_malformed_packets_total",
                              "Milter sessions closed for a malformed or oversized packet")),
          decision_timeouts(r.counter("milter_decision_timeouts_total",
                                      "Milter stages not decided before the deadline (session closed)")),
          idle_timeouts(r.counter("milter_session_timeouts_total",
                                  "Milter sessions closed while waiting for the MTA")),
          faults(r.counter("milter_internal_faults_total",
                           "Milter stages whose decider failed (session closed)")),
          over_limit(r.counter("milter_sessions_over_limit_total",
                               "Milter sessions answered with a tempfail at connect (max_sessions)")),
          edits_refused(r.counter("milter_edits_not_permitted_total",
                                  "Headers or quarantines the MTA did not permit in negotiation")),
          latency(r.histogram("milter_decision_seconds", "Time from milter command to reply")) {
        char prefix[64];
        std::snprintf(prefix, sizeof prefix, "milter.%x.%llx.", static_cast<unsigned>(::getpid()),
                      static_cast<unsigned long long>(
                          std::chrono::system_clock::now().time_since_epoch().count() & 0xffffffffffULL));
        instance_prefix = prefix;
    }
    ~Impl() { flush_log(); }

    void flush_log() {
        log_flush_posted = false;
        if (log_batch.empty()) return;
        log::write_lines(log_batch);
        log_batch.clear();
    }

    void log_line(std::string line) {
        log_batch += line;
        if (log_batch.size() >= kLogBatchBytes) {
            flush_log();
        } else if (!log_flush_posted) {
            log_flush_posted = true;
            asio::post(io, [self = shared_from_this()] { self->flush_log(); });
        }
    }

    asio::io_context& io;
    ServerOptions options;
    metrics::Registry& registry;
    policy::Server::DeciderSource decider_source;
    std::unique_ptr<net::StreamServer> streams;
    std::unordered_map<std::string, metrics::Counter*> by_action;
    std::unordered_set<const net::StreamConnection*> deciding;
    std::size_t sessions = 0;
    std::uint64_t instances = 0;
    std::string instance_prefix;
    Clock::time_point last_limit_log{};
    // Decision lines of one pass of the event loop, written with one
    // write(2) once the loop has run what is ready (as the policy server does).
    std::string log_batch;
    bool log_flush_posted = false;
    static constexpr std::size_t kLogBatchBytes = 64 * 1024;

    metrics::Gauge& in_flight;
    metrics::Counter& malformed;
    metrics::Counter& decision_timeouts;
    metrics::Counter& idle_timeouts;
    metrics::Counter& faults;
    metrics::Counter& over_limit;
    metrics::Counter& edits_refused;
    metrics::Histogram& latency;

    static net::StreamServerOptions stream_options(const ServerOptions& o) {
        // Sessions are always busy (see server.h): the watchdog enforces the
        // deadline each session sets, idle or deciding.
        return {o.max_sessions * 2, o.idle_timeout, std::max(o.decision_timeout, std::chrono::milliseconds(1)),
                o.unix_mode};
    }

    void start() {
        std::weak_ptr<Impl> weak = weak_from_this();
        net::StreamServerProtocol protocol;
        protocol.metric_prefix = "milter";
        protocol.name = "milter";
        protocol.serve = [weak](std::shared_ptr<net::StreamConnection> c) {
            return serve(weak.lock(), std::move(c));
        };
        protocol.on_busy_timeout = [weak](net::StreamConnection& c) {
            auto self = weak.lock();
            if (!self) return;
            if (self->deciding.contains(&c)) {
                self->decision_timeouts.inc();
                log::event(log::Level::warning,
                           "decision not made in time; closing the milter session without a reply",
                           {{"protocol", "milter"},
                            {"timeout_ms", std::to_string(self->options.decision_timeout.count()), true}});
            } else {
                self->idle_timeouts.inc();
            }
        };
        streams = std::make_unique<net::StreamServer>(io, stream_options(options), registry,
                                                      std::move(protocol));
    }

    metrics::Counter& action_counter(std::string_view keyword) {
        auto it = by_action.find(std::string(keyword));
        if (it != by_action.end()) return *it->second;
        auto& c = registry.counter("milter_requests_total", "Milter stages answered, by action",
                                   {{"action", std::string(keyword)}});
        by_action.emplace(std::string(keyword), &c);
        return c;
    }

    static asio::awaitable<void> serve(std::shared_ptr<Impl> self,
                                       std::shared_ptr<net::StreamConnection> c) {
        if (self) co_await self->serve_session(*c);
    }

    // The next complete packet (then in reader.packet()); false when the
    // session is over (closed, or a malformed packet, logged and counted).
    asio::awaitable<bool> next_packet(net::StreamConnection& c, PacketReader& reader,
                                      std::string& pending, std::array<char, 16384>& buf) {
        while (!c.closed) {
            std::string_view data;
            bool from_pending = !pending.empty();
            std::size_t n = 0;
            if (from_pending) {
                data = pending;
            } else {
                auto [ec, got] = co_await c.socket.async_read_some(asio::buffer(buf), use_nothrow);
                if (ec) co_return false;
                n = got;
                data = std::string_view(buf.data(), n);
            }
            auto result = reader.feed(data);
            if (result.status == ReadStatus::error) {
                malformed.inc();
                log::event(log::Level::warning, "malformed milter packet; closing the session",
                           {{"protocol", "milter"}, {"error", reader.error()}});
                co_return false;
            }
            if (from_pending)
                pending.erase(0, result.consumed);
            else if (result.consumed < n)
                pending.assign(data.substr(result.consumed));
            if (result.status == ReadStatus::done) co_return true;
        }
        co_return false;
    }

    // Ask the decider about one stage. nullopt: no answer (fault, timeout,
    // session closed), and the session ends without a reply.
    asio::awaitable<std::optional<StageVerdict>> decide(net::StreamConnection& c, const Session& s,
                                                        Stage stage) {
        policy::Request request = s.request(stage);
        auto started = Clock::now();
        c.deadline = started + options.decision_timeout;
        deciding.insert(&c);
        in_flight.inc();
        std::optional<policy::Decision> decision;
        try {
            auto decider = decider_source();
            decision = co_await decider->decide(request);
        } catch (const std::exception& e) {
            faults.inc();
            log::event(log::Level::error, "internal fault; no reply, closing the milter session",
                       {{"protocol", "milter"}, {"error", e.what()}});
        }
        deciding.erase(&c);
        in_flight.dec();
        if (!decision || c.closed) co_return std::nullopt;
        StageVerdict verdict = map_action(decision->action);
        auto took = Clock::now() - started;
        // One place counts, measures and logs each milter decision.
        action_counter(decision->action.keyword()).inc();
        latency.observe(std::chrono::duration<double>(took).count());
        if (verdict.unsupported)
            log::event(log::Level::warning, "action has no milter equivalent; continuing",
                       {{"protocol", "milter"}, {"action", decision->action.to_string()}});
        if (options.log_decisions) {
            std::string action = decision->action.to_string();
            std::string reply = describe(verdict.reply);
            std::string ms = log::millis(took);
            log_line(log::format_event(
                log::Level::info, "decision",
                {{"protocol", "milter"},
                 {"queue_id", request.get("queue_id")},
                 {"state", request.get("protocol_state")},
                 {"client", request.get("client_address")},
                 {"client_name", request.get("client_name")},
                 {"sasl_username", request.get("sasl_username")},
                 {"sender", request.get("sender")},
                 {"recipient", request.get("recipient")},
                 {"action", action},
                 {"reason", decision->reason},
                 {"reply", reply},
                 {"latency_ms", ms, true}}));
        }
        co_return verdict;
    }

    std::string new_instance() {
        char counter[24];
        std::snprintf(counter, sizeof counter, "%llx", static_cast<unsigned long long>(++instances));
        return instance_prefix + counter;
    }

    asio::awaitable<void> serve_session(net::StreamConnection& c) {
        // Never idle in the connection table's sense (see server.h).
        c.busy = true;
        ++sessions;
        struct Count {
            std::size_t& n;
            ~Count() { --n; }
        } count{sessions};
        bool over_cap = sessions > options.max_sessions;

        Session session;
        PacketReader reader(options.max_data);
        std::string pending;
        std::array<char, 16384> buf;
        std::uint32_t steps = 0;
        std::uint32_t actions = 0;
        Edits connection_edits, message_edits;
        // DISCARD at CONNECT or HELO: Postfix's milter8.c refuses a discard
        // there (libmilter's documentation: no action for a connection-level
        // function), so it is held and given to each message at MAIL, which
        // is what DISCARD in smtpd_client_restrictions means.
        bool discard_messages = false;
        std::string out;

        auto remember = [&](const StageVerdict& v) {
            Edits& e = session.in_message() ? message_edits : connection_edits;
            if (v.prepend) e.headers.push_back(*v.prepend);
            if (v.quarantine) e.quarantine = *v.quarantine;
        };
        // Commands that are not a policy stage are answered "continue" when
        // the negotiated steps say they are answered at all (codec.h table).
        auto acknowledge = [&](const Command& c) {
            if (expects_reply(code_of(c), steps)) out += encode(Reply(Continue{}));
        };

        while (!c.closed) {
            c.deadline = Clock::now() + options.idle_timeout;
            if (!co_await next_packet(c, reader, pending, buf)) break;
            auto decoded = decode_command(reader.packet());
            reader.next();
            if (!decoded.value) {
                malformed.inc();
                log::event(log::Level::warning, "malformed milter command; closing the session",
                           {{"protocol", "milter"}, {"error", decoded.error}});
                break;
            }
            Command& command = *decoded.value;
            out.clear();
            bool close_after = false;
            std::optional<StageVerdict> verdict;
            std::optional<Stage> stage;

            if (auto* o = std::get_if<OptionNegotiation>(&command)) {
                auto n = negotiate_policy_filter(*o);
                if (!n.reply) {
                    malformed.inc();
                    log::event(log::Level::warning, "milter negotiation failed; closing the session",
                               {{"protocol", "milter"}, {"error", n.error}});
                    break;
                }
                steps = n.reply->steps;
                actions = n.reply->actions;
                reader.set_max_data(std::max(options.max_data, max_data_for(steps)));
                out = encode(Reply(*n.reply));
            } else if (auto* m = std::get_if<Macros>(&command)) {
                session.define(*m);
            } else if (auto* x = std::get_if<Connect>(&command)) {
                session.connect(*x);
                if (over_cap) {
                    over_limit.inc();
                    auto now = Clock::now();
                    if (now - last_limit_log > std::chrono::seconds(1)) {
                        last_limit_log = now;
                        log::event(log::Level::warning,
                                   "max_sessions reached; tempfail at connect",
                                   {{"protocol", "milter"},
                                    {"max_sessions", std::to_string(options.max_sessions), true}});
                    }
                    out = encode(Reply(Tempfail{}));
                    close_after = true;
                } else {
                    stage = Stage::connect;
                }
            } else if (auto* h = std::get_if<Helo>(&command)) {
                session.helo(*h);
                stage = Stage::helo;
            } else if (auto* mail = std::get_if<Mail>(&command)) {
                message_edits.clear();
                session.mail(*mail, new_instance());
                if (discard_messages)
                    out = encode(Reply(Discard{}));
                else
                    stage = Stage::mail;
            } else if (auto* r = std::get_if<Rcpt>(&command)) {
                session.rcpt(*r);
                stage = Stage::rcpt;
            } else if (auto* hd = std::get_if<Header>(&command)) {
                session.header(*hd, steps & step::header_leading_space);
                acknowledge(command);
            } else if (std::holds_alternative<EndOfHeaders>(command)) {
                session.end_of_headers();
                acknowledge(command);
            } else if (auto* b = std::get_if<BodyChunk>(&command)) {
                session.body(b->bytes.size());
                acknowledge(command);
            } else if (auto* e = std::get_if<EndOfMessage>(&command)) {
                session.body(e->bytes.size());
                stage = Stage::end_of_message;
            } else if (std::holds_alternative<Data>(command) || std::holds_alternative<Unknown>(command)) {
                acknowledge(command);
            } else if (std::holds_alternative<Abort>(command)) {
                session.end_message();
                message_edits.clear();
            } else if (std::holds_alternative<QuitNewConnection>(command)) {
                // The MTA reuses this connection for another SMTP session.
                session = Session{};
                discard_messages = false;
                connection_edits.clear();
                message_edits.clear();
            } else if (std::holds_alternative<Quit>(command)) {
                break;
            }

            if (stage) {
                verdict = co_await decide(c, session, *stage);
                if (!verdict) break;
                remember(*verdict);
                if ((*stage == Stage::connect || *stage == Stage::helo) &&
                    std::holds_alternative<Discard>(verdict->reply)) {
                    discard_messages = true;
                    verdict->reply = Continue{};
                }
                if (*stage == Stage::rcpt && std::holds_alternative<Continue>(verdict->reply))
                    session.recipient_accepted();
                if (*stage == Stage::end_of_message) {
                    // Modifications come before the final reply (engine.c:
                    // only at end of message, and only those negotiated).
                    if (std::holds_alternative<Continue>(verdict->reply)) end_of_message_edits(
                        out, actions, connection_edits, message_edits);
                    session.end_message();
                    message_edits.clear();
                }
                out += encode(verdict->reply);
            }
            if (!out.empty()) {
                auto [ec, n] = co_await asio::async_write(c.socket, asio::buffer(out), use_nothrow);
                if (ec) break;
            }
            if (close_after) break;
        }
    }

    void end_of_message_edits(std::string& out, std::uint32_t actions, const Edits& connection,
                              const Edits& message) {
        for (const Edits* e : {&connection, &message}) {
            for (const auto& h : e->headers) {
                if (actions & action::add_headers) {
                    out += encode(Reply(h));
                } else {
                    edits_refused.inc();
                    log::event(log::Level::warning, "the MTA did not permit adding headers",
                               {{"protocol", "milter"}, {"header", h.name}});
                }
            }
        }
        const auto& q = message.quarantine ? message.quarantine : connection.quarantine;
        if (q) {
            if (actions & action::quarantine) {
                out += encode(Reply(Quarantine{*q}));
            } else {
                edits_refused.inc();
                log::event(log::Level::warning, "the MTA did not permit quarantine",
                           {{"protocol", "milter"}, {"reason", *q}});
            }
        }
    }
};

Server::Server(asio::io_context& io, ServerOptions options, metrics::Registry& registry,
               policy::Server::DeciderSource decider)
    : impl_(std::make_shared<Impl>(io, options, registry, std::move(decider))) {
    impl_->start();
}

Server::~Server() { impl_->streams.reset(); }

void Server::listen(const net::Endpoint& where) { impl_->streams->listen(where); }

void Server::update_options(const ServerOptions& options) {
    impl_->options = options;
    impl_->streams->update_options(Impl::stream_options(options));
}

void Server::drain(std::chrono::milliseconds timeout, std::function<void()> on_drained) {
    impl_->streams->drain(timeout, [self = impl_, done = std::move(on_drained)] {
        self->flush_log();
        if (done) done();
    });
}

std::size_t Server::connections() const { return impl_->streams->connections(); }

}  // namespace proto::milter
