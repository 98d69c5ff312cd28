// The one interface a policy daemon implements: given a request, produce a
// decision, asynchronously. Everything else (I/O, limits, logging, metrics,
// lifecycle) is the server's.
//
// A decider answers every request it can within its own deadline, using its
// configured fallback when a dependency (Redis, DNS) fails. Throwing means an
// internal fault: the server logs it, sends no reply and closes the
// connection, so Postfix applies its default_action.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>

#include "policy/action.h"
#include "policy/request.h"

namespace proto::policy {

struct Decision {
    Action action;
    std::string reason;  // short, for the decision log ("new triplet", "whitelisted client")
};

class Decider {
public:
    virtual ~Decider() = default;
    virtual boost::asio::awaitable<Decision> decide(const Request& request) = 0;
};

}  // namespace proto::policy
