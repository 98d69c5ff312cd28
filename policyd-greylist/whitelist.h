// Whitelists in postgrey's file format (postgrey(8), "WHITELISTS").
//
//   client lists:     host.or.domain   (matches client_name and its subdomains)
//                     /regex/          (matched against client_name, any case)
//                     1.2.3.4  1.2.3.0/24  1.2.3 (= /24)  1.2 (= /16)  2001:db8::/32
//   recipient lists:  user@  domain  user@domain  /regex/
//                     (user@ and user@domain also match user+ext@...; domain
//                     also matches its subdomains)
// '#' starts a comment; blank lines are ignored.
//
// Parsing is pure (text in, list out) so it is fuzzed
// (fuzz/greylist_whitelist_fuzz.cpp). Unlike postgrey, a line we cannot read
// is an error naming the file and line, so --check-config and SIGHUP catch it
// instead of silently whitelisting less.
//
// Limits: a regex at most 512 bytes (std::regex compiles recursively);
// regexes use ECMAScript syntax, which covers what postgrey lists use
// (no Perl-only constructs such as (?i) or look-behind). Regexes are only
// tried on values of at most 512 bytes: std::regex matching recurses per
// character, and no host name or address is longer.
#pragma once

#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "net/address.h"

namespace greylist {

class WhitelistError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Transparent hashing so lookups by string_view do not allocate.
struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using NameSet = std::unordered_set<std::string, StringHash, std::equal_to<>>;

class ClientWhitelist {
public:
    // Add the entries of one file's text; source names it in errors
    // ("file:line: ..."). Throws WhitelistError.
    void parse(std::string_view text, std::string_view source);
    // client_name may be "unknown" or empty (then only addresses match).
    bool matches(std::string_view client_name, const proto::net::IpAddress& address) const;
    std::size_t size() const { return names_.size() + regexes_.size() + networks_; }

private:
    NameSet names_;  // lower case
    std::vector<std::regex> regexes_;
    proto::net::CidrList cidrs_;
    std::size_t networks_ = 0;
};

class RecipientWhitelist {
public:
    void parse(std::string_view text, std::string_view source);
    bool matches(std::string_view recipient) const;
    std::size_t size() const {
        return users_.size() + domains_.size() + addresses_.size() + regexes_.size();
    }

private:
    NameSet users_;      // "postmaster"
    NameSet domains_;    // "example.org"
    NameSet addresses_;  // "user@example.org"
    std::vector<std::regex> regexes_;
};

// The lists compiled into the program, selected by the entry "builtin".
std::string_view builtin_client_whitelist();
std::string_view builtin_recipient_whitelist();

}  // namespace greylist
