// RFC 7208 record syntax (see spf_record.h). The grammar is section 12's
// ABNF; section numbers are cited where a rule is applied.
#include "spf_record.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace spf {

namespace {

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }
char lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

bool is_delimiter(char c) {
    return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

// name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
bool valid_name(std::string_view s) {
    if (s.empty() || !is_alpha(s[0])) return false;
    for (char c : s)
        if (!is_alnum(c) && c != '-' && c != '_' && c != '.') return false;
    return true;
}

// toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
bool valid_toplabel(std::string_view s) {
    if (s.empty() || s.size() > 63) return false;
    bool alpha = false, dash = false;
    for (char c : s) {
        if (c == '-')
            dash = true;
        else if (is_alpha(c))
            alpha = true;
        else if (!is_digit(c))
            return false;
    }
    if (!dash) return alpha;
    return is_alnum(s.front()) && is_alnum(s.back());
}

// Decimal prefix length without leading zeros ("0" alone is fine), <= max.
bool parse_cidr(std::string_view s, int max, int& out) {
    if (s.empty() || s.size() > 3) return false;
    for (char c : s)
        if (!is_digit(c)) return false;
    if (s.size() > 1 && s[0] == '0') return false;
    int v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    if (v > max) return false;
    out = v;
    return true;
}

// ip4-network: dotted quad, each part 0..255 without leading zeros.
bool parse_ip4(std::string_view s, std::array<std::uint8_t, 16>& out) {
    int part = 0;
    std::size_t pos = 0;
    while (part < 4) {
        std::size_t end = s.find('.', pos);
        if (part < 3 && end == std::string_view::npos) return false;
        if (part == 3) end = s.size();
        std::string_view num = s.substr(pos, end - pos);
        if (num.empty() || num.size() > 3) return false;
        for (char c : num)
            if (!is_digit(c)) return false;
        if (num.size() > 1 && num[0] == '0') return false;
        int v = 0;
        std::from_chars(num.data(), num.data() + num.size(), v);
        if (v > 255) return false;
        out[part] = static_cast<std::uint8_t>(v);
        ++part;
        pos = end + 1;
    }
    return true;
}

bool parse_ip6(std::string_view s, std::array<std::uint8_t, 16>& out) {
    if (s.empty() || s.size() > 45) return false;
    for (char c : s)
        if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
    std::string z(s);
    return ::inet_pton(AF_INET6, z.c_str(), out.data()) == 1;
}

// Split "...[/N][//M]" off the end of an a/mx argument.
bool split_dual_cidr(std::string_view& rest, int& cidr4, int& cidr6) {
    auto trailing_digits = [](std::string_view s) {
        std::size_t n = 0;
        while (n < s.size() && is_digit(s[s.size() - 1 - n])) ++n;
        return n;
    };
    std::size_t n = trailing_digits(rest);
    if (n > 0 && rest.size() >= n + 2 && rest.substr(rest.size() - n - 2, 2) == "//") {
        if (!parse_cidr(rest.substr(rest.size() - n), 128, cidr6)) return false;
        rest.remove_suffix(n + 2);
        n = trailing_digits(rest);
    }
    if (n > 0 && rest.size() >= n + 1 && rest[rest.size() - n - 1] == '/') {
        if (!parse_cidr(rest.substr(rest.size() - n), 32, cidr4)) return false;
        rest.remove_suffix(n + 1);
    }
    return true;
}

bool parse_directive(std::string_view term, Directive& d, std::string& error) {
    if (term[0] == '+' || term[0] == '-' || term[0] == '~' || term[0] == '?') {
        d.qualifier = term[0];
        term.remove_prefix(1);
    }
    std::size_t name_end = 0;
    while (name_end < term.size() && is_alnum(term[name_end])) ++name_end;
    std::string_view name = term.substr(0, name_end);
    std::string_view rest = term.substr(name_end);
    auto bad = [&](std::string why) {
        error = why + ": \"" + std::string(term) + "\"";
        return false;
    };
    // ":" domain-spec, required or optional.
    auto domain_arg = [&](bool required) {
        if (rest.empty()) return !required;
        if (rest[0] != ':') return false;
        d.domain_spec = std::string(rest.substr(1));
        return valid_domain_spec(d.domain_spec);
    };
    if (iequals(name, "all")) {
        d.mechanism = Mechanism::all;
        if (!rest.empty()) return bad("\"all\" takes no argument");
    } else if (iequals(name, "include")) {
        d.mechanism = Mechanism::include;
        if (!domain_arg(true)) return bad("bad include");
    } else if (iequals(name, "exists")) {
        d.mechanism = Mechanism::exists;
        if (!domain_arg(true)) return bad("bad exists");
    } else if (iequals(name, "ptr")) {
        d.mechanism = Mechanism::ptr;
        if (!domain_arg(false)) return bad("bad ptr");
    } else if (iequals(name, "a") || iequals(name, "mx")) {
        d.mechanism = iequals(name, "a") ? Mechanism::a : Mechanism::mx;
        if (!split_dual_cidr(rest, d.cidr4, d.cidr6)) return bad("bad CIDR length");
        if (!domain_arg(false)) return bad("bad domain");
    } else if (iequals(name, "ip4")) {
        d.mechanism = Mechanism::ip4;
        if (rest.empty() || rest[0] != ':') return bad("ip4 needs an address");
        rest.remove_prefix(1);
        if (auto slash = rest.find('/'); slash != std::string_view::npos) {
            if (!parse_cidr(rest.substr(slash + 1), 32, d.cidr4)) return bad("bad ip4 CIDR length");
            rest = rest.substr(0, slash);
        }
        if (!parse_ip4(rest, d.address)) return bad("bad ip4 address");
    } else if (iequals(name, "ip6")) {
        d.mechanism = Mechanism::ip6;
        if (rest.empty() || rest[0] != ':') return bad("ip6 needs an address");
        rest.remove_prefix(1);
        if (auto slash = rest.find('/'); slash != std::string_view::npos) {
            if (!parse_cidr(rest.substr(slash + 1), 128, d.cidr6)) return bad("bad ip6 CIDR length");
            rest = rest.substr(0, slash);
        }
        if (!parse_ip6(rest, d.address)) return bad("bad ip6 address");
    } else {
        return bad("unknown mechanism");
    }
    return true;
}

std::string cidr_suffix(const Directive& d, bool client_v6) {
    if (client_v6)
        return d.cidr6 >= 0 ? "//" + std::to_string(d.cidr6) : "";
    return d.cidr4 >= 0 ? "/" + std::to_string(d.cidr4) : "";
}

}  // namespace

