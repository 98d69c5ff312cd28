#include "net/stream_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <sys/resource.h>
#include <sys/un.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <list>
#include <vector>

#include "daemon/log.h"
#include "daemon/metrics.h"

namespace proto::net {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

// The connection table, kept in order of `since`: every connection that
// changes its `since` moves to the end, so the front holds the connection
// idle longest and eviction looks at a few entries, not at all of them.
// `live` counts the entries not closed yet (a closed one stays until its
// coroutine has run down).
class StreamTable {
public:
    using List = std::list<std::shared_ptr<StreamConnection>>;
    List list;
    std::size_t live = 0;

    void add(const std::shared_ptr<StreamConnection>& c) {
        c->slot = list.insert(list.end(), c);
        c->table = this;
        ++live;
    }
    void remove(StreamConnection& c) {
        if (!c.closed) --live;
        c.table = nullptr;
        list.erase(c.slot);
    }
    void moved(StreamConnection& c) { list.splice(list.end(), list, c.slot); }
    void closing(StreamConnection&) { --live; }
};

StreamConnection::StreamConnection(StreamProtocol::socket s)
    : socket(std::move(s)), watchdog(socket.get_executor()) {}

void StreamConnection::touch() {
    since = Clock::now();
    if (table) table->moved(*this);
}

void StreamConnection::idle(std::chrono::milliseconds idle_timeout) {
    partial = false;
    touch();
    deadline = since + idle_timeout;
}

void StreamConnection::request_begun(std::chrono::milliseconds read_timeout) {
    if (partial) return;
    partial = true;
    touch();
    deadline = since + read_timeout;
}

namespace {

// File descriptors kept free for everything but client connections:
// listeners, Redis, the metrics server, stderr, DNS sockets of the SPF
// workers, Maildir files of the delivery workers.
constexpr std::size_t kReservedFds = 128;

std::string peer_of(StreamProtocol::socket& socket) {
    boost::system::error_code ec;
    auto remote = socket.remote_endpoint(ec);
    if (!ec && remote.protocol().family() != AF_UNIX) {
        auto tcp = asio::ip::tcp::endpoint();
        std::memcpy(tcp.data(), remote.data(), std::min<std::size_t>(remote.size(), tcp.capacity()));
        tcp.resize(remote.size());
        auto a = tcp.address();
        if (a.is_v6() && a.to_v6().is_v4_mapped())
            a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
        return a.is_v6() ? "[" + a.to_string() + "]:" + std::to_string(tcp.port())
                         : a.to_string() + ":" + std::to_string(tcp.port());
    }
    auto local = socket.local_endpoint(ec);
    if (!ec && local.size() > offsetof(sockaddr_un, sun_path)) {
        const auto* un = reinterpret_cast<const sockaddr_un*>(local.data());
        std::size_t n = local.size() - offsetof(sockaddr_un, sun_path);
        return "unix:" + std::string(un->sun_path, strnlen(un->sun_path, n));
    }
    return "unix";
}

// Best effort, never waiting: a short notice before the server closes.
void tell(StreamProtocol::socket& socket, const std::string& text) {
    if (text.empty()) return;
    boost::system::error_code ignored;
    socket.non_blocking(true, ignored);
    socket.write_some(asio::buffer(text), ignored);
}

}  // namespace

std::size_t raise_file_limit() {
    rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return 0;
    if (r.rlim_cur < r.rlim_max) {
        rlimit raised = r;
        raised.rlim_cur = r.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) r = raised;
    }
    return r.rlim_cur == RLIM_INFINITY ? SIZE_MAX : static_cast<std::size_t>(r.rlim_cur);
}

std::size_t connections_that_fit() {
    rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return SIZE_MAX;
    auto soft = static_cast<std::size_t>(r.rlim_cur);
    // Small limits (tests, odd hosts) keep half for the rest.
    std::size_t reserve = soft > 2 * kReservedFds ? kReservedFds : soft / 2;
    return std::max<std::size_t>(1, soft - reserve);
}

void StreamConnection::close() {
    if (closed) return;
    if (table) table->closing(*this);
    closed = true;
    boost::system::error_code ignored;
    socket.shutdown(StreamProtocol::socket::shutdown_both, ignored);
    socket.close(ignored);
    watchdog.cancel();
}

