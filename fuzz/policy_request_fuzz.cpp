// Fuzz the policy request parser: arbitrary bytes, fed in two chunks at a
// data-chosen split; whatever parses must serialize and parse back the same.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "policy/request.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    std::size_t split = input.empty() ? 0 : data[0] % (input.size() + 1);
    proto::policy::RequestParser parser;
    for (std::string_view chunk : {input.substr(0, split), input.substr(split)}) {
        while (!chunk.empty()) {
            auto r = parser.feed(chunk);
            if (r.consumed > chunk.size()) std::abort();
            chunk.remove_prefix(r.consumed);
            if (r.status == proto::policy::ParseStatus::error) return 0;
            if (r.status == proto::policy::ParseStatus::need_more) {
                if (!chunk.empty()) std::abort();  // need-more consumes everything
                break;
            }
            auto request = parser.take();
            auto wire = request.serialize();
            proto::policy::RequestParser again;
            auto r2 = again.feed(wire);
            if (r2.status != proto::policy::ParseStatus::done || r2.consumed != wire.size() ||
                !std::ranges::equal(again.request().attributes(), request.attributes()))
                std::abort();
        }
    }
    return 0;
}
