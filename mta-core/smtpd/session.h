// One SMTP session (RFC 5321), as a command table: each verb has a check
// (syntax and state; never waits), a policy phase (restrictions and policy
// services; the asynchronous step) and a proceed (the effect). One place
// writes replies, counts errors and logs (reply()).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <string>

#include "net/stream_server.h"
#include "smtpd/smtpd_config.h"

namespace proto::metrics {
class Registry;
}
namespace mta::queue {
class QueueStore;
}

namespace mta::smtpd {

class Anvil;

// What sessions share beyond their listener's settings.
struct SessionServices {
    queue::QueueStore* queue = nullptr;
    boost::asio::any_io_executor blocking;  // for fsync and other blocking calls
    std::function<void(const std::string& id)> queued;  // a message is in active/
    proto::metrics::Registry* metrics = nullptr;
    Anvil* anvil = nullptr;  // client limits, shared by every listener
};

boost::asio::awaitable<void> serve_session(std::shared_ptr<proto::net::StreamConnection> connection,
                                           std::shared_ptr<const SmtpdConfig> config,
                                           SessionServices& services);

}  // namespace mta::smtpd
