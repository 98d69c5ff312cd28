// Finding the hosts for a smtp destination, as Postfix's smtp(8) does
// (smtp_addr.c), with the asynchronous resolver:
// - "domain": MX records, lowest preference first, equal preferences in
//   random order (RFC 5321 5.1); no MX record (NODATA or NXDOMAIN): the
//   domain's own A/AAAA records, as an implicit MX of preference 0. A null
//   MX (RFC 7505, "0 .") is a permanent 5.1.10 refusal.
// - "[host]": the host's A/AAAA records (or the address literal); no MX.
// - Each host's addresses in random order (smtp_randomize_addresses),
//   only of the families inet_protocols allows; at most
//   smtp_mx_address_limit addresses in all.
// - Loop detection: an MX host that is this server (one of its addresses
//   from inet_interfaces/proxy_interfaces, or named myhostname) and every
//   host of equal or worse preference are dropped; if nothing is left, the
//   mail "loops back to myself" (5.4.6). Not done for [host], as Postfix.
// - A temporary DNS failure (SERVFAIL, timeout) defers (4.4.3), never
//   bounces; names that do not exist bounce (5.4.4).
// smtp_dns_support_level = disabled: no MX lookups, hosts by their
// addresses only (/etc/hosts first, then A/AAAA; a documented shortcut:
// Postfix would use the C library alone).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "delivery/destination.h"

namespace mta::dns {
class AresResolver;
}

namespace mta::delivery {

struct MxOptions {
    bool ipv4 = true, ipv6 = true;  // inet_protocols
    bool dns = true;                // smtp_dns_support_level != disabled
    std::string myhostname;
    std::vector<std::string> own_addresses;  // canonical text (IpAddress::to_string)
    std::size_t address_limit = 5;           // smtp_mx_address_limit (0: no limit)
};

// One address to try, in order.
struct Target {
    std::string host;     // the MX host name (or the address)
    std::string address;  // textual IP
    std::uint16_t port = 25;
    int preference = 0;
    // For logs: "mx.example.org[192.0.2.1]:25".
    std::string text() const;
};

struct Resolution {
    enum class Kind { deliver, defer, bounce } kind = Kind::deliver;
    std::vector<Target> targets;
    std::string dsn;     // defer/bounce: "4.4.3", "5.1.10", "5.4.6", "5.4.4"
    std::string reason;  // defer/bounce: for the maillog and the bounce
};

boost::asio::awaitable<Resolution> resolve_destination(dns::AresResolver& resolver, Destination destination,
                                                       MxOptions options);

}  // namespace mta::delivery