bool is_spf_record(std::string_view txt) {
    return txt.size() >= 6 && iequals(txt.substr(0, 6), "v=spf1") &&
           (txt.size() == 6 || txt[6] == ' ');
}

bool valid_macro_string(std::string_view s, bool in_explanation) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '%') {
            if (++i >= s.size()) return false;
            char n = s[i];
            if (n == '%' || n == '_' || n == '-') continue;
            if (n != '{') return false;
            if (++i >= s.size()) return false;
            char letter = lower(s[i]);
            bool ok = letter == 's' || letter == 'l' || letter == 'o' || letter == 'd' ||
                      letter == 'i' || letter == 'p' || letter == 'h' || letter == 'v' ||
                      (in_explanation && (letter == 'c' || letter == 'r' || letter == 't'));
            if (!ok) return false;
            ++i;
            std::size_t digits = 0;
            while (i < s.size() && is_digit(s[i])) ++i, ++digits;
            if (digits > 0) {
                // Section 7.3: the part count is at least 1 (and 128 is plenty).
                int v = 0;
                auto first = s.data() + i - digits;
                auto [p, ec] = std::from_chars(first, s.data() + i, v);
                if (ec != std::errc() || v < 1 || v > 128) return false;
            }
            if (i < s.size() && lower(s[i]) == 'r') ++i;
            while (i < s.size() && is_delimiter(s[i])) ++i;
            if (i >= s.size() || s[i] != '}') return false;
            continue;
        }
        if (c == ' ' && in_explanation) continue;
        if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e)
            return false;
    }
    return true;
}

bool valid_domain_spec(std::string_view s) {
    if (s.empty() || s.size() > 1024 || !valid_macro_string(s, false)) return false;
    // domain-end = ( "." toplabel [ "." ] ) / macro-expand
    if (s.back() == '}') return true;
    if (s.size() >= 2 && s[s.size() - 2] == '%' &&
        (s.back() == '%' || s.back() == '_' || s.back() == '-')) {
        // "%%" at the end is a macro-expand only if that '%' is not itself escaped.
        std::size_t run = 0;
        for (std::size_t i = s.size() - 1; i > 0 && s[i - 1] == '%'; --i) ++run;
        if (run % 2 == 1) return true;
    }
    std::string_view name = s;
    if (name.back() == '.') name.remove_suffix(1);
    std::size_t dot = name.rfind('.');
    if (dot == std::string_view::npos) return false;
    if (!valid_toplabel(name.substr(dot + 1))) return false;
    // Literal names (no macro) must also be valid DNS names: no empty or
    // over-long label anywhere.
    if (s.find('%') == std::string_view::npos) return valid_domain_name(s);
    return true;
}

