// Domain names and addresses as the resolver takes and gives them: which
// names may be asked about, which names from answers may be believed, and the
// reverse (PTR) name of an address. No I/O; shared with tests and fuzzing.
//
// Security: names from DNS answers end up in logs, Received: headers and
// policy requests, so a name is only passed on when it is a plain host name
// (letters, digits, '-', '_', dots), as Postfix's valid_hostname() requires.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mta::dns {

// RFC 1035 2.3.4: 63 octets per label, 255 per name on the wire (253 as text
// without the final dot).
inline constexpr std::size_t max_label_length = 63;
inline constexpr std::size_t max_name_length = 253;

// Without one final dot, lower case kept as given.
std::string_view strip_root_dot(std::string_view name);

// A name that may be queried: labels of 1..63 letters, digits, '-' or '_'
// (underscore for SRV-like and DNSBL names), at most 253 characters, one
// optional final dot. Non-ASCII (U-label) names are refused: they must be
// converted to A-labels first.
bool valid_query_name(std::string_view name);

// A host name that may be believed (MX targets, PTR names): valid_query_name,
// no label that starts or ends with '-', and not all-numeric (a PTR record
// that says "1.2.3.4" is a trick, Postfix's "numeric hostname").
bool valid_hostname(std::string_view name);

// "1.2.3.4" -> "4.3.2.1.in-addr.arpa", IPv6 -> nibbles under ip6.arpa;
// IPv4-mapped IPv6 (::ffff:1.2.3.4) is read as the IPv4 address. nullopt for
// text that is not an address.
std::optional<std::string> reverse_name(std::string_view ip);

}  // namespace mta::dns
