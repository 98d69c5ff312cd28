// Postfix lookup tables for mta-core's *_maps parameters and check_*_access
// restrictions, and access(5)'s search orders.
//
// Types: inline:{ key=value, ... }, static:value, texthash:/path, hash:/path
// and lmdb:/path (the SOURCE file is read directly in postmap(1) syntax, or
// aliases(5) syntax for Flavour::aliases: there is no .db and no postmap
// step), cidr:/path (cidr_table(5)), pcre:/path (pcre_table(5), libpcre2)
// and regexp:/path (regexp_table(5), POSIX regex). A "proxy:" prefix is
// accepted and dropped (proxymap(8) is a Postfix process detail).
//
// Tables are loaded whole at open (operators' files; reload opens them
// again) and are immutable after: lookups are thread-safe.
//
// Differences from Postfix, on purpose: a malformed line (a key without a
// value, a bad pattern, an unbalanced if/endif, a bad CIDR) is a
// ConfigError naming file:line, where Postfix logs a warning and skips the
// line: a silently skipped access rule is a security bug. Duplicate keys in
// indexed tables keep the first value with a warning, as postmap does.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace mta::tables {

enum class Flavour {
    access,   // "key value" lines, postmap(1) syntax
    aliases,  // aliases(5): "name: value, value" with continuation lines
};

class Table {
public:
    virtual ~Table() = default;
    // Exact-key lookup for indexed tables (keys folded to lower case, as
    // postmap folds them); whole-string match for pcre/regexp/cidr (cidr: key
    // is an IP address). The result has $1..$9 substituted for regex tables.
    // nullopt when not found.
    virtual std::optional<std::string> lookup(std::string_view key) const = 0;
    // pcre, regexp, cidr: access(5) search order does not apply.
    virtual bool is_pattern() const = 0;
    virtual const std::string& spec() const = 0;  // "hash:/etc/aliases"
    // Non-fatal notes from loading ("FILE, line N: duplicate entry: key").
    virtual std::vector<std::string> warnings() const { return {}; }
};

// Opens a table; relative paths are under config_dir. Throws
// config::ConfigError naming the spec, file and line.
std::shared_ptr<Table> open_table(std::string_view spec, Flavour flavour, const std::string& config_dir);

// The same from text already read (no I/O): type is "texthash", "hash",
// "lmdb", "cidr", "pcre" or "regexp"; name is used in messages and as spec.
std::shared_ptr<Table> parse_table(std::string_view type, std::string_view text, Flavour flavour,
                                   const std::string& name);

// access(5) search orders, for check_*_access (and *_login_maps etc.).
//   address: user+ext@domain, user@domain, domain (then parent domains:
//   "example.com" when parent_matches_subdomains, else ".example.com"),
//   user+ext@, user@. Pattern tables get the whole address.
std::optional<std::string> lookup_address(const Table& table, std::string_view address,
                                          std::string_view recipient_delimiter,
                                          bool parent_matches_subdomains);
//   domain/hostname: the name, then parent domains as above.
std::optional<std::string> lookup_domain(const Table& table, std::string_view domain,
                                         bool parent_matches_subdomains);
//   client address: 1.2.3.4, 1.2.3, 1.2, 1 (IPv6 by colon groups, from the
//   right, as the address is written); pattern tables get the address.
std::optional<std::string> lookup_client_address(const Table& table, std::string_view ip);

}  // namespace mta::tables
