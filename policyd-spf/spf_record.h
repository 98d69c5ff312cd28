// RFC 7208 SPF record syntax: the pre-check run on every record before
// libspf2 sees it, plus domain and macro validation and the rewrite of a valid
// record into a form libspf2 1.2 evaluates correctly.
//
// Why our own parser: libspf2 follows RFC 4408 and accepts records RFC 7208
// calls permerror (bad toplabels, repeated redirect/exp, macro letters c/r/t
// outside exp, leading-zero CIDRs, non-ASCII), and rejects valid ones
// (unknown modifiers with '-', modifiers before mechanisms, /0 prefixes).
// Section 4.6: a syntax error anywhere in the record is a permerror, even in
// terms evaluation would never reach.
//
// Pure code: no I/O, no allocation beyond the result; safe on hostile input
// (records come from DNS). Limits: a record is at most max_record_bytes; the
// parser is linear in its length. This file is what the libFuzzer target runs.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spf {

// A TXT payload longer than this is not evaluated (permerror). DNS answers
// are at most 64 KiB; RFC 7208 3.4 asks publishers to stay under 450 bytes.
inline constexpr std::size_t max_record_bytes = 16 * 1024;

enum class Mechanism { all, include, a, mx, ptr, ip4, ip6, exists };

struct Directive {
    char qualifier = '+';  // + - ~ ?
    Mechanism mechanism = Mechanism::all;
    std::string domain_spec;  // include, a, mx, ptr, exists; empty = current domain
    int cidr4 = -1;           // a, mx, ip4: -1 when absent
    int cidr6 = -1;           // a, mx, ip6: -1 when absent
    std::array<std::uint8_t, 16> address{};  // ip4 (first 4 bytes) / ip6
};

struct Record {
    std::vector<Directive> directives;
    std::optional<std::string> redirect;  // domain-spec
    std::optional<std::string> exp;       // domain-spec
    std::size_t unknown_modifiers = 0;    // ignored, as section 6 requires
};

struct ParseResult {
    std::optional<Record> record;
    std::string error;  // set when record is empty: why it is a permerror
};

// True when txt is an SPF version 1 record: "v=spf1" (any case) alone or
// followed by a space (section 4.5). Other TXT records are not ours.
bool is_spf_record(std::string_view txt);

// Parse a whole record ("v=spf1 ..."). Any syntax error gives an error.
ParseResult parse_record(std::string_view text);

// macro-string of section 7.1. In_explanation allows the letters c, r, t
// and spaces (explain-string).
bool valid_macro_string(std::string_view s, bool in_explanation);

// domain-spec = macro-string domain-end (section 7.1), including the
// toplabel rules of domain-end when the name does not end in a macro.
bool valid_domain_spec(std::string_view s);

// A name usable as an identity or a lookup target: labels of 1..63 octets,
// at most 253 octets without the trailing dot, at least two labels
// (section 4.3). A trailing dot is allowed.
bool valid_domain_name(std::string_view name);

// What the macros of section 7.3 expand to.
struct MacroContext {
    std::string_view sender;         // s: local-part@domain
    std::string_view domain;         // d: the current domain
    std::string_view helo;           // h
    std::string_view receiver;       // r
    std::array<std::uint8_t, 16> ip{};  // i, c (first 4 bytes when !v6)
    bool v6 = false;
    std::int64_t now = 0;  // t, seconds since the epoch
};

// Expand an explain-string (section 6.2, 7): nullopt when it is not a valid
// one. %{p} expands to "unknown" (section 7.3 allows it and advises against
// the macro). The result is cut at max_out bytes.
std::optional<std::string> expand_explanation(std::string_view text, const MacroContext& ctx,
                                              std::size_t max_out);

// The record in the form libspf2 evaluates as RFC 7208 says, for a client of
// the given family:
//  - modifiers after the mechanisms; redirect dropped when an "all" is
//    present (section 6.1); unknown modifiers dropped (section 6);
//  - ip4 .../0 and ip6 .../0 split into two /1 halves (libspf2 rejects /0);
//  - a and mx: only the CIDR of the client's family kept; a /0 for that
//    family becomes exists:<name>.<probe suffix>, which our DNS layer answers
//    (see probe_* below), because libspf2 reads a 0 prefix as "none given".
std::string to_libspf2(const Record& record, bool client_v6);

// Probe names of the /0 rewrite. The DNS layer strips the suffix, runs the
// real lookups (A or AAAA of the name; MX then A/AAAA of each exchange) and
// answers the A query with one synthetic address when anything was found.
inline constexpr std::string_view probe_a6_suffix = ".a6.spf-probe.invalid";
inline constexpr std::string_view probe_mx4_suffix = ".mx4.spf-probe.invalid";
inline constexpr std::string_view probe_mx6_suffix = ".mx6.spf-probe.invalid";

}  // namespace spf
