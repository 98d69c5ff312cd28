// DNS answers as the resolver believes them: c-ares parses the wire format
// (its parsers check names, lengths and CNAME chains), this keeps what may be
// passed on, within limits. No I/O and no Boost, so it is fuzzed
// (fuzz/dns_answers_fuzz.cpp) with hostile answers.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mta::dns {

// Records kept per query; the rest of an answer is ignored.
inline constexpr std::size_t max_answers = 64;

struct MxRecord {
    int preference;
    std::string host;  // "" for a null MX (RFC 7505)
};

// The same three outcomes as restrictions::DnsAnswer::Status.
enum class Outcome { found, not_found, temporary };

// A c-ares status: success is found; NXDOMAIN (ARES_ENOTFOUND), NODATA
// (ARES_ENODATA) and a bad name are not_found; SERVFAIL, REFUSED, timeouts,
// connection and parse errors are temporary.
Outcome outcome_of(int ares_status);

// Each takes a c-ares query result (status and, on success, the answer).
// A or AAAA: the addresses as text. A CNAME chain ending nowhere is not_found.
Outcome parse_addresses(int ares_status, const unsigned char* data, std::size_t size, bool v6,
                        std::vector<std::string>& out);
// MX, unsorted. Targets that are not host names are dropped (they would end
// up in logs and SMTP sessions); a null MX is one record with an empty host
// when it is alone, ignored beside real exchangers. Only garbage: temporary,
// never a reason to bounce.
Outcome parse_mx(int ares_status, const unsigned char* data, std::size_t size, std::vector<MxRecord>& out);
// PTR of the address (4 or 16 bytes): the names that are host names, in
// answer order, without duplicates.
Outcome parse_ptr(int ares_status, const unsigned char* data, std::size_t size,
                  const std::array<std::uint8_t, 16>& address, bool v6, std::vector<std::string>& out);

// TXT: each record's strings joined (RFC 7208 3.3 reads them so, and so do
// DNS lists' reasons), as printable ASCII ('?' for anything else) of at most
// max_txt bytes, for a reply text or a log line.
inline constexpr std::size_t max_txt = 255;
Outcome parse_txt(int ares_status, const unsigned char* data, std::size_t size, std::vector<std::string>& out);

}  // namespace mta::dns
