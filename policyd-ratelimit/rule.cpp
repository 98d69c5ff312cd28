// Rules: applicability, bucket keys and the overrides file. See rule.h.
#include "rule.h"

#include <regex.h>

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "net/address.h"

namespace ratelimit {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

// The domain of an address: after the last '@', lower case, without a
// trailing dot (RFC 5321 domains are case-insensitive; "example.com." and
// "example.com" are one domain). "" when there is no domain.
std::string domain_of(std::string_view address) {
    auto at = address.rfind('@');
    if (at == std::string_view::npos) return {};
    std::string d = lower(address.substr(at + 1));
    while (!d.empty() && d.back() == '.') d.pop_back();
    return d;
}

std::string address_text(std::string_view value) {
    if (value.empty()) return {};
    if (auto ip = proto::net::IpAddress::parse(value)) return ip->to_string();
    return lower(value);
}

std::string network_text(std::string_view value, int ipv4_prefix, int ipv6_prefix) {
    if (value.empty()) return {};
    auto slash = value.find('/');
    auto ip = proto::net::IpAddress::parse(value.substr(0, slash));
    if (!ip) return lower(value);
    int prefix = ip->v6 ? ipv6_prefix : ipv4_prefix;
    return ip->masked(prefix).to_string() + "/" + std::to_string(prefix);
}

std::int64_t parse_size(std::string_view text) {
    std::int64_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return 0;
        v = v * 10 + (c - '0');
        if (v > kMaxLimit) return kMaxLimit;
    }
    return v;
}

// glibc's regcomp builds `x+` as `xx*` and `x{m,n}` as n copies of x, so a
// short pattern such as "(((a+)+)+)..." or "((a{99}){99}){99}" takes memory
// exponential in its length (a 120-byte pattern was seen to take 2 GB).
// Estimate the size of the expanded pattern and refuse big ones; repeated
// quantifiers ("a++", undefined in POSIX EREs) are refused outright.
// Returns why, or "".
std::string regex_cost_problem(std::string_view p) {
    constexpr double kMaxNodes = 10000;
    std::vector<double> open{0};  // expanded size of each open group so far
    double last = 0;              // size of the atom or group just read (0: none)
    bool quantified = false;      // the last token was a quantifier
    auto total = [&] {
        double t = 0;
        for (double w : open) t += w;
        return t;
    };
    auto atom = [&](double w) {
        open.back() += w;
        last = w;
        quantified = false;
    };
    for (std::size_t i = 0; i < p.size(); ++i) {
        double factor = 0;  // > 0: a quantifier repeating `last` this many times
        switch (p[i]) {
            case '\\': ++i; atom(1); break;
            case '[': {
                std::size_t j = i + 1;
                if (j < p.size() && p[j] == '^') ++j;
                if (j < p.size() && p[j] == ']') ++j;
                while (j < p.size() && p[j] != ']') {
                    if (p[j] == '[' && j + 1 < p.size() &&
                        (p[j + 1] == ':' || p[j + 1] == '.' || p[j + 1] == '=')) {
                        const char end[] = {p[j + 1], ']', '\0'};
                        auto close = p.find(end, j + 2);
                        j = close == std::string_view::npos ? p.size() : close + 2;
                    } else {
                        ++j;
                    }
                }
                i = j;
                atom(1);
                break;
            }
            case '(': open.push_back(0); last = 0; quantified = false; break;
            case ')':
                if (open.size() > 1) {
                    double w = open.back();
                    open.pop_back();
                    atom(std::max(w, 1.0));
                } else {
                    atom(1);
                }
                break;
            case '|': last = 0; quantified = false; break;
            case '*':
            case '?': factor = 1; break;
            case '+': factor = 2; break;
            case '{': {
                // {m}, {m,}, {m,n}; anything else is left to regcomp.
                std::size_t j = i + 1;
                double m = 0, n = -1;
                bool digits = false, comma = false;
                for (; j < p.size() && p[j] != '}'; ++j) {
                    char c = p[j];
                    if (c >= '0' && c <= '9') {
                        double& v = comma ? n : m;
                        v = (v < 0 ? 0 : v) * 10 + (c - '0');
                        if (v > 1e6) v = 1e6;
                        digits = true;
                    } else if (c == ',' && !comma) {
                        comma = true;
                    } else {
                        break;
                    }
                }
                if (j >= p.size() || p[j] != '}' || !digits) {
                    atom(1);
                    break;
                }
                i = j;
                factor = std::max(1.0, n >= 0 ? n : (comma ? m + 1 : m));
                break;
            }
            default: atom(1);
        }
        if (factor > 0) {
            if (quantified) return "repeated quantifier";
            open.back() += last * (factor - 1);
            last *= factor;
            quantified = true;
        }
        if (total() > kMaxNodes) return "too complex (repetitions expand it too much)";
    }
    return {};
}

}  // namespace

