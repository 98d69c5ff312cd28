// Sender normalisation; see sender.h. Every step works on string_views of
// the lower-cased copy and copies once at the end.
#include "sender.h"

#include <array>

namespace greylist {

namespace {

bool is_word(char c) {  // Perl's \w in the C locale
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum_lower(char c) { return (c >= 'a' && c <= 'z') || is_digit(c); }

// postgrey's /^[0-9a-z]{10}/: a BATV tag is K DDD SSSSSS (key, day, hash).
bool looks_like_batv_tag(std::string_view s) {
    if (s.size() < 10) return false;
    for (std::size_t i = 0; i < 10; ++i)
        if (!is_alnum_lower(s[i])) return false;
    return true;
}

// Split "a=b=c" into exactly three '='-separated fields; false otherwise.
bool split3(std::string_view s, std::array<std::string_view, 3>& out) {
    std::size_t first = s.find('=');
    if (first == std::string_view::npos) return false;
    std::size_t second = s.find('=', first + 1);
    if (second == std::string_view::npos) return false;
    if (s.find('=', second + 1) != std::string_view::npos) return false;
    out = {s.substr(0, first), s.substr(first + 1, second - first - 1), s.substr(second + 1)};
    return true;
}

// SRS (the Sender Rewriting Scheme, Shevek's SRS spec, used by
// postsrsd and libsrs2):
//   SRS0=HHH=TT=orig-domain=orig-local@forwarder
//   SRS1=HHH=first-forwarder==HHH=TT=orig-domain=orig-local@forwarder
// The separator after SRS0/SRS1 may be '=', '+' or '-'. On success, local and
// domain are replaced by the original sender's parts.
bool undo_srs(std::string_view& local, std::string_view& domain) {
    if (local.size() < 5 || local.substr(0, 3) != "srs") return false;
    char kind = local[3];
    char sep = local[4];
    if ((kind != '0' && kind != '1') || (sep != '=' && sep != '+' && sep != '-')) return false;
    std::string_view rest = local.substr(5);
    if (kind == '1') {
        std::size_t pos = rest.find("==");
        if (pos == std::string_view::npos) return false;
        rest = rest.substr(pos + 2);
    }
    // rest = HHH=TT=orig-domain=orig-local (orig-local may contain '=')
    std::size_t a = rest.find('=');
    if (a == std::string_view::npos) return false;
    std::size_t b = rest.find('=', a + 1);
    if (b == std::string_view::npos) return false;
    std::size_t c = rest.find('=', b + 1);
    if (c == std::string_view::npos) return false;
    std::string_view orig_domain = rest.substr(b + 1, c - b - 1);
    std::string_view orig_local = rest.substr(c + 1);
    if (orig_domain.empty() || orig_local.empty()) return false;
    local = orig_local;
    domain = orig_domain;
    return true;
}

// BATV (draft-levine-smtp-batv) is prvs=TAG=user, but shows up as
// prvs=user=TAG too; like postgrey, take the field that does not look like a
// tag, the standard one if unsure. Gateways use the same scheme under their own
// prefixes: msprvs1=TAG=user, and btv1==TAG==user (Barracuda).
void undo_batv(std::string_view& local) {
    if (local.substr(0, 6) == "btv1==") {
        std::string_view rest = local.substr(6);
        std::size_t sep = rest.find("==");
        if (sep != std::string_view::npos && sep > 0 && sep + 2 < rest.size())
            local = rest.substr(sep + 2);
        return;
    }
    if (local.substr(0, 5) != "prvs=" && local.substr(0, 8) != "msprvs1=") return;
    std::array<std::string_view, 3> f;
    if (!split3(local, f)) return;
    bool tag1 = looks_like_batv_tag(f[1]);
    bool tag2 = looks_like_batv_tag(f[2]);
    local = (tag2 && !tag1) ? f[1] : f[2];
}

}  // namespace

std::string lower_ascii(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

std::string normalise_sender(std::string_view sender) {
    std::string lowered = lower_ascii(sender);
    std::string_view all = lowered;
    // The domain follows the last '@' (a quoted local part may contain one).
    std::size_t at = all.rfind('@');
    if (at == std::string_view::npos) return lowered;
    std::string_view local = all.substr(0, at);
    std::string_view domain = all.substr(at + 1);

    undo_srs(local, domain);
    undo_batv(local);
    // Strip "+extension" (mailing-list VERP, sub-addressing).
    if (std::size_t plus = local.find('+'); plus != std::string_view::npos)
        local = local.substr(0, plus);

    std::string out;
    out.reserve(local.size() + 1 + domain.size());
    // Fold every all-digit word (Perl \b\d+\b) into '#'.
    for (std::size_t i = 0; i < local.size();) {
        if (!is_word(local[i])) {
            out.push_back(local[i++]);
            continue;
        }
        std::size_t end = i;
        bool digits_only = true;
        while (end < local.size() && is_word(local[end])) {
            digits_only = digits_only && is_digit(local[end]);
            ++end;
        }
        if (digits_only)
            out.push_back('#');
        else
            out.append(local.substr(i, end - i));
        i = end;
    }
    out.push_back('@');
    out.append(domain);
    return out;
}

}  // namespace greylist
