// Rate-limit rules: what a rule counts, which requests it applies to, and the
// bucket a request falls in. Pure logic with no I/O, so the same code is unit
// tested, fuzzed and shipped.
//
// A rule applies to a request when the request is at a stage where the rule
// can stop mail (see Rule::role), every `match` condition holds, and every
// key attribute has a non-empty value. The bucket is named by the rule and
// the normalised key values (lower case; domains without a trailing dot;
// networks masked to the configured prefix).
//
// Security: every attribute value is hostile input. Values are at most one
// policy line (8 KiB, enforced by the request parser); regular expressions
// are POSIX extended (glibc regexec, no backreferences from the
// configuration are needed), compiled once at configuration time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/action.h"
#include "policy/request.h"

namespace ratelimit {

// The request attributes a bucket can be keyed by.
enum class KeyAttribute {
    sasl_username,
    sender,
    sender_domain,
    client_address,
    client_network,
    recipient,
    recipient_domain,
};

std::optional<KeyAttribute> parse_key_attribute(std::string_view name);
std::string_view to_string(KeyAttribute a);

// What one event is, and when it is counted.
enum class CountKind {
    recipients,   // 1 per RCPT
    messages,     // 1 per message, at END-OF-MESSAGE
    size,         // the `size` attribute, at END-OF-MESSAGE
    connections,  // 1 per CONNECT
};

std::optional<CountKind> parse_count_kind(std::string_view name);
std::string_view to_string(CountKind k);

// Postfix's protocol_state values a decider sees.
enum class Stage { connect, helo, mail, rcpt, data, end_of_message, other };
Stage parse_stage(std::string_view protocol_state);

// What a rule does at one stage.
enum class Role {
    none,     // the rule does not look at this stage
    check,    // refuse if the event that is coming would not fit; consume nothing
    consume,  // the counting stage: refuse if it does not fit, else count it
};

// One `match` condition: the attribute's value equals one of `values`
// (case-insensitive) or matches one of the regular expressions.
class Match {
public:
    // text is "value" or "/regex/". Throws std::invalid_argument naming the
    // problem (empty regex, compile error).
    void add(std::string_view text);
    bool matches(std::string_view value) const;
    const std::string& attribute() const { return attribute_; }
    void set_attribute(std::string a) { attribute_ = std::move(a); }
    bool empty() const { return exact_.empty() && regexes_.empty(); }

private:
    struct Regex;
    std::string attribute_;
    std::vector<std::string> exact_;  // lower case
    std::vector<std::shared_ptr<const Regex>> regexes_;
};

// A per-key limit from the overrides file: a number, or no limit at all.
struct Override {
    bool unlimited = false;
    std::int64_t limit = 0;
};

inline constexpr std::string_view kDefaultAction =
    "DEFER_IF_PERMIT 4.7.1 Rate limit exceeded, try again later";
inline constexpr std::int64_t kMaxLimit = 1'000'000'000'000'000;  // 10^15: exact in a double
inline constexpr std::int64_t kMaxWindowSeconds = 366 * 86400;

struct Rule {
    std::string name;
    std::vector<KeyAttribute> key;
    int ipv4_prefix = 24;
    int ipv6_prefix = 64;
    CountKind count = CountKind::recipients;
    std::int64_t limit = 0;
    std::int64_t window_seconds = 0;
    std::vector<Match> match;
    proto::policy::Action action;
    bool dry_run = false;
    // Normalised key (see bucket_id) -> override.
    std::unordered_map<std::string, Override> overrides;

    Role role(Stage stage) const;
    // The events this request represents for the rule at a stage: 1, or the
    // message size for `size` (at least 1 before END-OF-MESSAGE, so a check
    // asks "is there room for this message").
    std::int64_t cost(const proto::policy::Request& request, Stage stage) const;
    bool matches(const proto::policy::Request& request) const;
    // The normalised key values, or nullopt when one of them is empty (the
    // rule then does not apply).
    std::optional<std::vector<std::string>> key_values(const proto::policy::Request& request) const;
    // The limit for a key: an override, or the rule's.
    Override limit_for(const std::vector<std::string>& values) const;
};

// Normalised value of a key attribute in a request ("" when absent).
std::string key_value(const proto::policy::Request& request, KeyAttribute a, int ipv4_prefix,
                      int ipv6_prefix);
// The value a `match` condition on attribute sees: the derived key
// attributes (sender_domain, recipient_domain, client_network) are computed,
// anything else is the raw attribute.
std::string match_value(const proto::policy::Request& request, std::string_view attribute);

// Normalise a value the operator typed (overrides file, show/reset) the way
// key_value() normalises a request's value.
std::string normalise_key_text(KeyAttribute a, std::string_view text, int ipv4_prefix,
                               int ipv6_prefix);

// One string naming the key values, used as the overrides map key and inside
// the bucket hash: values joined by an ASCII unit separator (0x1f), which a
// policy line cannot usefully carry.
std::string join_key(const std::vector<std::string>& values);

// The overrides file: one override per line, '#' starts a comment.
//   RULE  KEY-VALUE...  LIMIT
// LIMIT is a non-negative integer or "unlimited"; there are as many key
// values as the rule has key attributes, in the rule's order. For a rule
// keyed by one attribute, a value "@domain" gives every key ending in
// "@domain" that limit unless the key has its own line.
struct OverrideLine {
    std::string rule;
    std::vector<std::string> values;
    Override value;
    int line = 0;
};
struct OverrideParse {
    std::vector<OverrideLine> lines;
    std::string error;  // "line N: why"; lines is empty then
};
inline constexpr std::size_t kMaxOverrideLines = 1'000'000;
OverrideParse parse_overrides(std::string_view text);

// Apply parsed lines to rules (normalising values); returns an error naming
// the line, or "".
std::string apply_overrides(std::vector<Rule>& rules, const std::vector<OverrideLine>& lines);

// Rule names are used in metrics labels, logs and the operator command.
bool valid_rule_name(std::string_view name);

}  // namespace ratelimit
