// Recipient address checks for Maildir delivery: everything that decides
// whether a local part or an address extension may become part of a path.
// Pure functions, no I/O, fuzzed (fuzz/delivery_address_fuzz.cpp).
//
// Security: the output of these functions is joined to a base directory, so
// they are the line between an address and the file system. A component is
// refused unless it is 1..64 printable ASCII characters with no '/', no NUL
// or control character, does not start with '.', and contains no "..". A
// folder (extension) additionally may not end with '.'. Nothing is ever
// rewritten into a "safe" form: a bad address is refused, never mapped
// somewhere else.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace maildir {

constexpr std::size_t kMaxComponent = 64;  // RFC 5321 4.5.3.1.1 local part limit

// ASCII lower case (address lookups fold case as Postfix does).
std::string lower(std::string_view text);

// A local part or domain that may name a directory.
bool safe_component(std::string_view text);

// A Maildir++ folder name from an address extension ("work" or
// "lists.postfix"): safe_component, and no empty hierarchy level.
bool safe_folder(std::string_view text);

struct SplitLocal {
    std::string user;       // local part without the extension
    std::string extension;  // "" when there is none
    bool has_delimiter = false;
};

// Split at the first of the delimiter characters (Postfix recipient_delimiter
// semantics: any one of the characters). An empty delimiter set never splits.
SplitLocal split_extension(std::string_view local, std::string_view delimiters);

}  // namespace maildir
