// Fuzz endpoint, IP and CIDR parsing: anything accepted must print in a form
// that parses back to the same value.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "net/address.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    auto e = proto::net::parse_endpoint(input);
    if (e.endpoint) {
        auto again = proto::net::parse_endpoint(e.endpoint->to_string());
        if (!again.endpoint || !(*again.endpoint == *e.endpoint)) std::abort();
    }
    if (auto ip = proto::net::IpAddress::parse(input)) {
        auto again = proto::net::IpAddress::parse(ip->to_string());
        if (!again || !(*again == *ip)) std::abort();
    }
    if (auto c = proto::net::Cidr::parse(input)) {
        if (!c->contains(c->network)) std::abort();
        auto again = proto::net::Cidr::parse(c->to_string());
        if (!again || again->prefix != c->prefix || !(again->network == c->network)) std::abort();
    }
    return 0;
}
