// RFC 3461 parameters; see dsn.h.
#include "smtp/dsn.h"

#include <array>
#include <cctype>

namespace proto::smtp {

namespace {

constexpr char kHex[] = "0123456789ABCDEF";

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;  // RFC 3461 4: HEXCHAR is upper-case
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

}  // namespace

std::optional<std::string> xtext_decode(std::string_view xtext) {
    std::string out;
    out.reserve(xtext.size());
    for (std::size_t i = 0; i < xtext.size(); ++i) {
        char c = xtext[i];
        if (c == '+') {
            if (i + 2 >= xtext.size()) return std::nullopt;
            int hi = hex_digit(xtext[i + 1]);
            int lo = hex_digit(xtext[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            char decoded = static_cast<char>(hi * 16 + lo);
            if (decoded < 32 || decoded > 126) return std::nullopt;
            out.push_back(decoded);
            i += 2;
            continue;
        }
        if (c < 33 || c > 126 || c == '=') return std::nullopt;
        out.push_back(c);
    }
    return out;
}

std::string xtext_encode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (unsigned char c : text) {
        if (c < 33 || c > 126 || c == '+' || c == '=') {
            out.push_back('+');
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 15]);
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
    return out;
}

std::optional<std::string> parse_notify(std::string_view value) {
    if (iequals(value, "NEVER")) return std::string("NEVER");
    static constexpr std::array<std::string_view, 3> kinds{"SUCCESS", "FAILURE", "DELAY"};
    std::array<bool, 3> seen{};
    std::size_t pos = 0;
    while (true) {
        std::size_t comma = value.find(',', pos);
        std::string_view word = value.substr(pos, comma == std::string_view::npos ? value.npos : comma - pos);
        bool known = false;
        for (std::size_t k = 0; k < kinds.size(); ++k) {
            if (!iequals(word, kinds[k])) continue;
            if (seen[k]) return std::nullopt;
            seen[k] = known = true;
        }
        if (!known) return std::nullopt;  // also NEVER inside a list, and empty words
        if (comma == std::string_view::npos) break;
        pos = comma + 1;
    }
    std::string out;
    for (std::size_t k = 0; k < kinds.size(); ++k)
        if (seen[k]) {
            if (!out.empty()) out.push_back(',');
            out.append(kinds[k]);
        }
    return out;
}

Notify notify_of(std::string_view canonical) {
    if (canonical.empty()) return Notify{};
    Notify n{false, false, false};
    if (canonical == "NEVER") return n;
    n.success = canonical.find("SUCCESS") != std::string_view::npos;
    n.failure = canonical.find("FAILURE") != std::string_view::npos;
    n.delay = canonical.find("DELAY") != std::string_view::npos;
    return n;
}

std::optional<std::string> parse_ret(std::string_view value) {
    if (iequals(value, "FULL")) return std::string("FULL");
    if (iequals(value, "HDRS")) return std::string("HDRS");
    return std::nullopt;
}

std::optional<std::string> parse_envid(std::string_view value) {
    if (value.empty() || value.size() > max_envid) return std::nullopt;
    return xtext_decode(value);
}

std::optional<std::string> parse_orcpt(std::string_view value) {
    if (value.size() > max_orcpt) return std::nullopt;
    std::size_t semi = value.find(';');
    if (semi == 0 || semi == std::string_view::npos || semi + 1 >= value.size()) return std::nullopt;
    std::string_view type = value.substr(0, semi);
    // addr-type is an atom (RFC 3461 4.2): letters, digits and '-' in practice.
    for (char c : type)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return std::nullopt;
    auto address = xtext_decode(value.substr(semi + 1));
    if (!address || address->empty()) return std::nullopt;
    return std::string(type) + ";" + *address;
}

std::string orcpt_parameter(std::string_view decoded) {
    std::size_t semi = decoded.find(';');
    if (semi == std::string_view::npos) return "rfc822;" + xtext_encode(decoded);
    return std::string(decoded.substr(0, semi + 1)) + xtext_encode(decoded.substr(semi + 1));
}

}  // namespace proto::smtp
