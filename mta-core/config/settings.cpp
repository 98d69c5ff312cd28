// Effective settings and $name expansion (mac_expand(3)). See config.h.
#include <algorithm>
#include <limits>
#include <set>

#include "config.h"
#include "logical_lines.h"

namespace mta::config {

namespace {

// mac_expand(3) gives up after this many nested expansions.
constexpr int max_nesting = 100;

bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Names used as $name, $(name) or ${name...} in text (best effort: a
// malformed reference ends the scan, the expander reports it).
void collect_references(std::string_view text, std::vector<std::string>& out) {
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
        if (j > start) out.emplace_back(text.substr(start, j - start));
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

}  // namespace

Settings::Settings(MainCf main, std::vector<std::string> service_names)
    : main_(std::move(main)), services_(std::move(service_names)) {}

Settings::Settings(MainCf main, const std::vector<MasterEntry>& master) : main_(std::move(main)) {
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
        if (const ParamInfo* p = find_param(name); p && p->support == Support::unsupported)
            throw ConfigError(origin + ": -o " + name + "=" + value +
                              ": parameter not supported by mta-core: " + std::string(p->hint));
        s.overrides_[name] = value;
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
    std::vector<std::string> stack{std::string(name)};
    std::string out;
    try {
        expand_into(raw(name), out, stack, 0);
    } catch (const ConfigError& e) {
        throw ConfigError(where(name) + e.what());
    }
    return out;
}

std::string Settings::expand(std::string_view text) const {
    std::vector<std::string> stack;
    std::string out;
    expand_into(text, out, stack, 0);
    return out;
}

std::string Settings::lookup_expanded(std::string_view name, std::vector<std::string>& stack,
                                      int depth, bool& is_defined) const {
    is_defined = defined(name);
    if (!is_defined) return {};
    if (std::find(stack.begin(), stack.end(), name) != stack.end()) {
        std::string loop;
        for (const auto& s : stack) loop += s + " -> ";
        throw ConfigError("macro expansion loop: " + loop + std::string(name));
    }
    stack.emplace_back(name);
    std::string out;
    expand_into(raw(name), out, stack, depth + 1);
    stack.pop_back();
    return out;
}

void Settings::expand_into(std::string_view text, std::string& out, std::vector<std::string>& stack,
                           int depth) const {
    if (depth > max_nesting) throw ConfigError("unreasonable macro call nesting");
    std::size_t i = 0;
    while (i < text.size()) {
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
            out += lookup_expanded(text.substr(i + 1, j - i - 1), stack, depth, d);
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
        std::size_t j = 0;
        while (j < body.size() && name_char(body[j])) ++j;
        std::string_view name = body.substr(0, j);
        if (name.empty())
            throw ConfigError("empty macro name: \"" + std::string(text) + "\"");
        bool d = false;
        if (j == body.size()) {
            out += lookup_expanded(name, stack, depth, d);
            continue;
        }
        char op = body[j];
        if (op != '?' && op != ':')
            throw ConfigError("attribute name syntax error at: \"" + std::string(body) + "\"");
        std::string_view rest = body.substr(j + 1);
        std::string value = lookup_expanded(name, stack, depth, d);
        bool nonempty = d && !value.empty();
        // ${name?{text1}:{text2}} (Postfix 3.0): both branches braced.
        std::string_view then_text = rest, else_text;
        bool two = false;
        if (op == '?' && !rest.empty() && rest.front() == '{') {
            std::size_t a = matching(rest, 0);
            if (a == std::string_view::npos)
                throw ConfigError("truncated macro reference: \"" + std::string(body) + "\"");
            then_text = rest.substr(1, a - 1);
            std::string_view tail = detail::trim(rest.substr(a + 1));
            if (!tail.empty()) {
                if (tail.front() != ':')
                    throw ConfigError("macro syntax error after '}': \"" + std::string(body) + "\"");
                tail = detail::trim(tail.substr(1));
                if (!tail.empty() && tail.front() == '{') {
                    std::size_t b = matching(tail, 0);
                    if (b == std::string_view::npos || !detail::trim(tail.substr(b + 1)).empty())
                        throw ConfigError("macro syntax error: \"" + std::string(body) + "\"");
                    tail = tail.substr(1, b - 1);
                }
                else_text = tail;
                two = true;
            }
        } else if (op == ':' && !rest.empty() && rest.front() == '{') {
            std::size_t a = matching(rest, 0);
            if (a != std::string_view::npos && detail::trim(rest.substr(a + 1)).empty())
                then_text = rest.substr(1, a - 1);
        }
        if (op == '?') {
            if (nonempty) {
                expand_into(then_text, out, stack, depth + 1);
            } else if (two) {
                expand_into(else_text, out, stack, depth + 1);
            }
        } else if (!nonempty) {
            expand_into(then_text, out, stack, depth + 1);
        }
    }
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
    std::vector<std::string> refs = referenced_;
    for (const auto& [n, p] : main_.params) collect_references(p.value, refs);
    for (const auto& [n, v] : overrides_) collect_references(v, refs);
    for (const auto& p : parameter_table()) collect_references(p.default_value, refs);
    if (std::find(refs.begin(), refs.end(), name) != refs.end()) return Known::referenced;
    return Known::unknown;
}

std::vector<std::string> Settings::validate() const {
    std::vector<std::string> warnings;
    std::string errors;
    auto check = [&](const std::string& name, const std::string& value, const std::string& at,
                     const std::string& file) {
        const ParamInfo* p = find_param(name);
        if (p && p->support == Support::unsupported) {
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

std::vector<std::string> Settings::ignored_notes() const {
    std::vector<std::string> notes;
    auto note = [&](const std::string& name, const std::string& at) {
        const ParamInfo* p = find_param(name);
        if (p && p->support == Support::ignored)
            notes.push_back(at + ": parameter " + name + " is ignored by mta-core: " +
                            std::string(p->hint));
    };
    for (const auto& [name, p] : main_.params) note(name, p.file + ", line " + std::to_string(p.line));
    for (const auto& [name, v] : overrides_) note(name, override_origin_);
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
