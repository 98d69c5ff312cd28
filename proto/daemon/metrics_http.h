// A minimal HTTP/1.1 server (Boost.Beast) that serves the registry at
// /metrics for Prometheus. It answers GET /metrics and 404 otherwise; one
// request per connection, bounded request size and read time, at most 16
// connections at once (more are closed at once); accept errors such as
// EMFILE pause accepting for 100 ms.
#pragma once

#include <memory>

#include "net/address.h"

namespace boost::asio {
class io_context;
}

namespace proto::metrics {

class Registry;

class MetricsServer {
public:
    // Binds immediately (throws std::system_error on failure).
    MetricsServer(boost::asio::io_context& io, const net::Endpoint& where, Registry& registry);
    ~MetricsServer();
    void stop();

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace proto::metrics