struct StreamServer::Impl : std::enable_shared_from_this<StreamServer::Impl> {

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
                                "Connections closed when idle")),
          read_timeouts(r.counter(protocol.metric_prefix + "_read_timeouts_total",
                                  "Connections closed because a request did not arrive whole "
                                  "within read_timeout")),
          evicted(r.counter(protocol.metric_prefix + "_connections_evicted_total",
                            "Connections closed to make room for a new one at max_connections")),
          accept_errors(r.counter(protocol.metric_prefix + "_accept_errors_total",
                                  "Failed accepts (EMFILE, ENFILE, ...), each followed by a pause")) {
        clamp();
    }

    asio::io_context& io;
    StreamServerOptions options;
    StreamServerProtocol protocol;
    std::vector<std::unique_ptr<Acceptor>> acceptors;
    StreamTable table;
    StreamTable::List& connections = table.list;
    bool draining = false;
    std::function<void()> on_drained;
    std::unique_ptr<asio::steady_timer> drain_timer;
    Clock::time_point last_refusal_log{};
    Clock::time_point last_eviction_log{};
    Clock::time_point last_accept_error_log{};
    std::size_t max_connections = 0;  // options.max_connections, clamped

    metrics::Gauge& open;
    metrics::Counter& accepted;
    metrics::Counter& refused;
    metrics::Counter& idle_closed;
    metrics::Counter& read_timeouts;
    metrics::Counter& evicted;
    metrics::Counter& accept_errors;

    // max_connections as configured, or as many as the file limit allows.
    void clamp() {
        std::size_t fit = connections_that_fit();
        std::size_t wanted = options.max_connections;
        max_connections = std::min(wanted, fit);
        if (max_connections < wanted)
            log::warning("max_connections " + std::to_string(wanted) +
                         " does not fit in the file limit; using " +
                         std::to_string(max_connections) + " (raise LimitNOFILE or ulimit -n)");
    }

    static bool rate_limited(Clock::time_point& last) {
        auto now = Clock::now();
        if (now - last < std::chrono::seconds(1)) return true;
        last = now;
        return false;
    }

    // The watchdog never sleeps longer than the shortest timeout, so a
    // deadline moved closer is seen in time without cancelling the timer on
    // every request.
    Clock::duration watchdog_cap() const {
        auto cap = std::min(options.idle_timeout, options.read_timeout);
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
            } else if (c->partial) {
                read_timeouts.inc();
                log::event(log::Level::warning, "request not received whole in time; closing the connection",
                           {{"protocol", protocol.name}, {"client", c->peer}});
            } else {
                idle_closed.inc();
            }
            if (!c->deadline_notice.empty()) tell(c->socket, c->deadline_notice);
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
        if (!rate_limited(last_refusal_log))
            log::warning("max_connections (" + std::to_string(max_connections) +
                         ") reached and every connection busy; closing new connections");
    }

    // If the live connections fill the table, close the one that matters
    // least (see the header). False if none could go.
    bool make_room() {
        if (table.live < max_connections) return true;
        // In order of `since`: the first idle one is the one idle longest,
        // the first partial one began its request earliest.
        StreamConnection* idle = nullptr;
        StreamConnection* partial = nullptr;
        for (auto& c : connections) {
            if (c->closed || c->busy || c->in_transaction) continue;
            if (!c->partial) {
                idle = c.get();
                break;
            }
            if (!partial) partial = c.get();
        }
        StreamConnection* victim = idle ? idle : partial;
        if (!victim) return false;
        evicted.inc();
        if (!rate_limited(last_eviction_log))
            log::event(log::Level::warning,
                       "max_connections reached; closing the connection idle longest",
                       {{"protocol", protocol.name},
                        {"max_connections", std::to_string(max_connections)},
                        {"client", victim->peer},
                        {"partial", victim->partial ? "yes" : "no"}});
        tell(victim->socket, protocol.eviction_notice);
        victim->close();
        return true;
    }

    asio::awaitable<void> accept_loop(Acceptor& acceptor) {
        auto self = shared_from_this();
        while (acceptor.is_open()) {
            auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
            if (ec) {
                if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
                accept_errors.inc();
                // EMFILE and friends (the clamp leaves room, but other parts
                // of the process use files too): back off instead of spinning,
                // the pending client stays in the listen queue meanwhile.
                if (!rate_limited(last_accept_error_log))
                    log::warning("accept: " + ec.message() + "; pausing accepts for 100 ms");
                asio::steady_timer pause(io, std::chrono::milliseconds(100));
                co_await pause.async_wait(use_nothrow);
                continue;
            }
            if (draining) continue;  // the socket closes as it goes out of scope
            if (!make_room()) {
                refuse(socket);
                continue;
            }
            // Replies are small and awaited: send them now, not after Nagle's delay.
            if (socket.local_endpoint(ec).protocol().family() != AF_UNIX)
                socket.set_option(asio::ip::tcp::no_delay(true), ec);
            auto c = std::make_shared<StreamConnection>(std::move(socket));
            c->peer = peer_of(c->socket);
            c->idle(options.idle_timeout);
            table.add(c);
            accepted.inc();
            open.inc();
            asio::co_spawn(io, watch(c), asio::detached);
            asio::co_spawn(io, serve(c), asio::detached);
        }
    }

    asio::awaitable<void> serve(std::shared_ptr<StreamConnection> c) {
        auto self = shared_from_this();
        try {
            co_await protocol.serve(c);
        } catch (const std::exception& e) {
            log::event(log::Level::error, "internal fault; closing the connection",
                       {{"protocol", protocol.name}, {"error", e.what()}});
        }
        c->close();
        table.remove(*c);
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

    void close_hard(StreamConnection& c) {
        if (c.closed) return;
        // What the peer sent last is not read: drop it, so the close sends a
        // FIN after the notice rather than a reset that could discard it.
        boost::system::error_code ec;
        c.socket.non_blocking(true, ec);
        std::array<char, 4096> sink;
        while (!ec && c.socket.available(ec) > 0) c.socket.read_some(asio::buffer(sink), ec);
        tell(c.socket, protocol.shutdown_notice);
        c.close();
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
    impl_->clamp();
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
        if (!c->busy && !c->in_transaction) impl.close_hard(*c);
    if (impl.connections.empty()) {
        asio::post(impl.io, [self = impl_] { self->finish_drain(); });
        return;
    }
    impl.drain_timer = std::make_unique<asio::steady_timer>(impl.io, timeout);
    impl.drain_timer->async_wait([self = impl_](boost::system::error_code ec) {
        if (ec) return;
        log::warning("drain timeout; closing " + std::to_string(self->connections.size()) +
                     " busy " + self->protocol.name + " connection(s)");
        for (auto& c : self->connections) self->close_hard(*c);
        self->finish_drain();
    });
}

bool StreamServer::draining() const { return impl_->draining; }

std::size_t StreamServer::connections() const { return impl_->connections.size(); }

}  // namespace proto::net
