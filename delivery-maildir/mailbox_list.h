// The virtual_mailboxes file: one address a line; '#' starts a comment; only
// the first whitespace-separated word counts, so a Postfix
// virtual_mailbox_maps source file ("address  anything") works as is.
// Entries are "local@domain", lower case. Pure parsing, no I/O, fuzzed
// (fuzz/delivery_mailbox_list_fuzz.cpp).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>

namespace maildir {

// Throws std::invalid_argument "SOURCE:LINE: \"WORD\": reason" on the first
// address that does not parse (RFC 5321 Mailbox).
std::unordered_set<std::string> parse_mailbox_list(std::string_view content,
                                                   const std::string& source);

}  // namespace maildir
