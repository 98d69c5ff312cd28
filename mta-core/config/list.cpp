// Postfix list syntax: split_list, parse_group, split_nameval, parse_time.
#include <limits>

#include "config.h"
#include "logical_lines.h"

namespace mta::config {

namespace detail {

std::vector<std::string> split_quoted(std::string_view text, std::string_view seps) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && seps.find(text[i]) != std::string_view::npos) ++i;
        if (i >= text.size()) break;
        std::size_t start = i;
        int level = 0;
        for (; i < text.size(); ++i) {
            char c = text[i];
            if (c == '{') {
                ++level;
            } else if (c == '}' && level > 0) {
                --level;
            } else if (level == 0 && seps.find(c) != std::string_view::npos) {
                break;
            }
        }
        out.emplace_back(text.substr(start, i - start));
    }
    return out;
}

bool strip_braces(std::string_view in, std::string& out) {
    in = trim(in);
    if (in.empty() || in.front() != '{') return false;
    int level = 0;
    std::size_t close = std::string_view::npos;
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '{') {
            ++level;
        } else if (in[i] == '}') {
            if (--level == 0) {
                close = i;
                break;
            }
        }
    }
    if (close == std::string_view::npos) return false;          // missing '}'
    if (!trim(in.substr(close + 1)).empty()) return false;      // text after '}'
    out = std::string(trim(in.substr(1, close - 1)));
    return true;
}

}  // namespace detail

namespace {
constexpr std::string_view comma_space = ", \t\r\n";
}

std::vector<std::string> split_list(std::string_view text) {
    return detail::split_quoted(text, comma_space);
}

std::optional<Group> parse_group(std::string_view element) {
    std::string inner;
    if (!detail::strip_braces(element, inner)) return std::nullopt;
    Group g;
    for (auto& item : split_list(inner)) {
        if (item.front() == '{') {
            std::string stripped;
            if (!detail::strip_braces(item, stripped)) return std::nullopt;
            g.items.push_back(std::move(stripped));
        } else {
            g.items.push_back(std::move(item));
        }
    }
    return g;
}

std::optional<std::pair<std::string, std::string>> split_nameval(std::string_view text) {
    std::size_t eq = text.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string_view name = detail::trim(text.substr(0, eq));
    if (name.empty()) return std::nullopt;
    return std::pair{std::string(name), std::string(detail::trim(text.substr(eq + 1)))};
}

std::chrono::seconds parse_time(std::string_view text, char default_unit, std::string_view what) {
    // Postfix's conv_time(3): digits, then at most one unit letter.
    auto bad = [&]() {
        return ConfigError(std::string(what) + ": bad time value: \"" + std::string(text) + "\"");
    };
    std::string_view s = detail::trim(text);
    std::size_t i = 0;
    long long n = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        if (n > (std::numeric_limits<long long>::max() - 9) / 10) throw bad();
        n = n * 10 + (s[i] - '0');
        ++i;
    }
    if (i == 0) throw bad();
    char unit = default_unit;
    if (i < s.size()) {
        if (i + 1 != s.size()) throw bad();
        unit = s[i];
    }
    long long mult = 0;
    switch (unit) {
        case 's': case 'S': mult = 1; break;
        case 'm': case 'M': mult = 60; break;
        case 'h': case 'H': mult = 3600; break;
        case 'd': case 'D': mult = 86400; break;
        case 'w': case 'W': mult = 7 * 86400; break;
        default: throw bad();
    }
    if (n > std::numeric_limits<long long>::max() / mult) throw bad();
    return std::chrono::seconds(n * mult);
}

}  // namespace mta::config
