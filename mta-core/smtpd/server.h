// The SMTP listeners of master.cf (smtpd entries of type inet), each a
// proto/net StreamServer with its own settings, serving sessions. Settings
// are swapped whole on reload; a session keeps the settings it started with.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "net/stream_server.h"
#include "smtpd/session.h"

namespace mta::smtpd {

struct Listener {
    std::string service;  // master.cf service field as written ("smtp", "127.0.0.1:2525")
    proto::net::Endpoint endpoint;
    std::shared_ptr<const SmtpdConfig> config;
};

class SmtpServer {
public:
    SmtpServer(boost::asio::io_context& io, proto::metrics::Registry& metrics,
               SessionServices& services);
    ~SmtpServer();
    // Bind every listener now (as root); throws std::system_error naming it.
    void listen(const std::vector<Listener>& listeners);
    // New settings for the same listeners (by service name).
    void update(const std::vector<Listener>& listeners);
    void drain(std::chrono::milliseconds timeout, std::function<void()> on_drained);

private:
    struct Entry;
    boost::asio::io_context& io_;
    proto::metrics::Registry& metrics_;
    SessionServices& services_;
    std::vector<std::unique_ptr<Entry>> entries_;
};

}  // namespace mta::smtpd
