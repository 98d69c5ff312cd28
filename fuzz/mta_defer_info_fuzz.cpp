// Fuzz the deferral note parser (queue/defer_info.h): any bytes parse or
// not, within the bounds, and what parses is written and parsed again the same.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "queue/defer_info.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace mta::queue;
    auto info = parse_defer_info(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!info) return 0;
    if (info->reasons.size() > max_defer_reasons) std::abort();
    auto again = parse_defer_info(serialize(*info));
    if (!again || again->next_attempt != info->next_attempt || again->warned != info->warned ||
        again->reasons != info->reasons)
        std::abort();
    return 0;
}
