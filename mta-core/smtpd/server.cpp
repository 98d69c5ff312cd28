// SMTP listeners; see server.h.
#include "smtpd/server.h"

#include <memory>

#include "daemon/log.h"

namespace mta::smtpd {

struct SmtpServer::Entry {
    std::string service;
    std::shared_ptr<const SmtpdConfig> config;
    std::unique_ptr<proto::net::StreamServer> server;
};

SmtpServer::SmtpServer(boost::asio::io_context& io, proto::metrics::Registry& metrics,
                       SessionServices& services)
    : io_(io), metrics_(metrics), services_(services) {}

SmtpServer::~SmtpServer() = default;

namespace {
proto::net::StreamServerOptions options_for(const SmtpdConfig& c) {
    proto::net::StreamServerOptions o;
    o.max_connections = c.max_connections;
    // The session moves its own deadline (smtpd_timeout per command or
    // record); this is only the watchdog's bound.
    o.idle_timeout = c.timeout;
    o.busy_timeout = c.timeout;
    return o;
}
}  // namespace

void SmtpServer::listen(const std::vector<Listener>& listeners) {
    for (const auto& l : listeners) {
        auto e = std::make_unique<Entry>();
        e->service = l.service;
        e->config = l.config;
        Entry* raw = e.get();
        proto::net::StreamServerProtocol protocol;
        protocol.metric_prefix = "smtpd";
        protocol.name = "SMTP";
        protocol.refusal = "421 4.3.2 " + l.config->myhostname + " Service not available: too many connections\r\n";
        SessionServices* services = &services_;
        protocol.serve = [raw, services](std::shared_ptr<proto::net::StreamConnection> c) {
            return serve_session(std::move(c), raw->config, *services);
        };
        e->server = std::make_unique<proto::net::StreamServer>(io_, options_for(*l.config), metrics_,
                                                              std::move(protocol));
        e->server->listen(l.endpoint);
        entries_.push_back(std::move(e));
    }
}

void SmtpServer::update(const std::vector<Listener>& listeners) {
    for (auto& e : entries_) {
        bool found = false;
        for (const auto& l : listeners) {
            if (l.service != e->service) continue;
            e->config = l.config;
            e->server->update_options(options_for(*l.config));
            found = true;
        }
        if (!found) proto::log::warning("listener " + e->service + " removed from master.cf: it stops on restart");
    }
    for (const auto& l : listeners) {
        bool known = false;
        for (auto& e : entries_) known = known || e->service == l.service;
        if (!known) proto::log::warning("listener " + l.service + " added to master.cf: it starts on restart");
    }
}

void SmtpServer::drain(std::chrono::milliseconds timeout, std::function<void()> on_drained) {
    auto remaining = std::make_shared<std::size_t>(entries_.size());
    if (*remaining == 0) {
        on_drained();
        return;
    }
    auto done = std::make_shared<std::function<void()>>(std::move(on_drained));
    for (auto& e : entries_)
        e->server->drain(timeout, [remaining, done] {
            if (--*remaining == 0) (*done)();
        });
}

}  // namespace mta::smtpd
