// Fuzz the Redis URL parser: any input either parses or throws
// std::invalid_argument, and the redacted form never shows a password.
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "redis/client.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    try {
        auto url = proto::redis::Url::parse(input);
        auto shown = url.to_string();
        if (url.password.size() >= 4 && shown.find(url.password) != std::string::npos) std::abort();
    } catch (const std::invalid_argument&) {
    }
    return 0;
}
