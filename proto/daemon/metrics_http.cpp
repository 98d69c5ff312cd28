#include "daemon/metrics_http.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "daemon/log.h"
#include "daemon/metrics.h"
#include "net/endpoint_asio.h"

namespace proto::metrics {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using Protocol = asio::generic::stream_protocol;

struct MetricsServer::Impl : std::enable_shared_from_this<MetricsServer::Impl> {
    Impl(asio::io_context& io, Registry& r) : acceptor(io), registry(r) {}
    net::Acceptor acceptor;
    Registry& registry;
    // Scrapes are one at a time; a few concurrent ones are plenty, and the
    // cap keeps this listener from spending the file descriptors the
    // policy and LMTP connections need.
    static constexpr std::size_t kMaxConnections = 16;
    std::size_t connections = 0;
    std::chrono::steady_clock::time_point last_error_log{};

    asio::awaitable<void> serve(Protocol::socket socket) {
        auto self = shared_from_this();
        ++connections;
        struct Leave {
            std::size_t& n;
            ~Leave() { --n; }
        } leave{connections};
        boost::beast::basic_stream<Protocol, asio::any_io_executor> stream(std::move(socket));
        boost::beast::flat_buffer buffer(8192);
        http::request_parser<http::empty_body> parser;
        parser.header_limit(8192);
        stream.expires_after(std::chrono::seconds(10));
        auto [ec, n] = co_await http::async_read(stream, buffer, parser,
                                                 asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        const auto& req = parser.get();
        http::response<http::string_body> res;
        res.version(req.version());
        res.keep_alive(false);
        if (req.method() == http::verb::get && req.target() == "/metrics") {
            res.result(http::status::ok);
            res.set(http::field::content_type, "text/plain; version=0.0.4");
            res.body() = registry.render();
        } else {
            res.result(http::status::not_found);
            res.set(http::field::content_type, "text/plain");
            res.body() = "not found\n";
        }
        res.prepare_payload();
        co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
        boost::system::error_code ignored;
        stream.socket().shutdown(Protocol::socket::shutdown_both, ignored);
    }

    asio::awaitable<void> accept_loop() {
        auto self = shared_from_this();
        while (acceptor.is_open()) {
            auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) {
                if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
                // EMFILE and friends: back off instead of spinning.
                auto now = std::chrono::steady_clock::now();
                if (now - last_error_log >= std::chrono::seconds(1)) {
                    last_error_log = now;
                    log::warning("metrics accept: " + ec.message() + "; pausing accepts for 100 ms");
                }
                asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(100));
                co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
                continue;
            }
            if (connections >= kMaxConnections) continue;  // closed as it goes out of scope
            asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)), asio::detached);
        }
    }
};

MetricsServer::MetricsServer(asio::io_context& io, const net::Endpoint& where, Registry& registry)
    : impl_(std::make_shared<Impl>(io, registry)) {
    net::bind_acceptor(impl_->acceptor, where, 0600);
    asio::co_spawn(io, impl_->accept_loop(), asio::detached);
    log::info("metrics at " + where.to_string() + " (GET /metrics)");
}

MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::stop() {
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
}

}  // namespace proto::metrics
