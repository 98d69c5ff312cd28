// Where the smtp transport sends, in Postfix's nexthop notation (smtp(8)
// "SMTP DESTINATION SYNTAX"): "domain" or "domain:port" is looked up by MX,
// "[host]" or "[host]:port" is the host itself (its A/AAAA records or the
// address), never an MX lookup. relayhost, transport_maps and the domain of
// a recipient all end up here. No I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mta::delivery {

struct Destination {
    std::string host;         // a domain, a host name or an IP address (no brackets)
    std::uint16_t port = 25;  // smtp(8): the "smtp" service
    bool mx_lookup = true;    // false for [host]
    bool port_given = false;

    // The nexthop as Postfix writes it: "example.org", "[192.0.2.1]:2525".
    std::string text() const;
};

// "host", "host:port", "[host]", "[host]:port", "[2001:db8::1]:25"; the
// "smtp:" transport prefix must already be gone. nullopt with *error set
// when it cannot be a destination.
std::optional<Destination> parse_destination(std::string_view nexthop, std::string* error);

}  // namespace mta::delivery
