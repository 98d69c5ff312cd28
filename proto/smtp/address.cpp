// SMTP envelope address parsing; see address.h.
#include "smtp/address.h"

#include <cstdint>

namespace proto::smtp {

namespace {

// RFC 5322 atext.
bool is_atext(unsigned char c) {
    if (c >= 'a' && c <= 'z') return true;
    if (c >= 'A' && c <= 'Z') return true;
    if (c >= '0' && c <= '9') return true;
    switch (c) {
        case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
        case '-': case '/': case '=': case '?': case '^': case '_': case '`': case '{':
        case '|': case '}': case '~':
            return true;
        default:
            return false;
    }
}

bool is_let_dig(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool valid_label(std::string_view label, bool utf8) {
    if (label.empty() || label.size() > 63) return false;
    auto edge = [&](unsigned char c) { return is_let_dig(c) || (utf8 && c >= 0x80); };
    if (!edge(static_cast<unsigned char>(label.front())) || !edge(static_cast<unsigned char>(label.back())))
        return false;
    for (unsigned char c : label)
        if (!is_let_dig(c) && c != '-' && !(utf8 && c >= 0x80)) return false;
    return !utf8 || valid_utf8(label);
}

}  // namespace

bool valid_utf8(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
        auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t n;
        std::uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) { n = 1; cp = c & 0x1f; }
        else if (c >= 0xe0 && c <= 0xef) { n = 2; cp = c & 0x0f; }
        else if (c >= 0xf0 && c <= 0xf4) { n = 3; cp = c & 0x07; }
        else return false;
        if (i + n >= text.size()) return false;
        for (std::size_t k = 1; k <= n; ++k) {
            auto d = static_cast<unsigned char>(text[i + k]);
            if ((d & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (d & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

bool has_non_ascii(std::string_view text) {
    for (unsigned char c : text)
        if (c >= 0x80) return true;
    return false;
}

bool is_dot_string(std::string_view local, bool utf8) {
    if (local.empty() || local.front() == '.' || local.back() == '.') return false;
    char prev = 0;
    for (char c : local) {
        auto u = static_cast<unsigned char>(c);
        if (c == '.') {
            if (prev == '.') return false;
        } else if (!is_atext(u) && !(utf8 && u >= 0x80)) {
            return false;
        }
        prev = c;
    }
    return !utf8 || valid_utf8(local);
}

bool valid_domain(std::string_view domain, bool utf8) {
    if (domain.empty() || domain.size() > 255) return false;
    if (domain.front() == '[') {
        // Address literal: printable ASCII except brackets and backslash (RFC 5321 dcontent).
        if (domain.size() < 3 || domain.back() != ']') return false;
        for (unsigned char c : domain.substr(1, domain.size() - 2))
            if (c < 33 || c > 126 || c == '[' || c == ']' || c == '\\') return false;
        return true;
    }
    std::size_t start = 0;
    while (true) {
        auto dot = domain.find('.', start);
        auto label = domain.substr(start, dot == std::string_view::npos ? domain.npos : dot - start);
        if (!valid_label(label, utf8)) return false;
        if (dot == std::string_view::npos) return true;
        start = dot + 1;
    }
}

std::optional<Address> parse_mailbox(std::string_view text, std::string* error,
                                     AddressLimits limits) {
    auto fail = [&](const char* why) -> std::optional<Address> {
        if (error) *error = why;
        return std::nullopt;
    };
    Address a;
    std::size_t i = 0;
    if (!text.empty() && text[0] == '"') {
        // Quoted-string: qtextSMTP or backslash + any printable ASCII.
        ++i;
        bool closed = false;
        while (i < text.size()) {
            unsigned char c = static_cast<unsigned char>(text[i]);
            if (c == '"') {
                closed = true;
                ++i;
                break;
            }
            if (c == '\\') {
                if (i + 1 >= text.size()) return fail("bad quoted local part");
                unsigned char e = static_cast<unsigned char>(text[i + 1]);
                if (e < 32 || e > 126) return fail("bad character in local part");
                a.local.push_back(static_cast<char>(e));
                i += 2;
                continue;
            }
            if (c < 32 || c == 127 || (c > 126 && !limits.utf8)) return fail("bad character in local part");
            a.local.push_back(static_cast<char>(c));
            ++i;
        }
        if (!closed) return fail("unterminated quoted local part");
        if (limits.utf8 && !valid_utf8(a.local)) return fail("bad UTF-8 in local part");
        if (i >= text.size() && limits.allow_no_domain) {
            if (a.local.size() > limits.max_local) return fail("local part too long");
            return a;
        }
        if (i >= text.size() || text[i] != '@') return fail("missing domain");
    } else {
        auto at = text.rfind('@');
        if (at == std::string_view::npos && limits.allow_no_domain) {
            if (!is_dot_string(text, limits.utf8)) return fail("bad local part");
            if (text.size() > limits.max_local) return fail("local part too long");
            a.local = std::string(text);
            return a;
        }
        if (at == std::string_view::npos) return fail("missing domain");
        auto local = text.substr(0, at);
        if (!is_dot_string(local, limits.utf8)) return fail("bad local part");
        a.local = std::string(local);
        i = at;
    }
    if (a.local.size() > limits.max_local) return fail("local part too long");
    auto domain = text.substr(i + 1);
    // A trailing dot (a fully qualified name written as in DNS) is not part
    // of an RFC 5321 Domain; accepted and removed, as Postfix does.
    if (domain.size() > 1 && domain.back() == '.' && domain.front() != '[') domain.remove_suffix(1);
    if (domain.size() > limits.max_domain) return fail("domain too long");
    if (!valid_domain(domain, limits.utf8)) return fail("bad domain");
    a.domain = std::string(domain);
    return a;
}

std::string Address::to_string() const {
    if (empty()) return "";
    std::string out;
    if (is_dot_string(local, true)) {
        out = local;
    } else {
        out.push_back('"');
        for (char c : local) {
            if (c == '"' || c == '\\') out.push_back('\\');
            out.push_back(c);
        }
        out.push_back('"');
    }
    if (domain.empty()) return out;  // a bare local part (AddressLimits::allow_no_domain)
    out.push_back('@');
    out += domain;
    return out;
}

}  // namespace proto::smtp
