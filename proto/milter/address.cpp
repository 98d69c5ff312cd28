#include "milter/address.h"

#include <charconv>

namespace proto::milter {

namespace {

net::EndpointParse fail(std::string why) { return {std::nullopt, std::move(why)}; }

}  // namespace

net::EndpointParse parse_address(std::string_view text) {
    net::Endpoint e;
    auto colon = text.find(':');
    std::string_view scheme = colon == std::string_view::npos ? std::string_view() : text.substr(0, colon);
    if (text.starts_with('/')) {  // libmilter reads a bare path as a unix socket
        scheme = "unix";
        colon = std::string_view::npos;
    }
    std::string_view rest = colon == std::string_view::npos ? text : text.substr(colon + 1);
    if (scheme == "unix" || scheme == "local") {
        if (rest.empty() || rest.front() != '/') return fail("a unix socket needs an absolute path");
        // sockaddr_un.sun_path holds 108 bytes with the NUL (unix(7)).
        if (rest.size() > 107) return fail("unix socket path longer than 107 bytes");
        for (char ch : rest)
            if (static_cast<unsigned char>(ch) < ' ') return fail("control character in the socket path");
        e.kind = net::Endpoint::Kind::unix_socket;
        e.path = std::string(rest);
        return {e, {}};
    }
    if (scheme != "inet" && scheme != "inet6")
        return fail("expected inet:PORT@HOST, inet6:PORT@HOST or unix:/path");
    auto at = rest.find('@');
    std::string_view port = rest.substr(0, at);
    std::string_view host = at == std::string_view::npos ? std::string_view() : rest.substr(at + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535)
        return fail("\"" + std::string(port) + "\" is not a port number");
    if (at != std::string_view::npos && host.empty()) return fail("empty host after @");
    if (scheme == "inet6" && host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    if (host.empty()) host = scheme == "inet6" ? "::" : "0.0.0.0";
    for (char ch : host)
        if (ch <= ' ' || ch > '~' || ch == '[' || ch == ']' || ch == '@' || ch == '/')
            return fail("bad host \"" + std::string(host) + "\"");
    bool v6_literal = host.find(':') != std::string_view::npos;
    if (v6_literal && scheme != "inet6") return fail("an IPv6 address needs inet6:");
    if (scheme == "inet6" && !v6_literal && net::IpAddress::parse(host))
        return fail("inet6: needs an IPv6 address or a name");
    e.kind = net::Endpoint::Kind::inet;
    e.host = std::string(host);
    e.port = static_cast<std::uint16_t>(value);
    return {e, {}};
}

}  // namespace proto::milter