std::optional<KeyAttribute> parse_key_attribute(std::string_view name) {
    static constexpr KeyAttribute all[] = {
        KeyAttribute::sasl_username,  KeyAttribute::sender,         KeyAttribute::sender_domain,
        KeyAttribute::client_address, KeyAttribute::client_network, KeyAttribute::recipient,
        KeyAttribute::recipient_domain};
    for (auto a : all)
        if (to_string(a) == name) return a;
    return std::nullopt;
}

std::string_view to_string(KeyAttribute a) {
    switch (a) {
        case KeyAttribute::sasl_username: return "sasl_username";
        case KeyAttribute::sender: return "sender";
        case KeyAttribute::sender_domain: return "sender_domain";
        case KeyAttribute::client_address: return "client_address";
        case KeyAttribute::client_network: return "client_network";
        case KeyAttribute::recipient: return "recipient";
        case KeyAttribute::recipient_domain: return "recipient_domain";
    }
    return "?";
}

std::optional<CountKind> parse_count_kind(std::string_view name) {
    if (name == "recipients") return CountKind::recipients;
    if (name == "messages") return CountKind::messages;
    if (name == "size") return CountKind::size;
    if (name == "connections") return CountKind::connections;
    return std::nullopt;
}

std::string_view to_string(CountKind k) {
    switch (k) {
        case CountKind::recipients: return "recipients";
        case CountKind::messages: return "messages";
        case CountKind::size: return "size";
        case CountKind::connections: return "connections";
    }
    return "?";
}

Stage parse_stage(std::string_view s) {
    if (iequals(s, "RCPT")) return Stage::rcpt;
    if (iequals(s, "END-OF-MESSAGE")) return Stage::end_of_message;
    if (iequals(s, "DATA")) return Stage::data;
    if (iequals(s, "MAIL")) return Stage::mail;
    if (iequals(s, "CONNECT")) return Stage::connect;
    if (iequals(s, "EHLO") || iequals(s, "HELO")) return Stage::helo;
    return Stage::other;
}

// ---- Match ------------------------------------------------------------------

struct Match::Regex {
    regex_t re{};
    bool compiled = false;
    ~Regex() {
        if (compiled) regfree(&re);
    }
};

void Match::add(std::string_view text) {
    if (text.size() >= 2 && text.front() == '/' && text.back() == '/') {
        std::string pattern(text.substr(1, text.size() - 2));
        if (pattern.empty()) throw std::invalid_argument("empty regular expression");
        if (pattern.find('\0') != std::string::npos)
            throw std::invalid_argument("NUL in regular expression");
        if (auto why = regex_cost_problem(pattern); !why.empty())
            throw std::invalid_argument("regular expression /" + pattern + "/: " + why);
        auto regex = std::make_shared<Regex>();
        int rc = regcomp(&regex->re, pattern.c_str(), REG_EXTENDED | REG_ICASE | REG_NOSUB);
        if (rc != 0) {
            char buf[256];
            regerror(rc, &regex->re, buf, sizeof buf);
            throw std::invalid_argument("bad regular expression /" + pattern + "/: " + buf);
        }
        regex->compiled = true;
        regexes_.push_back(std::move(regex));
        return;
    }
    exact_.push_back(lower(text));
}

