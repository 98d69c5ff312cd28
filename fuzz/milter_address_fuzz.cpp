// Fuzz the milter address parser: any text either parses into an endpoint
// that prints and parses back the same, or is an error with a reason.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "milter/address.h"
#include "net/address.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto p = proto::milter::parse_address(text);
    if (!p.endpoint) {
        if (p.error.empty()) std::abort();
        return 0;
    }
    // The Postfix form of the same socket reads back as the same endpoint.
    auto again = proto::net::parse_endpoint(p.endpoint->to_string());
    if (p.endpoint->kind == proto::net::Endpoint::Kind::inet && again.endpoint &&
        !(*again.endpoint == *p.endpoint))
        std::abort();
    return 0;
}
