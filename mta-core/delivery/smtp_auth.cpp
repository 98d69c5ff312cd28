// SMTP AUTH client helpers; see smtp_auth.h.
#include "delivery/smtp_auth.h"

#include <algorithm>
#include <cctype>


namespace mta::delivery {

namespace {

std::string upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

std::optional<SaslCredentials> parse_credentials(std::string_view value) {
    auto colon = value.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    return SaslCredentials{std::string(value.substr(0, colon)), std::string(value.substr(colon + 1))};
}

SaslSecurity parse_sasl_security(std::string_view options) {
    SaslSecurity s{false, false, false, false, false};
    std::string word;
    auto flush = [&] {
        if (word == "noplaintext") s.noplaintext = true;
        if (word == "noanonymous") s.noanonymous = true;
        if (word == "nodictionary") s.nodictionary = true;
        if (word == "noactive") s.noactive = true;
        if (word == "mutual_auth") s.mutual_auth = true;
        word.clear();
    };
    for (char c : options) {
        if (c == ',' || c == ' ' || c == '\t') flush();
        else word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    flush();
    return s;
}

std::string filter_mechanisms(const std::vector<std::string>& offered, const std::vector<std::string>& filter) {
    std::string out;
    for (const auto& m : offered) {
        bool allowed = filter.empty() ||
                       std::any_of(filter.begin(), filter.end(), [&](const std::string& f) { return upper(f) == upper(m); });
        if (!allowed) continue;
        if (!out.empty()) out += ' ';
        out += upper(m);
    }
    return out;
}

}  // namespace mta::delivery
