#include "policy/server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <array>
#include <unordered_map>

#include "daemon/log.h"
#include "daemon/metrics.h"
#include "net/stream_server.h"
#include "policy/decider.h"

namespace proto::policy {

namespace asio = boost::asio;
using Protocol = asio::generic::stream_protocol;
using Clock = std::chrono::steady_clock;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

// What a connection carries between requests besides its socket.
struct Session {
    explicit Session(const Limits& limits) : parser(limits) {}
    RequestParser parser;
    std::string pending;  // bytes received after the end of the current request
};


}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
    Impl(asio::io_context& io, ServerOptions o, metrics::Registry& r, DeciderSource d)
        : io(io),
          options(o),
          registry(r),
          decider_source(std::move(d)),
          in_flight(r.gauge("policy_requests_in_flight", "Requests waiting for a decision")),
          malformed(r.counter("policy_malformed_requests_total",
                              "Requests rejected by the protocol parser")),
          decision_timeouts(r.counter("policy_decision_timeouts_total",
                                      "Requests not decided before the deadline (no reply)")),
          faults(r.counter("policy_internal_faults_total",
                           "Requests whose decider failed (no reply)")),
          latency(r.histogram("policy_decision_seconds", "Time from request to reply")) {}
    ~Impl() { flush_log(); }

    asio::io_context& io;
    ServerOptions options;
    metrics::Registry& registry;
    DeciderSource decider_source;
    std::unique_ptr<net::StreamServer> streams;  // set right after construction
    std::unordered_map<std::string, metrics::Counter*> by_action;
    // Decision lines of one pass of the event loop, written with one write(2)
    // when the loop has run what is ready (at most kLogBatchBytes held).
    std::string log_batch;
    bool log_flush_posted = false;
    static constexpr std::size_t kLogBatchBytes = 64 * 1024;

    metrics::Gauge& in_flight;
    metrics::Counter& malformed;
    metrics::Counter& decision_timeouts;
    metrics::Counter& faults;
    metrics::Histogram& latency;

    static net::StreamServerOptions stream_options(const ServerOptions& o) {
        return {o.max_connections, o.idle_timeout, o.decision_timeout, o.unix_mode, o.read_timeout};
    }

    void start() {
        std::weak_ptr<Impl> weak = weak_from_this();
        net::StreamServerProtocol protocol;
        protocol.metric_prefix = "policy";
        protocol.name = "policy";
        protocol.serve = [weak](std::shared_ptr<net::StreamConnection> c) {
            return serve(weak.lock(), std::move(c));
        };
        protocol.on_busy_timeout = [weak](net::StreamConnection&) {
            auto self = weak.lock();
            if (!self) return;
            self->decision_timeouts.inc();
            log::warning("decision not made within " +
                         std::to_string(self->options.decision_timeout.count()) +
                         " ms; closing the connection without a reply");
        };
        streams = std::make_unique<net::StreamServer>(io, stream_options(options), registry,
                                                      std::move(protocol));
    }

    metrics::Counter& action_counter(std::string_view keyword) {
        auto it = by_action.find(std::string(keyword));
        if (it != by_action.end()) return *it->second;
        auto& c = registry.counter("policy_requests_total", "Requests answered, by action",
                                   {{"action", std::string(keyword)}});
        by_action.emplace(std::string(keyword), &c);
        return c;
    }

    // Wait for the next complete request (then in s.parser.request()); false
    // when the connection is done.
    asio::awaitable<bool> next_request(net::StreamConnection& c, Session& s,
                                       std::array<char, 8192>& buf) {
        while (!c.closed) {
            std::string_view data;
            bool from_pending = !s.pending.empty();
            std::size_t n = 0;
            if (from_pending) {
                data = s.pending;
            } else {
                auto [ec, got] = co_await c.socket.async_read_some(asio::buffer(buf), use_nothrow);
                if (ec) co_return false;
                n = got;
                data = std::string_view(buf.data(), n);
            }
            auto result = s.parser.feed(data);
            if (result.status == ParseStatus::error) {
                malformed.inc();
                log::event(log::Level::warning, "malformed request; closing the connection",
                           {{"client", c.peer}, {"error", s.parser.error()}});
                co_return false;
            }
            // Any byte of a request starts its read deadline.
            if (result.status == ParseStatus::need_more && !data.empty())
                c.request_begun(options.read_timeout);
            if (from_pending)
                s.pending.erase(0, result.consumed);
            else if (result.consumed < n)
                s.pending.assign(data.substr(result.consumed));
            if (result.status == ParseStatus::done) co_return true;
        }
        co_return false;
    }

    void flush_log() {
        log_flush_posted = false;
        if (log_batch.empty()) return;
        log::write_lines(log_batch);
        log_batch.clear();
    }

    void log_decision(const Request& r, const Decision& d, Clock::duration took) {
        std::string action = d.action.to_string();
        std::string ms = log::millis(took);
        log_batch += log::format_event(log::Level::info, "decision",
                   {{"protocol", "policy"},
                    {"queue_id", r.get("queue_id")},
                    {"state", r.get("protocol_state")},
                    {"client", r.get("client_address")},
                    {"client_name", r.get("client_name")},
                    {"sasl_username", r.get("sasl_username")},
                    {"sender", r.get("sender")},
                    {"recipient", r.get("recipient")},
                    {"action", action},
                    {"reason", d.reason},
                    {"latency_ms", ms, true}});
        if (log_batch.size() >= kLogBatchBytes) {
            flush_log();
        } else if (!log_flush_posted && !log_batch.empty()) {
            log_flush_posted = true;
            asio::post(io, [self = shared_from_this()] { self->flush_log(); });
        }
    }

    // A static coroutine holding self: the connection keeps this alive.
    static asio::awaitable<void> serve(std::shared_ptr<Impl> self,
                                       std::shared_ptr<net::StreamConnection> c) {
        if (self) co_await self->serve_requests(*c);
    }

    asio::awaitable<void> serve_requests(net::StreamConnection& c) {
        Session session(options.limits);
        std::array<char, 8192> buf;
        std::string reply;
        while (!c.closed && !streams->draining()) {
            session.parser.next();
            if (!co_await next_request(c, session, buf)) break;
            const Request* request = &session.parser.request();
            auto started = Clock::now();
            c.busy = true;
            c.partial = false;
            in_flight.inc();
            c.deadline = started + options.decision_timeout;
            std::optional<Decision> decision;
            try {
                auto decider = decider_source();
                decision = co_await decider->decide(*request);
            } catch (const std::exception& e) {
                faults.inc();
                log::event(log::Level::error, "internal fault; no reply, closing the connection",
                           {{"error", e.what()}, {"queue_id", request->get("queue_id")}});
            }
            c.busy = false;
            in_flight.dec();
            if (!decision || c.closed) break;
            auto took = Clock::now() - started;
            // One place counts, measures, logs and writes each answered request.
            action_counter(decision->action.keyword()).inc();
            latency.observe(std::chrono::duration<double>(took).count());
            if (options.log_decisions) log_decision(*request, *decision, took);
            reply.assign("action=");
            reply += decision->action.to_string();
            reply += "\n\n";
            auto [ec, n] = co_await asio::async_write(c.socket, asio::buffer(reply), use_nothrow);
            if (ec) break;
            c.idle(options.idle_timeout);
        }
    }
};

Server::Server(asio::io_context& io, ServerOptions options, metrics::Registry& registry,
               DeciderSource decider)
    : impl_(std::make_shared<Impl>(io, options, registry, std::move(decider))) {
    impl_->start();
}

Server::~Server() { impl_->streams.reset(); }

void Server::listen(const net::Endpoint& where) { impl_->streams->listen(where); }

// The stream server keeps the unix_mode its sockets were made with.
void Server::update_options(const ServerOptions& options) {
    impl_->options = options;
    impl_->streams->update_options(Impl::stream_options(options));
}

// Idle connections close now; those mid-decision finish and close after replying.
void Server::drain(std::chrono::milliseconds timeout, std::function<void()> on_drained) {
    impl_->streams->drain(timeout, [self = impl_, done = std::move(on_drained)] {
        self->flush_log();
        if (done) done();
    });
}

std::size_t Server::connections() const { return impl_->streams->connections(); }

}  // namespace proto::policy
