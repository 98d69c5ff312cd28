// See connection.h.
#include "milter/connection.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>

#include "net/deadline.h"
#include "net/endpoint_asio.h"

namespace mta::milter {

namespace asio = boost::asio;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

std::string describe(const boost::system::error_code& ec) {
    if (ec == asio::error::eof) return "Connection closed by peer";
    std::string m = ec.message();
    if (!m.empty()) m[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(m[0])));
    return m;
}

}  // namespace

Connection::Connection(asio::any_io_executor ex, const MilterSpec& spec)
    : spec_(spec), socket_(ex), reader_(proto::milter::kMaxDataDefault) {}

Connection::~Connection() { close(); }

void Connection::close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
}

asio::awaitable<std::string> Connection::connect() {
    asio::generic::stream_protocol::endpoint ep;
    try {
        ep = proto::net::resolve_for_connect(spec_.endpoint);
    } catch (const std::exception& e) {
        co_return std::string(e.what());
    }
    boost::system::error_code ec;
    socket_.open(ep.protocol(), ec);
    if (ec) co_return describe(ec);
    proto::net::Deadline guard(socket_.get_executor(), std::chrono::steady_clock::now() + spec_.connect_timeout,
                               proto::net::closing(socket_));
    std::tie(ec) = co_await socket_.async_connect(ep, use_nothrow);
    if (guard.expired()) co_return std::string("Connection timed out");
    if (ec) co_return describe(ec);
    if (spec_.endpoint.kind == proto::net::Endpoint::Kind::inet)
        socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    co_return std::string();
}

asio::awaitable<std::string> Connection::write(std::string packet, std::chrono::milliseconds timeout) {
    if (!socket_.is_open()) co_return std::string("Connection closed");
    proto::net::Deadline guard(socket_.get_executor(), std::chrono::steady_clock::now() + timeout,
                               proto::net::closing(socket_));
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(packet), use_nothrow);
    (void)n;
    if (guard.expired()) co_return std::string("Connection timed out");
    if (ec) co_return describe(ec);
    co_return std::string();
}

asio::awaitable<std::string> Connection::read(std::chrono::milliseconds timeout, proto::milter::Reply& reply) {
    if (!socket_.is_open()) co_return std::string("Connection closed");
    proto::net::Deadline guard(socket_.get_executor(), std::chrono::steady_clock::now() + timeout,
                               proto::net::closing(socket_));
    while (true) {
        if (!in_.empty()) {
            auto r = reader_.feed(in_);
            in_.erase(0, r.consumed);
            if (r.status == proto::milter::ReadStatus::error) co_return "malformed packet: " + reader_.error();
            if (r.status == proto::milter::ReadStatus::done) {
                proto::milter::Packet packet = reader_.take();
                reader_.next();
                auto decoded = proto::milter::decode_reply(packet);
                if (!decoded.value) co_return "malformed reply: " + decoded.error;
                reply = std::move(*decoded.value);
                co_return std::string();
            }
        }
        char buf[16384];
        auto [ec, got] = co_await socket_.async_read_some(asio::buffer(buf), use_nothrow);
        if (guard.expired()) co_return std::string("Connection timed out");
        if (ec) co_return describe(ec);
        in_.append(buf, got);
    }
}

}  // namespace mta::milter