bool valid_domain_name(std::string_view name) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (name.empty() || name.size() > 253) return false;
    std::size_t labels = 0, start = 0;
    while (true) {
        std::size_t dot = name.find('.', start);
        std::size_t len = (dot == std::string_view::npos ? name.size() : dot) - start;
        if (len == 0 || len > 63) return false;
        ++labels;
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return labels >= 2;
}

ParseResult parse_record(std::string_view text) {
    ParseResult out;
    if (text.size() > max_record_bytes) {
        out.error = "record too long";
        return out;
    }
    if (!is_spf_record(text)) {
        out.error = "not an SPF record";
        return out;
    }
    Record rec;
    std::size_t pos = 6;
    while (pos < text.size()) {
        if (text[pos] == ' ') {
            ++pos;
            continue;
        }
        std::size_t end = text.find(' ', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view term = text.substr(pos, end - pos);
        pos = end;
        for (char c : term) {
            if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) {
                out.error = "invalid character in record";
                return out;
            }
        }
        std::size_t eq = term.find('=');
        if (eq != std::string_view::npos && valid_name(term.substr(0, eq))) {
            std::string_view name = term.substr(0, eq);
            std::string_view value = term.substr(eq + 1);
            if (iequals(name, "redirect") || iequals(name, "exp")) {
                auto& slot = iequals(name, "redirect") ? rec.redirect : rec.exp;
                if (slot) {
                    out.error = "duplicate " + std::string(name) + " modifier";
                    return out;
                }
                if (!valid_domain_spec(value)) {
                    out.error = "bad " + std::string(name) + " domain: \"" + std::string(value) + "\"";
                    return out;
                }
                slot = std::string(value);
            } else {
                if (!valid_macro_string(value, true) || value.find(' ') != std::string_view::npos) {
                    out.error = "bad modifier value: \"" + std::string(term) + "\"";
                    return out;
                }
                ++rec.unknown_modifiers;
            }
            continue;
        }
        Directive d;
        if (!parse_directive(term, d, out.error)) return out;
        rec.directives.push_back(std::move(d));
    }
    out.record = std::move(rec);
    return out;
}

namespace {

// Section 7.3: uppercase macro letters URL-escape everything but unreserved.
std::string url_escape(std::string_view v) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    for (char c : v) {
        unsigned char u = static_cast<unsigned char>(c);
        if (is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out.push_back(c);
        } else {
            out.push_back('%');
            out.push_back(hex[u >> 4]);
            out.push_back(hex[u & 15]);
        }
    }
    return out;
}

std::string macro_value(char letter, const MacroContext& ctx) {
    auto at = ctx.sender.rfind('@');
    switch (letter) {
        case 's': return std::string(ctx.sender);
        case 'l': {
            std::string_view l = at == std::string_view::npos ? "" : ctx.sender.substr(0, at);
            return l.empty() ? "postmaster" : std::string(l);
        }
        case 'o': return std::string(at == std::string_view::npos ? ctx.sender : ctx.sender.substr(at + 1));
        case 'd': return std::string(ctx.domain);
        case 'h': return std::string(ctx.helo);
        case 'r': return ctx.receiver.empty() ? "unknown" : std::string(ctx.receiver);
        case 't': return std::to_string(ctx.now);
        case 'p': return "unknown";
        case 'v': return ctx.v6 ? "ip6" : "in-addr";
        case 'i':
            if (ctx.v6) {  // dot-format nibbles (section 7.3)
                static const char hex[] = "0123456789abcdef";
                std::string out;
                for (std::uint8_t b : ctx.ip) {
                    if (!out.empty()) out.push_back('.');
                    out.push_back(hex[b >> 4]);
                    out.push_back('.');
                    out.push_back(hex[b & 15]);
                }
                return out;
            }
            [[fallthrough]];
        case 'c': {
            char buf[INET6_ADDRSTRLEN] = {};
            ::inet_ntop(ctx.v6 ? AF_INET6 : AF_INET, ctx.ip.data(), buf, sizeof buf);
            return buf;
        }
    }
    return {};
}

