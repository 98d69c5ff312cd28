#include "net/address.h"

#include <algorithm>
#include <cctype>

#include <arpa/inet.h>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace proto::net {
namespace {

std::optional<std::uint16_t> parse_port(std::string_view s) {
    unsigned value = 0;
    if (s.empty() || s.size() > 5) return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc{} || p != s.data() + s.size() || value == 0 || value > 65535)
        return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

EndpointParse fail(std::string why) { return {std::nullopt, std::move(why)}; }

}  // namespace

std::string Endpoint::to_string() const {
    if (kind == Kind::unix_socket) return "unix:" + path;
    if (host.find(':') != std::string::npos) return "inet:[" + host + "]:" + std::to_string(port);
    return "inet:" + host + ":" + std::to_string(port);
}

namespace {

EndpointParse parse_unix(std::string_view path) {
    if (path.empty() || path.front() != '/') return fail("unix socket path must be absolute");
    if (path.size() >= 108) return fail("unix socket path too long");  // sun_path
    if (path.find('\0') != std::string_view::npos) return fail("NUL in path");
    Endpoint e;
    e.kind = Endpoint::Kind::unix_socket;
    e.path = std::string(path);
    return {e, {}};
}

EndpointParse parse_inet(std::string_view text) {
    std::string_view host, port;
    if (text.starts_with("[")) {
        auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return fail("expected [IPv6]:PORT");
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
        if (!IpAddress::parse(host)) return fail("bad IPv6 address \"" + std::string(host) + "\"");
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return fail("expected HOST:PORT");
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            return fail("IPv6 addresses must be written in brackets: inet:[::1]:PORT");
    }
    if (host.empty()) return fail("empty host");
    auto p = parse_port(port);
    if (!p) return fail("bad port \"" + std::string(port) + "\"");
    Endpoint e;
    e.host = std::string(host);
    e.port = *p;
    return {e, {}};
}

}  // namespace

EndpointParse parse_endpoint(std::string_view text) {
    if (text.starts_with("unix:")) return parse_unix(text.substr(5));
    if (text.starts_with("inet:")) return parse_inet(text.substr(5));
    if (text.starts_with("/")) return parse_unix(text);
    // A bare HOST:PORT is read as inet:. Anything else with a word before
    // its first colon ("tcp:foo", "tcp:127.0.0.1:25") names a scheme we do
    // not have: say so, rather than blame the port or the host.
    auto colon = text.find(':');
    if (colon != std::string_view::npos && colon > 0) {
        std::string_view word = text.substr(0, colon);
        bool is_word = std::all_of(word.begin(), word.end(), [](char c) {
            return std::isalpha(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
        }) && std::isalpha(static_cast<unsigned char>(word.front())) &&
                       word.find('.') == std::string_view::npos;
        if (is_word && !parse_port(text.substr(colon + 1)))
            return fail("unknown scheme \"" + std::string(word) +
                        ":\" (expected inet:HOST:PORT, inet:[IPv6]:PORT or unix:/path)");
    }
    return parse_inet(text);
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    if (text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
    char buf[INET6_ADDRSTRLEN];
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    IpAddress ip;
    if (text.find(':') == std::string_view::npos) {
        if (inet_pton(AF_INET, buf, ip.bytes.data()) != 1) return std::nullopt;
        return ip;
    }
    if (inet_pton(AF_INET6, buf, ip.bytes.data()) != 1) return std::nullopt;
    static constexpr std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(ip.bytes.data(), mapped, 12) == 0) {
        std::memmove(ip.bytes.data(), ip.bytes.data() + 12, 4);
        std::memset(ip.bytes.data() + 4, 0, 12);
        return ip;
    }
    ip.v6 = true;
    return ip;
}

std::string IpAddress::to_string() const {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
    return buf;
}

IpAddress IpAddress::masked(int prefix) const {
    IpAddress out = *this;
    int total = bits();
    if (prefix < 0) prefix = 0;
    if (prefix > total) prefix = total;
    for (int i = 0; i < total / 8; ++i) {
        int keep = prefix - i * 8;
        if (keep >= 8) continue;
        out.bytes[i] &= keep <= 0 ? 0 : static_cast<std::uint8_t>(0xff << (8 - keep));
    }
    return out;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
    std::string_view addr = text, len;
    auto slash = text.find('/');
    if (slash != std::string_view::npos) {
        addr = text.substr(0, slash);
        len = text.substr(slash + 1);
    }
    if (addr.size() > 2 && addr.front() == '[' && addr.back() == ']')
        addr = addr.substr(1, addr.size() - 2);
    auto ip = IpAddress::parse(addr);
    if (!ip) return std::nullopt;
    int prefix = ip->bits();
    if (slash != std::string_view::npos) {
        if (len.empty() || len.size() > 3) return std::nullopt;
        auto [p, ec] = std::from_chars(len.data(), len.data() + len.size(), prefix);
        if (ec != std::errc{} || p != len.data() + len.size() || prefix < 0 || prefix > ip->bits())
            return std::nullopt;
        // A mapped v6 prefix like ::ffff:1.2.3.0/120 becomes the v4 prefix.
        if (!ip->v6 && addr.find(':') != std::string_view::npos) {
            if (prefix < 96) return std::nullopt;
            prefix -= 96;
        }
    }
    return Cidr{ip->masked(prefix), prefix};
}

bool Cidr::contains(const IpAddress& ip) const {
    return ip.v6 == network.v6 && ip.masked(prefix) == network;
}

std::string Cidr::to_string() const {
    return network.to_string() + "/" + std::to_string(prefix);
}

CidrList CidrList::parse(const std::vector<std::string>& entries) {
    CidrList out;
    for (const auto& e : entries) {
        auto c = Cidr::parse(e);
        if (!c) throw std::invalid_argument("bad address or network \"" + e + "\"");
        out.list_.push_back(*c);
    }
    return out;
}

bool CidrList::contains(const IpAddress& ip) const {
    for (const auto& c : list_)
        if (c.contains(ip)) return true;
    return false;
}

bool CidrList::contains(std::string_view ip_text) const {
    auto ip = IpAddress::parse(ip_text);
    return ip && contains(*ip);
}

}  // namespace proto::net
