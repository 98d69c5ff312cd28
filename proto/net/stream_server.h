// The connection half of every server (policy, LMTP, later SMTP), written
// once: listeners, the connection table, max_connections, idle, read and
// busy deadlines, eviction, and drain. The protocol supplies one coroutine
// per connection.
//
// Single-threaded: everything here runs on the io_context's one thread.
// Limits: max_connections, clamped to what the file limit leaves (see
// raise_file_limit()); idle_timeout while a connection waits for a request,
// read_timeout from the first byte of a request to its end (so a client
// dripping bytes cannot keep a slot), and busy_timeout while it is busy (0: a
// busy connection is never timed out). A fault escaping a connection's
// coroutine is logged and closes that connection only.
//
// A full table never locks new clients out: the connection idle longest (no
// request in flight, none partly received, no transaction open) is closed
// to make room -- for a persistent policy connection that costs Postfix one
// reconnect, which it makes by itself. With none idle, the one whose partial
// request began earliest goes (it is past its read deadline soonest; a real
// client's partial request lasts microseconds). Busy connections and open
// transactions are never evicted; only when every slot is one of those is a
// new connection told `refusal` and closed. No per-address cap: Postfix and a
// local attacker share 127.0.0.1.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>

#include "net/endpoint_asio.h"

namespace proto::metrics {
class Registry;
}

namespace proto::net {

class StreamTable;  // a server's connections, in eviction order (stream_server.cpp)

struct StreamConnection {
    using Clock = std::chrono::steady_clock;
    explicit StreamConnection(StreamProtocol::socket s);
    void close();
    // The protocol's state changes, for deadlines and eviction:
    // waiting for a request from now on (the idle deadline applies) ...
    void idle(std::chrono::milliseconds idle_timeout);
    // ... the first bytes of one arrived (the read deadline applies, counted
    // from the first byte: later bytes do not move it).
    void request_begun(std::chrono::milliseconds read_timeout);
    // Input arrived: `since` is now, and the connection goes to the end of
    // the eviction order.
    void touch();

    StreamProtocol::socket socket;
    boost::asio::steady_timer watchdog;
    std::string peer;  // for logs: "192.0.2.1:4321", "[::1]:4321", "unix:/path"
    // When the connection times out.
    Clock::time_point deadline;
    // When it became idle, or when its partial request began.
    Clock::time_point since;
    // A request is being worked on: drain lets it finish and the busy
    // deadline, not the idle one, applies. Never evicted.
    bool busy = false;
    // Part of a request has arrived (see request_begun()).
    bool partial = false;
    // A unit of work the peer expects an answer to is open (an LMTP mail
    // transaction, from MAIL to the replies after DATA): never evicted, and
    // drain lets the protocol finish it.
    bool in_transaction = false;
    bool closed = false;
    // Written, best effort, when the deadline closes the connection (SMTP's
    // "421 4.4.2 ... timeout exceeded"); only while the socket carries plain
    // text, so a protocol clears it once TLS starts.
    std::string deadline_notice;

    // Set by the server while the connection is in its table.
    StreamTable* table = nullptr;
    std::list<std::shared_ptr<StreamConnection>>::iterator slot;
};

struct StreamServerOptions {
    std::size_t max_connections = 1000;
    std::chrono::milliseconds idle_timeout{std::chrono::seconds(330)};
    std::chrono::milliseconds busy_timeout{0};
    unsigned unix_mode = 0666;
    std::chrono::milliseconds read_timeout{std::chrono::seconds(10)};
};

// Raise the soft RLIMIT_NOFILE to the hard limit (once, at start) and return
// the soft limit now in force.
std::size_t raise_file_limit();
// How many connections fit in the current soft file limit, leaving file
// descriptors for listeners, Redis, metrics, logs, DNS and Maildir writes.
std::size_t connections_that_fit();

struct StreamServerProtocol {
    // Metric names start with it ("policy": policy_connections_open, ...).
    std::string metric_prefix;
    std::string name;     // for help texts and logs: "policy", "LMTP"
    std::string refusal;  // written to a connection refused for max_connections
    // Written, best effort, to a connection evicted to make room, and to one
    // closed by drain (idle, or unfinished at the drain timeout).
    std::string eviction_notice;
    std::string shutdown_notice;
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
    // Stop accepting; close connections that are neither busy nor in a
    // transaction; the others close when their protocol sees draining().
    // on_drained runs once no connection is left, or after timeout with the
    // rest told shutdown_notice and closed hard.
    void drain(std::chrono::milliseconds timeout, std::function<void()> on_drained);
    bool draining() const;
    std::size_t connections() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace proto::net
