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
#include <list>
#include <unordered_map>

#include "daemon/log.h"
#include "daemon/metrics.h"
#include "net/endpoint_asio.h"
#include "policy/decider.h"

namespace proto::policy {

namespace asio = boost::asio;
using Protocol = asio::generic::stream_protocol;
using Clock = std::chrono::steady_clock;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

struct Connection {
    explicit Connection(Protocol::socket s, const Limits& limits)
        : socket(std::move(s)), watchdog(socket.get_executor()), parser(limits) {}

    void close() {
        if (closed) return;
        closed = true;
        boost::system::error_code ignored;
        socket.shutdown(Protocol::socket::shutdown_both, ignored);
        socket.close(ignored);
        watchdog.cancel();
    }

    Protocol::socket socket;
    asio::steady_timer watchdog;
    Clock::time_point deadline;
    RequestParser parser;
    std::string pending;  // bytes received after the end of the current request
    bool deciding = false;
    bool closed = false;
};

std::string millis(Clock::duration d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f",
                  std::chrono::duration<double, std::milli>(d).count());
    return buf;
}

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
    Impl(asio::io_context& io, ServerOptions o, metrics::Registry& r, DeciderSource d)
        : io(io),
          options(o),
          registry(r),
          decider_source(std::move(d)),
          open(r.gauge("policy_connections_open", "Open policy connections")),
          in_flight(r.gauge("policy_requests_in_flight", "Requests waiting for a decision")),
          accepted(r.counter("policy_connections_total", "Accepted policy connections")),
          refused(r.counter("policy_connections_refused_total",
                            "Connections closed at once because max_connections was reached")),
          malformed(r.counter("policy_malformed_requests_total",
                              "Requests rejected by the protocol parser")),
          idle_closed(r.counter("policy_idle_timeouts_total", "Connections closed when idle")),
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
    std::vector<std::unique_ptr<net::Acceptor>> acceptors;
    std::list<std::shared_ptr<Connection>> connections;
    bool draining = false;
    std::function<void()> on_drained;
    std::unique_ptr<asio::steady_timer> drain_timer;
    std::unordered_map<std::string, metrics::Counter*> by_action;
    Clock::time_point last_refusal_log{};
    // Decision lines of one pass of the event loop, written with one write(2)
    // when the loop has run what is ready (at most kLogBatchBytes held).
    std::string log_batch;
    bool log_flush_posted = false;
    static constexpr std::size_t kLogBatchBytes = 64 * 1024;

    metrics::Gauge& open;
    metrics::Gauge& in_flight;
    metrics::Counter& accepted;
    metrics::Counter& refused;
    metrics::Counter& malformed;
    metrics::Counter& idle_closed;
    metrics::Counter& decision_timeouts;
    metrics::Counter& faults;
    metrics::Histogram& latency;

    metrics::Counter& action_counter(std::string_view keyword) {
        auto it = by_action.find(std::string(keyword));
        if (it != by_action.end()) return *it->second;
        auto& c = registry.counter("policy_requests_total", "Requests answered, by action",
                                   {{"action", std::string(keyword)}});
        by_action.emplace(std::string(keyword), &c);
        return c;
    }

    // The watchdog never sleeps longer than the shortest timeout, so a
    // deadline moved closer is still seen in time without cancelling timers
    // on every request.
    Clock::duration watchdog_cap() const {
        return std::min(options.idle_timeout, options.decision_timeout);
    }

    asio::awaitable<void> watch(std::shared_ptr<Connection> c) {
        while (!c->closed) {
            c->watchdog.expires_at(std::min(c->deadline, Clock::now() + watchdog_cap()));
            co_await c->watchdog.async_wait(use_nothrow);
            if (c->closed) break;
            if (Clock::now() < c->deadline) continue;
            if (c->deciding) {
                decision_timeouts.inc();
                log::warning("decision not made within " +
                             std::to_string(options.decision_timeout.count()) +
                             " ms; closing the connection without a reply");
            } else {
                idle_closed.inc();
            }
            c->close();
        }
    }

    asio::awaitable<void> accept_loop(net::Acceptor& acceptor) {
        auto self = shared_from_this();
        while (acceptor.is_open()) {
            auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
            if (ec) {
                if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
                // EMFILE and friends: back off briefly instead of spinning.
                log::warning("accept: " + ec.message());
                asio::steady_timer pause(io, std::chrono::milliseconds(50));
                co_await pause.async_wait(use_nothrow);
                continue;
            }
            if (draining) continue;  // socket closes as it goes out of scope
            if (connections.size() >= options.max_connections) {
                refused.inc();
                auto now = Clock::now();
                if (now - last_refusal_log > std::chrono::seconds(1)) {
                    last_refusal_log = now;
                    log::warning("max_connections (" + std::to_string(options.max_connections) +
                                 ") reached; closing new connections");
                }
                continue;
            }
            // Replies are small and awaited: send them now, not after Nagle's delay.
            if (socket.local_endpoint(ec).protocol().family() != AF_UNIX)
                socket.set_option(asio::ip::tcp::no_delay(true), ec);
            auto c = std::make_shared<Connection>(std::move(socket), options.limits);
            c->deadline = Clock::now() + options.idle_timeout;
            connections.push_front(c);
            auto where = connections.begin();
            accepted.inc();
            open.inc();
            asio::co_spawn(io, watch(c), asio::detached);
            asio::co_spawn(io, serve(c, where), asio::detached);
        }
    }

    // Wait for the next complete request (then in c.parser.request()); false
    // when the connection is done.
    asio::awaitable<bool> next_request(Connection& c, std::array<char, 8192>& buf) {
        while (!c.closed) {
            std::string_view data;
            bool from_pending = !c.pending.empty();
            std::size_t n = 0;
            if (from_pending) {
                data = c.pending;
            } else {
                auto [ec, got] = co_await c.socket.async_read_some(asio::buffer(buf), use_nothrow);
                if (ec) co_return false;
                n = got;
                data = std::string_view(buf.data(), n);
            }
            auto result = c.parser.feed(data);
            if (result.status == ParseStatus::error) {
                malformed.inc();
                log::event(log::Level::warning, "malformed request; closing the connection",
                           {{"error", c.parser.error()}});
                co_return false;
            }
            if (from_pending)
                c.pending.erase(0, result.consumed);
            else if (result.consumed < n)
                c.pending.assign(data.substr(result.consumed));
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
        std::string ms = millis(took);
        log_batch += log::format_event(log::Level::info, "decision",
                   {{"queue_id", r.get("queue_id")},
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

    asio::awaitable<void> serve(std::shared_ptr<Connection> c,
                                std::list<std::shared_ptr<Connection>>::iterator where) {
        auto self = shared_from_this();
        std::array<char, 8192> buf;
        std::string reply;
        while (!c->closed && !draining) {
            c->parser.next();
            if (!co_await next_request(*c, buf)) break;
            const Request* request = &c->parser.request();
            auto started = Clock::now();
            c->deciding = true;
            in_flight.inc();
            c->deadline = started + options.decision_timeout;
            std::optional<Decision> decision;
            try {
                auto decider = decider_source();
                decision = co_await decider->decide(*request);
            } catch (const std::exception& e) {
                faults.inc();
                log::event(log::Level::error, "internal fault; no reply, closing the connection",
                           {{"error", e.what()}, {"queue_id", request->get("queue_id")}});
            }
            c->deciding = false;
            in_flight.dec();
            if (!decision || c->closed) break;
            auto took = Clock::now() - started;
            // One place counts, measures, logs and writes each answered request.
            action_counter(decision->action.keyword()).inc();
            latency.observe(std::chrono::duration<double>(took).count());
            if (options.log_decisions) log_decision(*request, *decision, took);
            reply.assign("action=");
            reply += decision->action.to_string();
            reply += "\n\n";
            auto [ec, n] = co_await asio::async_write(c->socket, asio::buffer(reply), use_nothrow);
            if (ec) break;
            c->deadline = Clock::now() + options.idle_timeout;
        }
        c->close();
        connections.erase(where);
        open.dec();
        if (draining && connections.empty()) finish_drain();
    }

    void finish_drain() {
        flush_log();
        if (!on_drained) return;
        auto done = std::move(on_drained);
        on_drained = nullptr;
        if (drain_timer) drain_timer->cancel();
        done();
    }
};

Server::Server(asio::io_context& io, ServerOptions options, metrics::Registry& registry,
               DeciderSource decider)
    : impl_(std::make_shared<Impl>(io, options, registry, std::move(decider))) {}

Server::~Server() {
    for (auto& a : impl_->acceptors) {
        boost::system::error_code ignored;
        a->close(ignored);
    }
    for (auto& c : impl_->connections) c->close();
}

void Server::listen(const net::Endpoint& where) {
    auto acceptor = std::make_unique<net::Acceptor>(impl_->io);
    net::bind_acceptor(*acceptor, where, impl_->options.unix_mode);
    auto& ref = *acceptor;
    impl_->acceptors.push_back(std::move(acceptor));
    asio::co_spawn(impl_->io, impl_->accept_loop(ref), asio::detached);
}

void Server::update_options(const ServerOptions& options) {
    auto unix_mode = impl_->options.unix_mode;
    impl_->options = options;
    impl_->options.unix_mode = unix_mode;
}

void Server::drain(std::chrono::milliseconds timeout, std::function<void()> on_drained) {
    auto& impl = *impl_;
    impl.draining = true;
    impl.on_drained = std::move(on_drained);
    for (auto& a : impl.acceptors) {
        boost::system::error_code ignored;
        a->close(ignored);
    }
    // Idle connections close now; those mid-decision finish and close after replying.
    for (auto& c : impl.connections)
        if (!c->deciding) c->close();
    if (impl.connections.empty()) {
        asio::post(impl.io, [self = impl_] { self->finish_drain(); });
        return;
    }
    impl.drain_timer = std::make_unique<asio::steady_timer>(impl.io, timeout);
    impl.drain_timer->async_wait([self = impl_](boost::system::error_code ec) {
        if (ec) return;
        log::warning("drain timeout; closing " + std::to_string(self->connections.size()) +
                     " connection(s) still waiting for a decision");
        for (auto& c : self->connections) c->close();
        self->finish_drain();
    });
}

std::size_t Server::connections() const { return impl_->connections.size(); }

}  // namespace proto::policy
