// Fuzz mta-core's message header helpers on any content: field lookups stay
// inside the input, and header_size_limit truncation never grows a message,
// leaves no field over the limit, and is idempotent.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "message_header.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::size_t limit = 3 + data[0];  // small limits reach every branch
    std::string message(reinterpret_cast<const char*>(data) + 1, size - 1);
    const std::string original = message;
    (void)mta::count_fields(message, "Received");
    if (auto v = mta::field_value(message, "Subject"))
        if (v->data() < message.data() || v->data() + v->size() > message.data() + message.size()) std::abort();
    mta::truncate_long_fields(message, limit);
    if (message.size() > original.size()) std::abort();
    std::string again = message;
    if (mta::truncate_long_fields(again, limit) != 0 || again != message) std::abort();
    return 0;
}
