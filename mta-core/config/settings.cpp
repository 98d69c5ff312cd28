// Effective settings and $name expansion (mac_expand(3)). See config.h.
#include <algorithm>
#include <limits>
#include <optional>
#include <set>

#include "config.h"
#include "logical_lines.h"

namespace mta::config {

struct Settings::Expansion {
    std::vector<std::string> stack;
    std::size_t lookups = 0;
    // A program's own macros ($rbl_code, $client_address...): their values
    // are data, inserted as they are and never expanded again.
    const std::map<std::string, std::string, std::less<>>* literals = nullptr;
    const std::string* literal(std::string_view name) const {
        if (!literals) return nullptr;
        auto it = literals->find(name);
        return it == literals->end() ? nullptr : &it->second;
    }
};

namespace {

// mac_expand(3) gives up after this many nested expansions.
constexpr int max_nesting = 100;
// Not in Postfix: a bound on the work of one expansion (macro lookups) and
// on its result, against exponential chains such as a = $b$b, b = $c$c, ...
constexpr std::size_t max_lookups = 100000;
constexpr std::size_t max_output = 1 << 20;

bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Names used as $name, $(name) or ${name...} in text (best effort: a
// malformed reference ends the scan, the expander reports it).
void collect_references(std::string_view text, std::set<std::string, std::less<>>& out) {
    for (std::size_t i = 0; i + 1 < text.size(); ++i) {
        if (text[i] != '$') continue;
        std::size_t j = i + 1;
        if (text[j] == '$') {
            i = j;
            continue;
        }
        if (text[j] == '{' || text[j] == '(') ++j;
        std::size_t start = j;
        while (j < text.size() && name_char(text[j])) ++j;
        if (j > start) out.emplace(text.substr(start, j - start));
    }
}

// Index of the bracket that closes the one at open (same kind, nested).
std::size_t matching(std::string_view text, std::size_t open) {
    char o = text[open];
    char c = o == '{' ? '}' : ')';
    int level = 0;
    for (std::size_t i = open; i < text.size(); ++i) {
        if (text[i] == o) {
            ++level;
        } else if (text[i] == c && --level == 0) {
            return i;
        }
    }
    return std::string_view::npos;
}

std::string collapse_spaces(std::string_view s) {
    std::string out;
    bool space = false;
    for (char c : s) {
        if (detail::is_space(c)) {
            space = true;
            continue;
        }
        if (space && !out.empty()) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

// An unsupported parameter is refused unless it is set to Postfix's default
// (Debian's "mailbox_command =", a reinjection service's "-o
// content_filter="): that asks for nothing mta-core lacks.
bool refused(const ParamInfo* p, std::string_view value) {
    return p && p->support == Support::unsupported &&
           collapse_spaces(value) != collapse_spaces(p->default_value);
}

}  // namespace

// Names used as $name in the table's defaults (smtpd_per_record_deadline in
// smtpd_per_request_deadline's, ...): Postfix counts them as known.
static const std::set<std::string, std::less<>>& default_references() {
    static const std::set<std::string, std::less<>> refs = [] {
        std::set<std::string, std::less<>> r;
        for (const auto& p : parameter_table()) collect_references(p.default_value, r);
        return r;
    }();
    return refs;
}

Settings::Settings(MainCf main, std::vector<std::string> service_names)
    : main_(std::move(main)), services_(std::move(service_names)) {
    for (const auto& [n, p] : main_.params) collect_references(p.value, referenced_);
}

Settings::Settings(MainCf main, const std::vector<MasterEntry>& master) : main_(std::move(main)) {
    for (const auto& [n, p] : main_.params) collect_references(p.value, referenced_);
    for (const auto& e : master) {
        services_.push_back(e.service);
        for (const auto& [n, v] : e.overrides) collect_references(v, referenced_);
    }
    commands_known_ = true;
    for (const auto& e : master) service_commands_.emplace_back(e.service, e.command);
}

Settings Settings::with_overrides(const std::vector<std::pair<std::string, std::string>>& overrides,
                                  const std::string& origin) const {
    Settings s = *this;
    s.override_origin_ = origin;
    for (const auto& [name, value] : overrides) {
        if (name.empty() || std::any_of(name.begin(), name.end(), [](char c) {
                return detail::is_space(c) || c == '=';
            }))
            throw ConfigError(origin + ": bad -o parameter name: \"" + name + "\"");
        if (const ParamInfo* p = find_param(name); refused(p, value))
            throw ConfigError(origin + ": -o " + name + "=" + value +
                              ": parameter not supported by mta-core: " + std::string(p->hint));
        s.overrides_[name] = value;
        collect_references(value, s.referenced_);
    }
    return s;
}

Settings Settings::with_service(const MasterEntry& entry) const {
    Settings s = with_overrides(entry.overrides, entry.file + ", line " + std::to_string(entry.line) +
                                                     ": service " + entry.service);
    s.macros_["service_name"] = entry.service;
    return s;
}

void Settings::set_computed_default(std::string_view name, std::string value) {
    computed_[std::string(name)] = std::move(value);
}

const std::string* Settings::explicit_value(std::string_view name) const {
    if (auto it = overrides_.find(name); it != overrides_.end()) return &it->second;
    if (auto it = main_.params.find(name); it != main_.params.end()) return &it->second.value;
    return nullptr;
}

bool Settings::is_set(std::string_view name) const { return explicit_value(name) != nullptr; }

std::string Settings::origin(std::string_view name) const {
    if (overrides_.contains(name)) return override_origin_;
    if (auto it = main_.params.find(name); it != main_.params.end())
        return it->second.file + ", line " + std::to_string(it->second.line);
    return "default";
}

std::string Settings::where(std::string_view name) const {
    return origin(name) + ": parameter " + std::string(name) + ": ";
}

const ServiceParam* Settings::service_param(std::string_view name) const {
    // NAME_suffix for a master.cf service NAME whose command reads it.
    for (const auto& sp : service_parameter_table()) {
        if (name.size() <= sp.suffix.size() + 1 || !name.ends_with(sp.suffix)) continue;
        std::string_view svc = name.substr(0, name.size() - sp.suffix.size());
        if (!svc.ends_with('_')) continue;
        svc.remove_suffix(1);
        if (!commands_known_) {
            if (std::find(services_.begin(), services_.end(), svc) != services_.end()) return &sp;
            continue;
        }
        for (const auto& [service, command] : service_commands_) {
            if (service != svc) continue;
            bool time_limit = sp.suffix == "time_limit";
            // postconf: spawn and pipe have a time limit; delivery agents the
            // queue manager's per-transport limits.
            static const std::set<std::string, std::less<>> agents{
                "smtp", "lmtp", "local", "virtual", "pipe", "error", "discard"};
            if (time_limit ? (command == "spawn" || command == "pipe") : agents.contains(command))
                return &sp;
        }
    }
    return nullptr;
}

std::string Settings::raw(std::string_view name) const {
    if (const std::string* v = explicit_value(name)) return *v;
    if (auto it = computed_.find(name); it != computed_.end()) return it->second;
    if (auto it = macros_.find(name); it != macros_.end()) return it->second;
    if (const ParamInfo* p = find_param(name)) return std::string(p->default_value);
    if (const ServiceParam* sp = service_param(name)) return std::string(sp->default_value);
    return {};
}

bool Settings::defined(std::string_view name) const {
    return explicit_value(name) || computed_.contains(name) || macros_.contains(name) ||
           find_param(name) || service_param(name);
}

std::string Settings::str(std::string_view name) const {
    if (const ParamInfo* p = find_param(name); p && p->raw) return raw(name);
    Expansion x;
    x.stack.emplace_back(name);
    std::string out;
    try {
        expand_into(raw(name), out, x, 0);
    } catch (const ConfigError& e) {
        throw ConfigError(where(name) + e.what());
    }
    return out;
}

std::string Settings::expand(std::string_view text) const {
    Expansion x;
    std::string out;
    expand_into(text, out, x, 0);
    return out;
}

std::string Settings::expand(std::string_view text,
                             const std::map<std::string, std::string, std::less<>>& literals) const {
    Expansion x;
    x.literals = &literals;
    std::string out;
    expand_into(text, out, x, 0);
    return out;
}

std::string Settings::lookup_expanded(std::string_view name, Expansion& x, int depth,
                                      bool& is_defined) const {
    if (++x.lookups > max_lookups) throw ConfigError("too many macro expansions");
    if (const std::string* value = x.literal(name)) {
        is_defined = true;
        return *value;
    }
    is_defined = defined(name);
    if (!is_defined) return {};
    if (std::find(x.stack.begin(), x.stack.end(), name) != x.stack.end()) {
        std::string loop;
        for (const auto& s : x.stack) loop += s + " -> ";
        throw ConfigError("macro expansion loop: " + loop + std::string(name));
    }
    x.stack.emplace_back(name);
    std::string out;
    expand_into(raw(name), out, x, depth + 1);
    x.stack.pop_back();
    return out;
}

void Settings::expand_into(std::string_view text, std::string& out, Expansion& x, int depth) const {
    if (depth > max_nesting) throw ConfigError("unreasonable macro call nesting");
    std::size_t i = 0;
    while (i < text.size()) {
        if (out.size() > max_output) throw ConfigError("macro expansion result too long");
        char c = text[i];
        if (c != '$') {
            out += c;
            ++i;
            continue;
        }
        if (i + 1 >= text.size()) throw ConfigError("empty macro name: \"" + std::string(text) + "\"");
        char n = text[i + 1];
        if (n == '$') {
            out += '$';
            i += 2;
            continue;
        }
        if (name_char(n)) {
            std::size_t j = i + 1;
            while (j < text.size() && name_char(text[j])) ++j;
            bool d = false;
            out += lookup_expanded(text.substr(i + 1, j - i - 1), x, depth, d);
            i = j;
            continue;
        }
        if (n != '{' && n != '(')
            throw ConfigError("empty macro name: \"" + std::string(text) + "\"");
        std::size_t close = matching(text, i + 1);
        if (close == std::string_view::npos)
            throw ConfigError("truncated macro reference: \"" + std::string(text.substr(i)) + "\"");
        std::string_view body = text.substr(i + 2, close - i - 2);
        i = close + 1;
        char op = '?';
        bool cond = false;
        std::string_view branches;
        if (!body.empty() && body.front() == '{') {
            // ${{text1} OP {text2} ? {then} : {else}} (Postfix 3.0).
            std::size_t q = 0;
            cond = relational(body, q, x, depth);
            branches = body.substr(q);
        } else {
            std::size_t j = 0;
            while (j < body.size() && name_char(body[j])) ++j;
            std::string_view name = body.substr(0, j);
            if (name.empty()) throw ConfigError("empty macro name: \"" + std::string(text) + "\"");
            while (j < body.size() && detail::is_space(body[j])) ++j;
            bool d = false;
            if (j == body.size()) {
                out += lookup_expanded(name, x, depth, d);
                continue;
            }
            op = body[j];
            if (op != '?' && op != ':')
                throw ConfigError("attribute name syntax error at: \"" + std::string(body) + "\"");
            // As mac_expand: the test is on the looked-up (unexpanded) value,
            // so ${a:x} with a = $empty_thing gives nothing.
            if (++x.lookups > max_lookups) throw ConfigError("too many macro expansions");
            const std::string* value = x.literal(name);
            bool nonempty = value ? !value->empty() : defined(name) && !raw(name).empty();
            cond = op == '?' ? nonempty : !nonempty;
            branches = body.substr(j + 1);
        }
        // "text", "{text}", or after '?' also "{text1}:{text2}" / "{text1}:text2".
        std::string_view then_text = branches, else_text;
        bool two = false;
        std::string_view lb = branches;
        while (!lb.empty() && detail::is_space(lb.front())) lb.remove_prefix(1);
        if (!lb.empty() && lb.front() == '{') {
            std::size_t a = matching(lb, 0);
            if (a == std::string_view::npos)
                throw ConfigError("truncated macro reference: \"" + std::string(body) + "\"");
            then_text = lb.substr(1, a - 1);
            std::string_view tail = detail::trim(lb.substr(a + 1));
            if (!tail.empty()) {
                if (op != '?' || tail.front() != ':')
                    throw ConfigError("unexpected input after '}': \"" + std::string(body) + "\"");
                tail = detail::trim(tail.substr(1));
                if (!tail.empty() && tail.front() == '{') {
                    std::size_t b = matching(tail, 0);
                    if (b == std::string_view::npos || !detail::trim(tail.substr(b + 1)).empty())
                        throw ConfigError("unexpected input after '}': \"" + std::string(body) + "\"");
                    tail = tail.substr(1, b - 1);
                }
                else_text = tail;
                two = true;
            }
        }
        if (cond) {
            expand_into(then_text, out, x, depth + 1);
        } else if (two) {
            expand_into(else_text, out, x, depth + 1);
        }
    }
}

namespace {

// "3.6" -> {3, 6, 0}; nullopt if not a compatibility level.
std::optional<std::vector<long>> compat_level(std::string_view s) {
    std::vector<long> parts;
    for (const auto& p : detail::split_quoted(s, ".")) {
        if (p.empty() || p.size() > 9 || p.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
        parts.push_back(std::stol(p));
    }
    if (parts.empty() || parts.size() > 3 || s.front() == '.' || s.back() == '.' ||
        s.find("..") != std::string_view::npos)
        return std::nullopt;
    parts.resize(3, 0);
    return parts;
}

std::optional<long long> decimal(std::string_view s) {
    if (s.empty() || s.size() > 18) return std::nullopt;
    std::size_t i = s.front() == '-' ? 1 : 0;
    if (i == s.size() || s.find_first_not_of("0123456789", i) != std::string_view::npos) return std::nullopt;
    return std::stoll(std::string(s));
}

}  // namespace

bool Settings::relational(std::string_view body, std::size_t& pos, Expansion& x, int depth) const {
    auto syntax = [&](std::string_view what) {
        return ConfigError(std::string(what) + " in \"${" + std::string(body) + "}\"");
    };
    auto skip = [&] {
        while (pos < body.size() && detail::is_space(body[pos])) ++pos;
    };
    auto operand = [&]() {
        skip();
        if (pos >= body.size() || body[pos] != '{') throw syntax("'{' expected");
        std::size_t e = matching(body, pos);
        if (e == std::string_view::npos) throw syntax("missing '}'");
        std::string v;
        expand_into(body.substr(pos + 1, e - pos - 1), v, x, depth + 1);
        pos = e + 1;
        return v;  // not trimmed: "{ 5}" is the string " 5", as in Postfix
    };
    std::string left = operand();
    skip();
    std::size_t start = pos;
    while (pos < body.size() && std::string_view("=!<>").find(body[pos]) != std::string_view::npos) ++pos;
    if (body.substr(pos, 5) == "level") pos += 5;
    std::string_view opname = body.substr(start, pos - start);
    if (opname.empty()) throw syntax("unknown operator");
    std::string right = operand();
    skip();
    if (pos >= body.size() || body[pos] != '?') throw syntax("'?' expected");
    ++pos;
    bool level = opname.ends_with("level");
    std::string_view cmp = level ? opname.substr(0, opname.size() - 5) : opname;
    if (cmp != "==" && cmp != "!=" && cmp != "<" && cmp != "<=" && cmp != ">" && cmp != ">=")
        throw syntax("unknown operator");
    int order = 0;
    if (level) {
        auto a = compat_level(left), b = compat_level(right);
        if (!a || !b) throw syntax("malformed compatibility level");
        order = *a < *b ? -1 : (*a == *b ? 0 : 1);
    } else if (auto a = decimal(left), b = decimal(right); a && b) {
        order = *a < *b ? -1 : (*a == *b ? 0 : 1);  // both numbers: "2" == "02"
    } else {
        int c = left.compare(right);
        order = c < 0 ? -1 : (c == 0 ? 0 : 1);
    }
    if (cmp == "==") return order == 0;
    if (cmp == "!=") return order != 0;
    if (cmp == "<") return order < 0;
    if (cmp == "<=") return order <= 0;
    if (cmp == ">") return order > 0;
    return order >= 0;
}

long long Settings::integer(std::string_view name, long long min, long long max) const {
    std::string v = str(name);
    std::string_view s = detail::trim(v);
    long long n = 0;
    bool neg = false;
    std::size_t i = 0;
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        ++i;
    }
    if (i >= s.size()) throw ConfigError(where(name) + "bad numerical configuration: \"" + v + "\"");
    for (; i < s.size(); ++i) {
        if (s[i] < '0' || s[i] > '9' || n > (std::numeric_limits<long long>::max() - 9) / 10)
            throw ConfigError(where(name) + "bad numerical configuration: \"" + v + "\"");
        n = n * 10 + (s[i] - '0');
    }
    if (neg) n = -n;
    if (n < min)
        throw ConfigError(where(name) + "invalid value " + std::to_string(n) + " < " + std::to_string(min));
    if (n > max)
        throw ConfigError(where(name) + "invalid value " + std::to_string(n) + " > " + std::to_string(max));
    return n;
}

std::chrono::seconds Settings::time(std::string_view name, char default_unit) const {
    if (default_unit == 0) {
        const ParamInfo* p = find_param(name);
        default_unit = p && p->time_unit ? p->time_unit : 's';
    }
    std::string v = str(name);
    try {
        return parse_time(v, default_unit, "value");
    } catch (const ConfigError& e) {
        throw ConfigError(where(name) + e.what());
    }
}

bool Settings::boolean(std::string_view name) const {
    std::string v = str(name);
    std::string lower;
    for (char c : detail::trim(v)) lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    if (lower == "yes" || lower == "true") return true;
    if (lower == "no" || lower == "false") return false;
    throw ConfigError(where(name) + "bad boolean configuration: \"" + v + "\" (use yes or no)");
}

std::vector<std::string> Settings::list(std::string_view name) const { return split_list(str(name)); }

Settings::Known Settings::known(std::string_view name) const {
    if (find_param(name)) return Known::table;
    if (service_param(name)) return Known::service;
    // Used as $name in a value of main.cf, a master.cf override, or a
    // built-in default (Postfix's "user-defined" parameters).
    if (referenced_.contains(name) || default_references().contains(name)) return Known::referenced;
    return Known::unknown;
}

std::vector<std::string> Settings::validate() const {
    std::vector<std::string> warnings;
    std::string errors;
    auto check = [&](const std::string& name, const std::string& value, const std::string& at,
                     const std::string& file) {
        const ParamInfo* p = find_param(name);
        if (refused(p, value)) {
            if (!errors.empty()) errors += '\n';
            errors += at + ": parameter " + name + " is not supported by mta-core: " +
                      std::string(p->hint);
            return;
        }
        if (known(name) == Known::unknown)
            warnings.push_back(file + ": unused parameter: " + name + "=" + value);
    };
    for (const auto& [name, p] : main_.params)
        check(name, p.value, p.file + ", line " + std::to_string(p.line), p.file);
    for (const auto& [name, v] : overrides_) check(name, v, override_origin_, override_origin_);
    if (!errors.empty()) throw ConfigError(errors);
    return warnings;
}

void Settings::check_values() const {
    std::string errors;
    auto check = [&](const std::string& name) {
        try {
            const ParamInfo* p = find_param(name);
            if (known(name) == Known::unknown || (p && p->support != Support::supported)) return;
            str(name);
            if (!p) return;
            switch (p->kind) {
                case Kind::boolean: boolean(name); break;
                case Kind::integer:
                    integer(name, std::numeric_limits<long long>::min(), std::numeric_limits<long long>::max());
                    break;
                case Kind::time: time(name); break;
                case Kind::text: break;
            }
        } catch (const ConfigError& e) {
            if (!errors.empty()) errors += '\n';
            errors += e.what();
        }
    };
    for (const auto& [name, p] : main_.params) check(name);
    for (const auto& [name, v] : overrides_) check(name);
    if (!errors.empty()) throw ConfigError(errors);
}

std::vector<std::string> Settings::ignored_notes() const {
    std::vector<std::string> notes;
    auto note = [&](const std::string& name, const std::string& at) {
        const ParamInfo* p = find_param(name);
        if (p && p->support == Support::ignored)
            notes.push_back(at + ": parameter " + name + " is ignored by mta-core: " +
                            std::string(p->hint));
        if (p && p->support == Support::unsupported)
            notes.push_back(at + ": parameter " + name + " is set to its default, which mta-core "
                                 "does not implement either: " + std::string(p->hint));
    };
    for (const auto& [name, p] : main_.params)
        if (!refused(find_param(name), p.value)) note(name, p.file + ", line " + std::to_string(p.line));
    for (const auto& [name, v] : overrides_)
        if (!refused(find_param(name), v)) note(name, override_origin_);
    return notes;
}

std::string Settings::print_non_default() const {
    std::string out;
    for (const auto& [name, p] : main_.params) {  // std::map: sorted by name
        if (known(name) == Known::unknown) continue;
        std::string v = collapse_spaces(p.value);
        out += name;
        out += v.empty() ? " =" : " = " + v;
        out += '\n';
    }
    return out;
}

}  // namespace mta::config
