// The policy client: what mta-core's check_policy_service uses, and what
// tests use to talk to the daemons.
//
// Modelled on Postfix's smtpd_check.c/attr_clnt.c: connections are pooled and
// reused; a pooled connection found readable before we wrote (the server
// closed it, or sent garbage) is dead and dropped; a failed exchange on a
// reused connection is retried once on a fresh one; when the service still
// fails -- no connection, timeout, a malformed or missing action -- the
// configured default action is returned, never an unvalidated reply.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "net/address.h"
#include "policy/action.h"
#include "policy/request.h"

namespace proto::policy {

struct ClientOptions {
    // Postfix defaults: smtpd_policy_service_timeout, _max_idle, _max_ttl,
    // _default_action.
    std::chrono::milliseconds timeout{std::chrono::seconds(100)};
    std::chrono::seconds max_idle{300};
    std::chrono::seconds max_ttl{1000};
    std::size_t max_pooled = 64;  // idle connections kept
    Action default_action{ActionKind::smtp_4xx, "4.3.5 Server configuration problem", "451"};
    Limits reply_limits{};  // the same bounds as requests
};

struct ClientOutcome {
    Action action;
    bool from_service = false;  // false: default_action was used
    std::string error;          // why the service failed, for logs
};

class Client {
public:
    Client(boost::asio::any_io_executor ex, net::Endpoint service, ClientOptions options = {});
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    boost::asio::awaitable<ClientOutcome> query(const Request& request);
    void close_idle();
    const net::Endpoint& service() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace proto::policy
