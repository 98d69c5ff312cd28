// SMTP envelope addresses (RFC 5321 4.1.2): the Mailbox inside a Path.
//
// Pure parsing, no I/O. A quoted local part is returned decoded (quotes and
// backslash escapes removed), which is how Postfix and Dovecot look it up;
// callers that build file names from it must validate it again for their own
// purpose (see delivery-maildir's local-part checks).
//
// Limits (RFC 5321 4.5.3.1): local part 64 octets, domain 255, path 256.
// ASCII only, unless AddressLimits::utf8 (RFC 6531 SMTPUTF8: well-formed
// UTF-8 allowed in atoms, quoted strings and domain labels); the caller
// then refuses a non-ASCII address in a transaction without SMTPUTF8.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace proto::smtp {

struct Address {
    std::string local;   // decoded local part
    std::string domain;  // as sent (callers fold case); may be an address literal "[1.2.3.4]"

    bool empty() const { return local.empty() && domain.empty(); }
    // local@domain, re-quoting the local part when it is not a dot-atom.
    std::string to_string() const;
};

struct AddressLimits {
    std::size_t max_local = 64;    // RFC 5321 4.5.3.1.1
    std::size_t max_domain = 255;  // RFC 5321 4.5.3.1.2
    bool utf8 = false;             // RFC 6531 3.3: UTF8-non-ascii allowed
    // A local part alone ("user"), as Postfix accepts it and later appends
    // @$myorigin; domain() is then empty. Off by default (RFC 5321 4.1.2).
    bool allow_no_domain = false;
};

// Parse "local@domain" (no angle brackets). On failure returns nullopt and, if
// error is given, sets a short reason.
std::optional<Address> parse_mailbox(std::string_view text, std::string* error = nullptr,
                                     AddressLimits limits = {});

// RFC 5321 Domain: dot-separated labels of letters, digits and hyphens, or an
// address literal in brackets.
bool valid_domain(std::string_view domain, bool utf8 = false);

// True if local can be written as a dot-atom (RFC 5321 Dot-string).
bool is_dot_string(std::string_view local, bool utf8 = false);

// Well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool valid_utf8(std::string_view text);
// Any byte above 0x7f.
bool has_non_ascii(std::string_view text);

}  // namespace proto::smtp
