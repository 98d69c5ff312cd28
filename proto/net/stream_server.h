// The connection half of every server (policy, LMTP, later SMTP), written
// once: listeners, the connection table, max_connections, idle and busy
// deadlines, and drain. The protocol supplies one coroutine per connection.
//
// Single-threaded: everything here runs on the io_context's one thread.
// Limits: max_connections (extra connections are told `refusal`, if any, and
// closed at once), idle_timeout while a connection waits for input, and
// busy_timeout while it is busy (0: a busy connection is never timed out).
// A fault escaping a connection's coroutine is logged and closes that
// connection only.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "net/endpoint_asio.h"

namespace proto::metrics {
class Registry;
}

namespace proto::net {

struct StreamConnection {
    explicit StreamConnection(StreamProtocol::socket s);
    void close();

    StreamProtocol::socket socket;
    boost::asio::steady_timer watchdog;
    // When the connection times out: the protocol moves it on every request.
    std::chrono::steady_clock::time_point deadline;
    // A request is being worked on: drain lets it finish and the busy
    // deadline, not the idle one, applies.
    bool busy = false;
    bool closed = false;
};

struct StreamServerOptions {
    std::size_t max_connections = 1000;
    std::chrono::milliseconds idle_timeout{std::chrono::seconds(330)};
    std::chrono::milliseconds busy_timeout{0};
    unsigned unix_mode = 0666;
};

struct StreamServerProtocol {
    // Metric names start with it ("policy": policy_connections_open, ...).
    std::string metric_prefix;
    std::string name;     // for help texts and logs: "policy", "LMTP"
    std::string refusal;  // written to a connection refused for max_connections
    // Serves one connection until it is done; the server closes it after.
    std::function<boost::asio::awaitable<void>(std::shared_ptr<StreamConnection>)> serve;
    // A busy connection passed its deadline (log and count); it is closed next.
    std::function<void(StreamConnection&)> on_busy_timeout;
};

class StreamServer {
public:
    StreamServer(boost::asio::io_context& io, StreamServerOptions options,
                 metrics::Registry& registry, StreamServerProtocol protocol);
    ~StreamServer();
    StreamServer(const StreamServer&) = delete;
    StreamServer& operator=(const StreamServer&) = delete;

    // Bind now; throws std::system_error naming the address.
    void listen(const Endpoint& where);
    // Applied from the next deadline on (unix_mode is kept: sockets exist).
    void update_options(const StreamServerOptions& options);
    const StreamServerOptions& options() const;
    // Stop accepting; close connections that are not busy; busy ones close
    // when their protocol sees draining(). on_drained runs once no connection
    // is left, or after timeout with the rest closed hard.
    void drain(std::chrono::milliseconds timeout, std::function<void()> on_drained);
    bool draining() const;
    std::size_t connections() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace proto::net
