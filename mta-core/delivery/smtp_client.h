// The client side of SMTP (RFC 5321) and LMTP (RFC 2033), for delivery:
// one message to one nexthop, with per-recipient results. Used by the queue
// manager for mailbox_transport/virtual_transport (LMTP to delivery-maildir)
// and relayhost/transport_maps nexthops (SMTP), and by tests as a real client.
//
// What goes out is what was stored: CRLF lines, dot-stuffed here (RFC 5321
// 4.5.2). Limits on what the server may send are the reply parser's
// (proto/smtp/reply.h); every step has a deadline (Postfix's smtp_*_timeout).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "net/address.h"

namespace mta::delivery {

struct Nexthop {
    proto::net::Endpoint endpoint;
    bool lmtp = false;
    std::string text;  // for logs: "127.0.0.1[127.0.0.1]:24"
};

struct Timeouts {
    std::chrono::seconds connect{30}, helo{300}, mail{300}, rcpt{300}, data_init{120},
        data_xfer{180}, data_done{600}, quit{300};
};

struct RecipientResult {
    int code = 0;           // 0: not tried (the whole attempt failed)
    std::string enhanced;   // "2.0.0"
    std::string text;       // the server's reply text, for logs and bounces
};

struct Attempt {
    bool connected = false;
    // Set when the whole attempt failed (connection, greeting, MAIL, DATA):
    // every recipient without its own result shares it.
    int code = 0;
    std::string enhanced;
    std::string error;
    std::vector<RecipientResult> recipients;
};

boost::asio::awaitable<Attempt> deliver(boost::asio::any_io_executor ex, const Nexthop& nexthop,
                                        const std::string& helo_name, const std::string& sender,
                                        const std::vector<std::string>& recipients,
                                        const std::string& content, const Timeouts& timeouts);

// RFC 5321 4.5.2: a line starting with "." gets another one. Content must be
// CRLF lines (what the queue holds).
std::string dot_stuff(std::string_view content);

}  // namespace mta::delivery
