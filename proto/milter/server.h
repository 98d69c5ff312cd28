// The milter front end of a policy daemon: the filter side of the Sendmail
// milter protocol (version 6), answering each SMTP stage with the daemon's
// Decider, on the same io_context and through the same StreamServer as the
// policy listeners. One coroutine per MTA connection; all per-session state
// lives in that coroutine.
//
// Limits and deadlines:
// - max_data per packet (codec.h; libmilter's 64 KiB - 1 by default); a
//   malformed or oversized packet closes that session only, logged and counted.
// - max_sessions: beyond it a session is negotiated and answered with a
//   tempfail at CONNECT, then closed, so the MTA tells its client 4xx
//   instead of applying its milter default_action. Twice as many
//   connections are accepted at all; the rest are closed at once.
// - idle_timeout while waiting for the MTA's next command (Postfix's
//   milter_content_timeout is 300 s, Sendmail's T=E:5m; we wait longer so the
//   MTA closes first), decision_timeout for each decision: a decider that
//   has not answered by then gets the session closed without a reply, and
//   the MTA applies its default_action (milter_default_action).
// - Sessions stay marked busy for their whole life: an MTA keeps one milter
//   connection per SMTP session, so it is never idle in the policy sense and
//   is never closed early to make room or at drain. Drain stops accepting and
//   lets each session run to the MTA's QUIT, within the drain timeout.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

#include "milter/codec.h"
#include "net/address.h"
#include "policy/server.h"

namespace boost::asio {
class io_context;
}

namespace proto::metrics {
class Registry;
}

namespace proto::milter {

// The longest a milter decision may take (see ServerOptions::from).
constexpr std::chrono::milliseconds kMaxDecisionTimeout{9000};

struct ServerOptions {
    std::size_t max_sessions = 1000;
    std::chrono::milliseconds idle_timeout{std::chrono::seconds(330)};
    std::chrono::milliseconds decision_timeout{std::chrono::seconds(30)};
    std::size_t max_data = kMaxDataDefault;
    unsigned unix_mode = 0666;
    bool log_decisions = true;

    // The common server options of a daemon, applied to its milter side;
    // request_timeout_ms is capped at kMaxDecisionTimeout.
    static ServerOptions from(const policy::ServerOptions& o);
};

class Server {
public:
    Server(boost::asio::io_context& io, ServerOptions options, metrics::Registry& registry,
           policy::Server::DeciderSource decider);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Bind now; throws std::system_error naming the address.
    void listen(const net::Endpoint& where);
    void update_options(const ServerOptions& options);
    // Stop accepting; sessions run until the MTA quits; on_drained runs once
    // none is left, or after timeout with the rest closed hard.
    void drain(std::chrono::milliseconds timeout, std::function<void()> on_drained);
    std::size_t connections() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace proto::milter
