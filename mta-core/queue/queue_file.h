// The queue file: one message as mta-core keeps it between the 250 and its
// delivery. An envelope block of "name=value" lines ended by an empty line,
// then the message exactly as it will be sent (CRLF lines, not dot-stuffed).
// No I/O: queue_store.h writes and reads the files.
//
// Values are %XX-escaped (every byte below 0x21 or above 0x7e, and '%'), so a
// hostile address, HELO name or SASL name cannot end a line or forge a field.
// The parser is strict (unknown version, unknown field, missing field or bad
// escape: the file is corrupt) because it reads files after a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mta::queue {

struct Recipient {
    std::string address;  // as it will be delivered (after aliases/redirects)
    std::string original;  // as the client gave it (ORCPT for DSN, logs)
    bool done = false;     // delivered or bounced; never tried again
    // Where the done flag ('0' or '1') sits in the file, so marking a
    // recipient done is a one-byte write in place (set by parse()).
    std::size_t done_offset = 0;
    // RFC 3461, as the client gave them (proto/smtp/dsn.h, decoded): NOTIFY
    // in canonical form ("" for the default), ORCPT as "type;address".
    std::string dsn_notify;
    std::string dsn_orcpt;
};

struct Envelope {
    std::string id;
    std::int64_t arrival = 0;  // seconds since the epoch
    std::string sender;        // empty: the null sender <>
    std::vector<Recipient> recipients;
    std::string client_name;   // for logs and bounces
    std::string client_address;
    std::string helo;
    std::string protocol;  // SMTP, ESMTP, ESMTPS, ESMTPSA, ...
    std::string sasl_username;
    std::string body_type;  // "", 7BIT, 8BITMIME
    bool smtputf8 = false;
    std::string filter;     // FILTER transport:destination from a restriction
    std::string dsn_envid;  // RFC 3461 ENVID, decoded ("" when not given)
    std::string dsn_ret;    // RFC 3461 RET: FULL, HDRS or ""
};

constexpr std::string_view kMagic = "MTAQ 1";

// The envelope block, ending with the empty line.
std::string serialize(const Envelope& envelope);

struct Parsed {
    Envelope envelope;
    std::size_t content_offset = 0;  // where the message starts in the file
};
// Parse the envelope block at the start of a queue file. nullopt and error
// set when it is not exactly one valid block.
std::optional<Parsed> parse(std::string_view file, std::string* error);

// Value escaping used by the envelope block (exposed for tests).
std::string escape(std::string_view value);
std::optional<std::string> unescape(std::string_view value);

}  // namespace mta::queue
