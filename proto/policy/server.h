// The policy server: Postfix's check_policy_service peer.
//
// One coroutine per connection on a single-threaded io_context; many
// persistent connections, one request in flight per connection (Postfix never
// pipelines). Limits: request size and shape (RequestParser), connection
// count (a full table evicts the connection idle longest: net/stream_server.h),
// idle time (longer than Postfix's smtpd_policy_service_max_idle, 300 s, so
// Postfix closes first), a read deadline per request, and a deadline per
// decision.
//
// Failure rule (SMTPD_POLICY_README): a request that cannot be answered --
// malformed, or a decider fault or timeout -- is logged and counted, gets no
// reply, and only that connection is closed. Postfix then retries or applies
// its default_action.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

#include "net/address.h"
#include "policy/request.h"

namespace boost::asio {
class io_context;
}

namespace proto::metrics {
class Registry;
}

namespace proto::policy {

class Decider;

struct ServerOptions {
    Limits limits;
    std::size_t max_connections = 1000;
    std::chrono::milliseconds idle_timeout{std::chrono::seconds(330)};
    std::chrono::milliseconds decision_timeout{std::chrono::seconds(30)};
    // From the first byte of a request to its end (Postfix writes a request
    // at once; a client dripping bytes must not hold a slot).
    std::chrono::milliseconds read_timeout{std::chrono::seconds(10)};
    unsigned unix_mode = 0666;  // Postfix's smtpd runs as another user
    bool log_decisions = true;
};

class Server {
public:
    using DeciderSource = std::function<std::shared_ptr<Decider>()>;

    Server(boost::asio::io_context& io, ServerOptions options, metrics::Registry& registry,
           DeciderSource decider);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Bind now; throws std::system_error naming the address. Accepting starts
    // when the io_context runs.
    void listen(const net::Endpoint& where);
    // Options that may change on reload (not unix_mode): applied to new reads.
    void update_options(const ServerOptions& options);
    // Stop accepting; close idle connections; connections waiting for a
    // decision get their reply, then close. on_drained runs once no connection
    // is left, or after timeout with the rest closed hard.
    void drain(std::chrono::milliseconds timeout, std::function<void()> on_drained);
    std::size_t connections() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace proto::policy
