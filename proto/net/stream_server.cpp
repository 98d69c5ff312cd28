#include "net/stream_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <list>
#include <vector>

#include "daemon/log.h"
#include "daemon/metrics.h"

namespace proto::net {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

StreamConnection::StreamConnection(StreamProtocol::socket s)
    : socket(std::move(s)), watchdog(socket.get_executor()) {}

void StreamConnection::close() {
    if (closed) return;
    closed = true;
    boost::system::error_code ignored;
    socket.shutdown(StreamProtocol::socket::shutdown_both, ignored);
    socket.close(ignored);
    watchdog.cancel();
}

struct StreamServer::Impl : std::enable_shared_from_this<StreamServer::Impl> {
    using Connections = std::list<std::shared_ptr<StreamConnection>>;

    Impl(asio::io_context& io, StreamServerOptions o, metrics::Registry& r, StreamServerProtocol p)
        : io(io),
          options(o),
          protocol(std::move(p)),
          open(r.gauge(protocol.metric_prefix + "_connections_open",
                       "Open " + protocol.name + " connections")),
          accepted(r.counter(protocol.metric_prefix + "_connections_total",
                             "Accepted " + protocol.name + " connections")),
          refused(r.counter(protocol.metric_prefix + "_connections_refused_total",
                            "Connections closed at once because max_connections was reached")),
          idle_closed(r.counter(protocol.metric_prefix + "_idle_timeouts_total",
                                "Connections closed when idle")) {}

    asio::io_context& io;
    StreamServerOptions options;
    StreamServerProtocol protocol;
    std::vector<std::unique_ptr<Acceptor>> acceptors;
    Connections connections;
    bool draining = false;
    std::function<void()> on_drained;
    std::unique_ptr<asio::steady_timer> drain_timer;
    Clock::time_point last_refusal_log{};

    metrics::Gauge& open;
    metrics::Counter& accepted;
    metrics::Counter& refused;
    metrics::Counter& idle_closed;

    // The watchdog never sleeps longer than the shortest timeout, so a
    // deadline moved closer is seen in time without cancelling the timer on
    // every request.
    Clock::duration watchdog_cap() const {
        auto cap = options.idle_timeout;
        if (options.busy_timeout.count() > 0) cap = std::min(cap, options.busy_timeout);
        return cap;
    }

    asio::awaitable<void> watch(std::shared_ptr<StreamConnection> c) {
        auto self = shared_from_this();
        while (!c->closed) {
            c->watchdog.expires_at(std::min(c->deadline, Clock::now() + watchdog_cap()));
            co_await c->watchdog.async_wait(use_nothrow);
            if (c->closed) break;
            if (Clock::now() < c->deadline) continue;
            if (c->busy) {
                if (options.busy_timeout.count() == 0) continue;
                if (protocol.on_busy_timeout) protocol.on_busy_timeout(*c);
            } else {
                idle_closed.inc();
            }
            c->close();
        }
    }

    void refuse(StreamProtocol::socket& socket) {
        refused.inc();
        if (!protocol.refusal.empty()) {
            // Best effort, never waiting: the client learns to come back later.
            boost::system::error_code ignored;
            socket.non_blocking(true, ignored);
            socket.write_some(asio::buffer(protocol.refusal), ignored);
        }
        auto now = Clock::now();
        if (now - last_refusal_log > std::chrono::seconds(1)) {
            last_refusal_log = now;
            log::warning("max_connections (" + std::to_string(options.max_connections) +
                         ") reached; closing new connections");
        }
    }

    asio::awaitable<void> accept_loop(Acceptor& acceptor) {
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
            if (draining) continue;  // the socket closes as it goes out of scope
            if (connections.size() >= options.max_connections) {
                refuse(socket);
                continue;
            }
            // Replies are small and awaited: send them now, not after Nagle's delay.
            if (socket.local_endpoint(ec).protocol().family() != AF_UNIX)
                socket.set_option(asio::ip::tcp::no_delay(true), ec);
            auto c = std::make_shared<StreamConnection>(std::move(socket));
            c->deadline = Clock::now() + options.idle_timeout;
            connections.push_front(c);
            accepted.inc();
            open.inc();
            asio::co_spawn(io, watch(c), asio::detached);
            asio::co_spawn(io, serve(c, connections.begin()), asio::detached);
        }
    }

    asio::awaitable<void> serve(std::shared_ptr<StreamConnection> c, Connections::iterator where) {
        auto self = shared_from_this();
        try {
            co_await protocol.serve(c);
        } catch (const std::exception& e) {
            log::event(log::Level::error, "internal fault; closing the connection",
                       {{"protocol", protocol.name}, {"error", e.what()}});
        }
        c->close();
        connections.erase(where);
        open.dec();
        if (draining && connections.empty()) finish_drain();
    }

    void finish_drain() {
        if (!on_drained) return;
        auto done = std::move(on_drained);
        on_drained = nullptr;
        if (drain_timer) drain_timer->cancel();
        done();
    }

    void close_all() {
        for (auto& a : acceptors) {
            boost::system::error_code ignored;
            a->close(ignored);
        }
        for (auto& c : connections) c->close();
    }
};

StreamServer::StreamServer(asio::io_context& io, StreamServerOptions options,
                           metrics::Registry& registry, StreamServerProtocol protocol)
    : impl_(std::make_shared<Impl>(io, options, registry, std::move(protocol))) {}

StreamServer::~StreamServer() { impl_->close_all(); }

void StreamServer::listen(const Endpoint& where) {
    auto acceptor = std::make_unique<Acceptor>(impl_->io);
    bind_acceptor(*acceptor, where, impl_->options.unix_mode);
    auto& ref = *acceptor;
    impl_->acceptors.push_back(std::move(acceptor));
    asio::co_spawn(impl_->io, impl_->accept_loop(ref), asio::detached);
}

void StreamServer::update_options(const StreamServerOptions& options) {
    auto unix_mode = impl_->options.unix_mode;
    impl_->options = options;
    impl_->options.unix_mode = unix_mode;
}

const StreamServerOptions& StreamServer::options() const { return impl_->options; }

void StreamServer::drain(std::chrono::milliseconds timeout, std::function<void()> on_drained) {
    auto& impl = *impl_;
    impl.draining = true;
    impl.on_drained = std::move(on_drained);
    for (auto& a : impl.acceptors) {
        boost::system::error_code ignored;
        a->close(ignored);
    }
    for (auto& c : impl.connections)
        if (!c->busy) c->close();
    if (impl.connections.empty()) {
        asio::post(impl.io, [self = impl_] { self->finish_drain(); });
        return;
    }
    impl.drain_timer = std::make_unique<asio::steady_timer>(impl.io, timeout);
    impl.drain_timer->async_wait([self = impl_](boost::system::error_code ec) {
        if (ec) return;
        log::warning("drain timeout; closing " + std::to_string(self->connections.size()) +
                     " busy " + self->protocol.name + " connection(s)");
        for (auto& c : self->connections) c->close();
        self->finish_drain();
    });
}

bool StreamServer::draining() const { return impl_->draining; }

std::size_t StreamServer::connections() const { return impl_->connections.size(); }

}  // namespace proto::net