bool Match::matches(std::string_view value) const {
    for (const auto& e : exact_)
        if (iequals(e, value)) return true;
    if (regexes_.empty()) return false;
    // REG_STARTEND matches the whole value even if it holds a NUL; the copy
    // gives it a terminating NUL too, since sanitizers' regexec (and other
    // libcs) read the subject as a C string whatever the flags.
    const std::string subject(value);
    for (const auto& r : regexes_) {
        regmatch_t span[1];
        span[0].rm_so = 0;
        span[0].rm_eo = static_cast<regoff_t>(subject.size());
        if (regexec(&r->re, subject.c_str(), 1, span, REG_STARTEND) == 0) return true;
    }
    return false;
}

// ---- Rule -------------------------------------------------------------------

Role Rule::role(Stage stage) const {
    switch (count) {
        case CountKind::recipients:
            return stage == Stage::rcpt ? Role::consume : Role::none;
        case CountKind::messages:
        case CountKind::size:
            // Refuse as early as the message can be stopped: a sender at the
            // limit is told at MAIL or RCPT, before it sends the data.
            if (stage == Stage::end_of_message) return Role::consume;
            if (stage == Stage::mail || stage == Stage::rcpt || stage == Stage::data)
                return Role::check;
            return Role::none;
        case CountKind::connections:
            return stage == Stage::connect ? Role::consume : Role::none;
    }
    return Role::none;
}

std::int64_t Rule::cost(const proto::policy::Request& request, Stage stage) const {
    if (count != CountKind::size) return 1;
    std::int64_t size = parse_size(request.get("size"));
    // Before END-OF-MESSAGE `size` is the SIZE= the client declared (or 0).
    return stage == Stage::end_of_message ? size : std::max<std::int64_t>(size, 1);
}

bool Rule::matches(const proto::policy::Request& request) const {
    for (const auto& m : match)
        if (!m.matches(match_value(request, m.attribute()))) return false;
    return true;
}

std::optional<std::vector<std::string>> Rule::key_values(
    const proto::policy::Request& request) const {
    std::vector<std::string> values;
    values.reserve(key.size());
    for (auto a : key) {
        std::string v = key_value(request, a, ipv4_prefix, ipv6_prefix);
        if (v.empty()) return std::nullopt;
        values.push_back(std::move(v));
    }
    return values;
}

Override Rule::limit_for(const std::vector<std::string>& values) const {
    if (!overrides.empty()) {
        if (auto it = overrides.find(join_key(values)); it != overrides.end()) return it->second;
        if (values.size() == 1) {
            auto at = values[0].rfind('@');
            if (at != std::string::npos) {
                if (auto it = overrides.find(values[0].substr(at)); it != overrides.end())
                    return it->second;
            }
        }
    }
    return Override{false, limit};
}

std::string key_value(const proto::policy::Request& request, KeyAttribute a, int ipv4_prefix,
                      int ipv6_prefix) {
    switch (a) {
        case KeyAttribute::sasl_username: return lower(request.get("sasl_username"));
        case KeyAttribute::sender: return lower(request.get("sender"));
        case KeyAttribute::sender_domain: return domain_of(request.get("sender"));
        case KeyAttribute::client_address: return address_text(request.get("client_address"));
        case KeyAttribute::client_network:
            return network_text(request.get("client_address"), ipv4_prefix, ipv6_prefix);
        case KeyAttribute::recipient: return lower(request.get("recipient"));
        case KeyAttribute::recipient_domain: return domain_of(request.get("recipient"));
    }
    return {};
}

std::string match_value(const proto::policy::Request& request, std::string_view attribute) {
    if (attribute == "sender_domain") return domain_of(request.get("sender"));
    if (attribute == "recipient_domain") return domain_of(request.get("recipient"));
    return std::string(request.get(attribute));
}

