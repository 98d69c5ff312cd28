#include "policy/client.h"

#include <poll.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <deque>

#include "net/deadline.h"
#include "net/endpoint_asio.h"

namespace proto::policy {

namespace asio = boost::asio;
using Protocol = asio::generic::stream_protocol;
using SteadyClock = std::chrono::steady_clock;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

struct PooledConnection {
    explicit PooledConnection(asio::any_io_executor ex) : socket(ex) {}
    Protocol::socket socket;
    SteadyClock::time_point created = SteadyClock::now();
    SteadyClock::time_point last_used = SteadyClock::now();
};

// Readable before we wrote means EOF or unsolicited bytes: either way dead.
bool readable_now(Protocol::socket& s) {
    pollfd p{s.native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) != 0;
}

}  // namespace

struct Client::Impl {
    Impl(asio::any_io_executor ex, net::Endpoint s, ClientOptions o)
        : executor(ex), service(std::move(s)), options(std::move(o)) {}
    asio::any_io_executor executor;
    net::Endpoint service;
    ClientOptions options;
    std::deque<std::unique_ptr<PooledConnection>> idle;

    std::unique_ptr<PooledConnection> take_pooled() {
        auto now = SteadyClock::now();
        while (!idle.empty()) {
            auto c = std::move(idle.back());
            idle.pop_back();
            if (now - c->last_used > options.max_idle || now - c->created > options.max_ttl)
                continue;
            if (readable_now(c->socket)) continue;
            return c;
        }
        return nullptr;
    }

    // One exchange; error text when the service failed.
    asio::awaitable<std::string> exchange(PooledConnection& c, const std::string& wire,
                                          SteadyClock::time_point deadline, Action& out) {
        // Any step past the deadline closes the socket, which fails the pending operation.
        proto::net::Deadline guard(executor, deadline, proto::net::closing(c.socket));
        auto [wec, wn] = co_await asio::async_write(c.socket, asio::buffer(wire), use_nothrow);
        if (wec) co_return guard.expired() ? "timeout" : "write: " + wec.message();
        asio::streambuf buf(options.reply_limits.max_request);
        auto [rec, rn] = co_await asio::async_read_until(c.socket, buf, "\n\n", use_nothrow);
        if (rec) {
            if (guard.expired()) co_return "timeout";
            if (rec == asio::error::not_found) co_return "reply too large";
            co_return rec == asio::error::eof ? "connection closed by server"
                                              : "read: " + rec.message();
        }
        if (buf.size() != rn) co_return "unexpected data after reply";
        std::string block(asio::buffers_begin(buf.data()), asio::buffers_begin(buf.data()) + rn);
        auto parsed = parse_reply(block);
        if (!parsed.action) co_return "bad reply: " + parsed.error;
        out = *parsed.action;
        co_return std::string{};
    }

    asio::awaitable<std::unique_ptr<PooledConnection>> connect(SteadyClock::time_point deadline,
                                                                std::string& error) {
        auto c = std::make_unique<PooledConnection>(executor);
        Protocol::endpoint ep;
        try {
            ep = net::resolve_for_connect(service);
        } catch (const std::exception& e) {
            error = e.what();
            co_return nullptr;
        }
        proto::net::Deadline guard(executor, deadline, proto::net::closing(c->socket));
        auto [ec] = co_await c->socket.async_connect(ep, use_nothrow);
        if (ec) {
            error = guard.expired() ? "connect timeout" : "connect: " + ec.message();
            co_return nullptr;
        }
        if (service.kind == net::Endpoint::Kind::inet)
            c->socket.set_option(asio::ip::tcp::no_delay(true), ec);
        co_return c;
    }
};

Client::Client(asio::any_io_executor ex, net::Endpoint service, ClientOptions options)
    : impl_(std::make_shared<Impl>(ex, std::move(service), std::move(options))) {}

Client::~Client() = default;

const net::Endpoint& Client::service() const { return impl_->service; }

void Client::close_idle() { impl_->idle.clear(); }

asio::awaitable<ClientOutcome> Client::query(const Request& request) {
    auto impl = impl_;  // keep alive across suspension
    std::string wire = request.serialize();
    auto deadline = SteadyClock::now() + impl->options.timeout;
    std::string error;
    // Postfix's rule: a reused connection may have died in the pool, so one
    // failure there earns one more try on a fresh connection.
    for (int attempt = 0; attempt < 2; ++attempt) {
        auto c = impl->take_pooled();
        bool reused = c != nullptr;
        if (!c) c = co_await impl->connect(deadline, error);
        if (!c) break;
        Action action;
        error = co_await impl->exchange(*c, wire, deadline, action);
        if (error.empty()) {
            c->last_used = SteadyClock::now();
            if (impl->idle.size() < impl->options.max_pooled) impl->idle.push_back(std::move(c));
            co_return ClientOutcome{action, true, {}};
        }
        if (!reused || error == "timeout" || error.starts_with("bad reply")) break;
    }
    co_return ClientOutcome{impl->options.default_action, false,
                            impl->service.to_string() + ": " + error};
}

}  // namespace proto::policy
