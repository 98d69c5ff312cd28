// SMTP AUTH client helpers; see smtp_auth.h.
#include "delivery/smtp_auth.h"

#include <algorithm>
#include <cctype>

#include "sasl/sasl.h"

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
    SaslSecurity s{false, false};
    std::string word;
    auto flush = [&] {
        if (word == "noplaintext") s.noplaintext = true;
        if (word == "noanonymous") s.noanonymous = true;
        word.clear();
    };
    for (char c : options) {
        if (c == ',' || c == ' ' || c == '\t') flush();
        else word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    flush();
    return s;
}

std::optional<std::string> choose_mechanism(const std::vector<std::string>& offered,
                                            const std::vector<std::string>& filter, const SaslSecurity& security) {
    // Ours in order of preference; both send the password as it is.
    for (const char* mine : {"PLAIN", "LOGIN"}) {
        if (security.noplaintext) break;
        bool on_offer = std::any_of(offered.begin(), offered.end(), [&](const std::string& m) { return upper(m) == mine; });
        bool allowed = filter.empty() ||
                       std::any_of(filter.begin(), filter.end(), [&](const std::string& m) { return upper(m) == mine; });
        if (on_offer && allowed) return std::string(mine);
    }
    return std::nullopt;
}

std::string plain_response(const SaslCredentials& c) {
    std::string raw;
    raw.push_back('\0');
    raw += c.user;
    raw.push_back('\0');
    raw += c.password;
    return sasl::base64_encode(raw);
}

}  // namespace mta::delivery