std::string normalise_key_text(KeyAttribute a, std::string_view text, int ipv4_prefix,
                               int ipv6_prefix) {
    switch (a) {
        case KeyAttribute::client_address: return address_text(text);
        case KeyAttribute::client_network: return network_text(text, ipv4_prefix, ipv6_prefix);
        case KeyAttribute::sender_domain:
        case KeyAttribute::recipient_domain: {
            // Accept "example.com", "@example.com" and "user@example.com".
            if (text.find('@') != std::string_view::npos) return domain_of(text);
            std::string d = lower(text);
            while (!d.empty() && d.back() == '.') d.pop_back();
            return d;
        }
        default: return lower(text);
    }
}

std::string join_key(const std::vector<std::string>& values) {
    std::string out;
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i) out += '\x1f';
        out += values[i];
    }
    return out;
}

bool valid_rule_name(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.';
        if (!ok) return false;
    }
    return true;
}

// ---- Overrides file -----------------------------------------------------------

OverrideParse parse_overrides(std::string_view text) {
    OverrideParse out;
    int number = 0;
    auto fail = [&](std::string why) {
        out.lines.clear();
        out.error = "line " + std::to_string(number) + ": " + why;
        return out;
    };
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        ++number;
        if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
        std::vector<std::string_view> tokens;
        std::size_t i = 0;
        while (i < line.size()) {
            while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
            std::size_t start = i;
            while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
            if (i > start) tokens.push_back(line.substr(start, i - start));
        }
        if (tokens.empty()) continue;
        if (tokens.size() < 3) return fail("expected RULE KEY... LIMIT");
        if (out.lines.size() >= kMaxOverrideLines) return fail("too many overrides");
        OverrideLine o;
        o.line = number;
        o.rule = std::string(tokens.front());
        if (!valid_rule_name(o.rule)) return fail("bad rule name");
        std::string_view limit = tokens.back();
        if (limit == "unlimited") {
            o.value.unlimited = true;
        } else {
            std::int64_t v = 0;
            auto [p, ec] = std::from_chars(limit.data(), limit.data() + limit.size(), v);
            if (ec != std::errc() || p != limit.data() + limit.size() || v < 0 || v > kMaxLimit)
                return fail("limit must be an integer from 0 to 10^15 or \"unlimited\"");
            o.value.limit = v;
        }
        for (std::size_t t = 1; t + 1 < tokens.size(); ++t) o.values.emplace_back(tokens[t]);
        out.lines.push_back(std::move(o));
    }
    return out;
}

std::string apply_overrides(std::vector<Rule>& rules, const std::vector<OverrideLine>& lines) {
    for (const auto& o : lines) {
        auto rule = std::find_if(rules.begin(), rules.end(),
                                 [&](const Rule& r) { return r.name == o.rule; });
        std::string where = "line " + std::to_string(o.line) + ": ";
        if (rule == rules.end()) return where + "no rule named \"" + o.rule + "\"";
        if (o.values.size() != rule->key.size())
            return where + "rule \"" + o.rule + "\" has " + std::to_string(rule->key.size()) +
                   " key attribute(s), the line gives " + std::to_string(o.values.size());
        std::vector<std::string> values;
        for (std::size_t i = 0; i < o.values.size(); ++i) {
            // "@domain" on a one-attribute address key is kept as written.
            if (rule->key.size() == 1 && o.values[i].starts_with('@') &&
                o.values[i].size() > 1)
                values.push_back("@" + normalise_key_text(KeyAttribute::sender_domain,
                                                          o.values[i].substr(1), 0, 0));
            else
                values.push_back(normalise_key_text(rule->key[i], o.values[i], rule->ipv4_prefix,
                                                    rule->ipv6_prefix));
            if (values.back().empty()) return where + "empty key value";
        }
        rule->overrides[join_key(values)] = o.value;
    }
    return {};
}

}  // namespace ratelimit
