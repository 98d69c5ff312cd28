// Nexthop notation of the smtp transport; see destination.h.
#include "delivery/destination.h"

#include <charconv>

namespace mta::delivery {

std::string Destination::text() const {
    std::string out = mx_lookup ? host : "[" + host + "]";
    if (port_given || port != 25) out += ":" + std::to_string(port);
    return out;
}

std::optional<Destination> parse_destination(std::string_view nexthop, std::string* error) {
    auto fail = [&](std::string why) -> std::optional<Destination> {
        if (error) *error = std::move(why);
        return std::nullopt;
    };
    Destination d;
    std::string_view rest;
    if (nexthop.starts_with("[")) {
        auto close = nexthop.find(']');
        if (close == std::string_view::npos) return fail("missing ] in " + std::string(nexthop));
        d.host = std::string(nexthop.substr(1, close - 1));
        d.mx_lookup = false;
        rest = nexthop.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') return fail("unexpected text after ] in " + std::string(nexthop));
    } else {
        // An unbracketed IPv6 address has several colons: no port then.
        auto colon = nexthop.rfind(':');
        if (colon != std::string_view::npos && nexthop.find(':') == colon) {
            d.host = std::string(nexthop.substr(0, colon));
            rest = nexthop.substr(colon);
        } else {
            d.host = std::string(nexthop);
        }
    }
    if (!rest.empty()) {
        auto port = rest.substr(1);
        unsigned value = 0;
        auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (port == "smtp") {
            value = 25;
        } else if (ec != std::errc() || p != port.data() + port.size() || value == 0 || value > 65535) {
            return fail("bad port \"" + std::string(port) + "\" in " + std::string(nexthop));
        }
        d.port = static_cast<std::uint16_t>(value);
        d.port_given = true;
    }
    if (d.host.empty()) return fail("no host in \"" + std::string(nexthop) + "\"");
    return d;
}

}  // namespace mta::delivery