// Split on the delimiters, optionally reverse, keep the rightmost parts,
// join with "." (section 7.3).
std::string transform(const std::string& value, int keep, bool reverse, std::string_view delims) {
    if (delims.empty()) delims = ".";
    std::vector<std::string_view> parts;
    std::string_view v(value);
    std::size_t start = 0;
    for (std::size_t i = 0; i <= v.size(); ++i) {
        if (i == v.size() || delims.find(v[i]) != std::string_view::npos) {
            parts.push_back(v.substr(start, i - start));
            start = i + 1;
        }
    }
    if (reverse) std::reverse(parts.begin(), parts.end());
    std::size_t first = keep > 0 && static_cast<std::size_t>(keep) < parts.size()
                            ? parts.size() - static_cast<std::size_t>(keep)
                            : 0;
    std::string out;
    for (std::size_t i = first; i < parts.size(); ++i) {
        if (i > first) out.push_back('.');
        out.append(parts[i]);
    }
    return out;
}

}  // namespace

std::optional<std::string> expand_explanation(std::string_view s, const MacroContext& ctx,
                                              std::size_t max_out) {
    if (!valid_macro_string(s, true)) return std::nullopt;
    std::string out;
    for (std::size_t i = 0; i < s.size() && out.size() < max_out; ++i) {
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        char n = s[++i];  // valid_macro_string: a '%' is never last
        if (n == '%') {
            out.push_back('%');
        } else if (n == '_') {
            out.push_back(' ');
        } else if (n == '-') {
            out += "%20";
        } else {  // "{" letter [digits] ["r"] *delimiter "}"
            char letter = s[++i];
            bool upper = letter >= 'A' && letter <= 'Z';
            ++i;
            int keep = 0;
            while (is_digit(s[i])) keep = std::min(keep * 10 + (s[i++] - '0'), 1000);
            bool reverse = lower(s[i]) == 'r';
            if (reverse) ++i;
            std::size_t delim_start = i;
            while (s[i] != '}') ++i;
            std::string v = transform(macro_value(lower(letter), ctx), keep, reverse,
                                      s.substr(delim_start, i - delim_start));
            out += upper ? url_escape(v) : v;
        }
    }
    if (out.size() > max_out) out.resize(max_out);
    return out;
}

std::string to_libspf2(const Record& record, bool client_v6) {
    std::string out = "v=spf1";
    bool has_all = false;
    for (const auto& d : record.directives) {
        std::string q(1, d.qualifier);
        switch (d.mechanism) {
            case Mechanism::all:
                has_all = true;
                out += " " + q + "all";
                break;
            case Mechanism::include:
                out += " " + q + "include:" + d.domain_spec;
                break;
            case Mechanism::exists:
                out += " " + q + "exists:" + d.domain_spec;
                break;
            case Mechanism::ptr:
                out += " " + q + "ptr" + (d.domain_spec.empty() ? "" : ":" + d.domain_spec);
                break;
            case Mechanism::a:
            case Mechanism::mx: {
                bool is_a = d.mechanism == Mechanism::a;
                int prefix = client_v6 ? d.cidr6 : d.cidr4;
                std::string target = d.domain_spec.empty() ? "%{d}" : d.domain_spec;
                if (prefix == 0) {
                    // Any address of the family matches: an existence test.
                    if (is_a && !client_v6)
                        out += " " + q + "exists:" + target;
                    else
                        out += " " + q + "exists:" + target +
                               std::string(is_a ? probe_a6_suffix
                                                : (client_v6 ? probe_mx6_suffix : probe_mx4_suffix));
                    break;
                }
                out += " " + q + (is_a ? "a" : "mx") +
                       (d.domain_spec.empty() ? "" : ":" + d.domain_spec) + cidr_suffix(d, client_v6);
                break;
            }
            case Mechanism::ip4: {
                char buf[INET_ADDRSTRLEN];
                ::inet_ntop(AF_INET, d.address.data(), buf, sizeof buf);
                if (d.cidr4 == 0)
                    out += " " + q + "ip4:0.0.0.0/1 " + q + "ip4:128.0.0.0/1";
                else
                    out += " " + q + "ip4:" + buf + (d.cidr4 > 0 ? "/" + std::to_string(d.cidr4) : "");
                break;
            }
            case Mechanism::ip6: {
                char buf[INET6_ADDRSTRLEN];
                ::inet_ntop(AF_INET6, d.address.data(), buf, sizeof buf);
                if (d.cidr6 == 0)
                    out += " " + q + "ip6:::/1 " + q + "ip6:8000::/1";
                else
                    out += " " + q + "ip6:" + buf + (d.cidr6 > 0 ? "/" + std::to_string(d.cidr6) : "");
                break;
            }
        }
    }
    if (record.redirect && !has_all) out += " redirect=" + *record.redirect;
    if (record.exp) out += " exp=" + *record.exp;
    return out;
}

}  // namespace spf
