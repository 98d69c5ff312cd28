// The LMTP server (RFC 2033): Postfix's lmtp(8) and mta-core deliver here.
//
// One coroutine per connection on the daemon's single-threaded io_context;
// commands are parsed by proto/smtp's codecs (pipelining, RFC 2920, comes
// from reading commands one by one out of the same buffer and flushing the
// replies only when the input runs dry). Every blocking step -- user lookups
// and the Maildir writes with their fsyncs -- runs on a bounded worker pool
// (delivery_workers threads); at most one job per connection is queued, so
// the queue is bounded by max_connections.
//
// A recipient gets 250 only after its message file and new/ are fsynced.
// Limits: command lines 512 octets, message_size_limit (content beyond it is
// read and dropped, then 552), max_recipients per transaction, idle_timeout
// per read, max_errors protocol errors per session (then 421 and close).
// A full connection table closes the connection idle longest with 421; a
// connection in a mail transaction is never evicted (net/stream_server.h).
// SIGTERM drains: no new connections, every transaction in progress is
// finished and answered within drain_timeout_ms, then 421 and close.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "daemon/program.h"
#include "settings.h"

namespace boost::asio {
class io_context;
}

namespace proto::metrics {
class Registry;
}

namespace maildir {

class LmtpServer final : public proto::daemon::Service {
public:
    using StateSource = std::function<std::shared_ptr<const State>()>;

    LmtpServer(boost::asio::io_context& io, const proto::policy::ServerOptions& options,
               proto::metrics::Registry& registry, StateSource state, unsigned workers);
    ~LmtpServer() override;

    void listen(const proto::net::Endpoint& where) override;
    void update_options(const proto::policy::ServerOptions& options) override;
    void drain(std::chrono::milliseconds timeout, std::function<void()> on_drained) override;
    std::size_t connections() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace maildir
