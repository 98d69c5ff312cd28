// SMTP envelope address parsing; see address.h.
#include "smtp/address.h"

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

bool valid_label(std::string_view label) {
    if (label.empty() || label.size() > 63) return false;
    if (!is_let_dig(static_cast<unsigned char>(label.front())) ||
        !is_let_dig(static_cast<unsigned char>(label.back())))
        return false;
    for (unsigned char c : label)
        if (!is_let_dig(c) && c != '-') return false;
    return true;
}

}  // namespace

bool is_dot_string(std::string_view local) {
    if (local.empty() || local.front() == '.' || local.back() == '.') return false;
    char prev = 0;
    for (char c : local) {
        if (c == '.') {
            if (prev == '.') return false;
        } else if (!is_atext(static_cast<unsigned char>(c))) {
            return false;
        }
        prev = c;
    }
    return true;
}

bool valid_domain(std::string_view domain) {
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
        if (!valid_label(label)) return false;
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
            if (c < 32 || c > 126) return fail("bad character in local part");
            a.local.push_back(static_cast<char>(c));
            ++i;
        }
        if (!closed) return fail("unterminated quoted local part");
        if (i >= text.size() || text[i] != '@') return fail("missing domain");
    } else {
        auto at = text.rfind('@');
        if (at == std::string_view::npos) return fail("missing domain");
        auto local = text.substr(0, at);
        if (!is_dot_string(local)) return fail("bad local part");
        a.local = std::string(local);
        i = at;
    }
    if (a.local.size() > limits.max_local) return fail("local part too long");
    auto domain = text.substr(i + 1);
    // A trailing dot (a fully qualified name written as in DNS) is not part
    // of an RFC 5321 Domain; accepted and removed, as Postfix does.
    if (domain.size() > 1 && domain.back() == '.' && domain.front() != '[') domain.remove_suffix(1);
    if (domain.size() > limits.max_domain) return fail("domain too long");
    if (!valid_domain(domain)) return fail("bad domain");
    a.domain = std::string(domain);
    return a;
}

std::string Address::to_string() const {
    if (empty()) return "";
    std::string out;
    if (is_dot_string(local)) {
        out = local;
    } else {
        out.push_back('"');
        for (char c : local) {
            if (c == '"' || c == '\\') out.push_back('\\');
            out.push_back(c);
        }
        out.push_back('"');
    }
    out.push_back('@');
    out += domain;
    return out;
}

}  // namespace proto::smtp
