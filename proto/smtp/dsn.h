// The ESMTP DSN extension's parameters (RFC 3461): RET and ENVID at MAIL,
// NOTIFY and ORCPT at RCPT, and xtext, the encoding ENVID and ORCPT use on
// the wire. No I/O; values come from clients and servers, so every parser
// checks syntax and length and returns nullopt for anything else.
//
// Values are kept decoded (as the delivery status report shows them, RFC
// 3464 2.2.1, 2.3.1) and printable ASCII only, so they can go into a queue
// file, a report or a log line; they are xtext-encoded again when passed on.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace proto::smtp {

// RFC 3461 4.4: "ENVID ... MUST be ... no more than 100 characters".
inline constexpr std::size_t max_envid = 100;
// RFC 3461 4.2: an ORCPT parameter "MUST NOT exceed 500 characters".
inline constexpr std::size_t max_orcpt = 500;

// RFC 3461 4: xtext = *( xchar other than "+" and "=" / "+" 2HEXCHAR ),
// xchar = 33..126. Decoding refuses anything else, and "+XX" that is not
// upper-case hex; the decoded text must be printable ASCII (32..126).
std::optional<std::string> xtext_decode(std::string_view xtext);
std::string xtext_encode(std::string_view text);

// NOTIFY=NEVER, or a comma-separated list of SUCCESS, FAILURE and DELAY
// (each once, case-insensitive). Returned in canonical form: "NEVER", or the
// ones given in the order SUCCESS,FAILURE,DELAY.
std::optional<std::string> parse_notify(std::string_view value);
// The DSN notices a NOTIFY value asks for; an empty value means the default
// (FAILURE, and DELAY at the MTA's discretion: RFC 3461 4.1).
struct Notify {
    bool success = false, failure = true, delay = true;
};
Notify notify_of(std::string_view canonical);

// RET=FULL or RET=HDRS (case-insensitive), returned upper-case.
std::optional<std::string> parse_ret(std::string_view value);
// ENVID=xtext, decoded, at most max_envid characters.
std::optional<std::string> parse_envid(std::string_view value);
// ORCPT=addr-type ";" xtext (RFC 3461 4.2), returned decoded as
// "addr-type;address" with the type as given ("rfc822", "utf-8").
std::optional<std::string> parse_orcpt(std::string_view value);
// An ORCPT value as a parameter again: "rfc822;" + xtext.
std::string orcpt_parameter(std::string_view decoded);

}  // namespace proto::smtp
