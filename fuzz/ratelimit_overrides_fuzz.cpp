// Fuzz the rate-limit overrides file: arbitrary text is parsed; a parse
// either fails naming a line or yields lines that print and parse back the
// same, apply to rules without throwing, and are then found by limit_for()
// under the values they name. The text is also tried as a `match` pattern.
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "rule.h"

namespace {

std::vector<ratelimit::Rule> make_rules() {
    using ratelimit::KeyAttribute;
    std::vector<ratelimit::Rule> rules(3);
    rules[0].name = "user";
    rules[0].key = {KeyAttribute::sasl_username};
    rules[1].name = "net";
    rules[1].key = {KeyAttribute::client_network};
    rules[2].name = "pair";
    rules[2].key = {KeyAttribute::sender_domain, KeyAttribute::client_address};
    for (auto& r : rules) r.limit = 7;
    return rules;
}

std::string print(const std::vector<ratelimit::OverrideLine>& lines) {
    std::string out;
    for (const auto& l : lines) {
        out += l.rule;
        for (const auto& v : l.values) out += " " + v;
        out += l.value.unlimited ? std::string(" unlimited\n")
                                 : " " + std::to_string(l.value.limit) + "\n";
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = ratelimit::parse_overrides(text);
    if (!parsed.error.empty()) {
        if (!parsed.lines.empty() || !parsed.error.starts_with("line ")) std::abort();
    } else {
        for (const auto& l : parsed.lines) {
            if (l.values.empty() || l.line < 1) std::abort();
            if (!l.value.unlimited && (l.value.limit < 0 || l.value.limit > ratelimit::kMaxLimit))
                std::abort();
        }
        auto again = ratelimit::parse_overrides(print(parsed.lines));
        if (!again.error.empty() || again.lines.size() != parsed.lines.size()) std::abort();
        for (std::size_t i = 0; i < again.lines.size(); ++i) {
            const auto &a = parsed.lines[i], &b = again.lines[i];
            if (a.rule != b.rule || a.values != b.values || a.value.unlimited != b.value.unlimited ||
                a.value.limit != b.value.limit)
                std::abort();
        }
        auto rules = make_rules();
        if (ratelimit::apply_overrides(rules, parsed.lines).empty() && !parsed.lines.empty()) {
            // The last line is never overwritten by a later one.
            const auto& last = parsed.lines.back();
            for (const auto& r : rules) {
                if (r.name != last.rule || last.values[0].starts_with('@')) continue;
                std::vector<std::string> values;
                for (std::size_t i = 0; i < r.key.size(); ++i)
                    values.push_back(ratelimit::normalise_key_text(r.key[i], last.values[i],
                                                                   r.ipv4_prefix, r.ipv6_prefix));
                auto o = r.limit_for(values);
                if (o.unlimited != last.value.unlimited ||
                    (!o.unlimited && o.limit != last.value.limit))
                    std::abort();
            }
        }
    }
    // The same bytes as a `match` value: compiles or is refused, never crashes.
    ratelimit::Match m;
    try {
        m.add(text.substr(0, 256));
        (void)m.matches(text);
    } catch (const std::invalid_argument&) {
    }
    return 0;
}
