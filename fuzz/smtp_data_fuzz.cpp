// Fuzz the DATA reader: arbitrary bytes in two chunks. It must never keep
// more than its size limit and never report more consumed than it was given.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "smtp/data.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    std::size_t max_size = data[0] * 4u;
    std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    proto::smtp::DataReader reader(max_size);
    std::size_t cut = size > 1 ? data[1] % input.size() : 0;
    bool done = false;
    for (std::string_view part : {input.substr(0, cut), input.substr(cut)}) {
        if (done) break;
        auto r = reader.feed(part);
        if (r.consumed > part.size()) std::abort();
        done = r.done;
    }
    if (reader.content().size() > max_size) std::abort();
    return 0;
}
