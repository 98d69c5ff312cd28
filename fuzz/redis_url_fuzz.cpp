// Fuzz the Redis URL parser: any input either parses or throws
// std::invalid_argument, and the redacted form does not depend on the password.
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "redis/client.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    try {
        auto url = proto::redis::Url::parse(input);
        auto other = url;
        other.password = url.password + "x";
        if (!url.password.empty() && url.to_string() != other.to_string()) std::abort();
    } catch (const std::invalid_argument&) {
    }
    return 0;
}
