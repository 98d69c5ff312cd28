// Fuzz Postfix list syntax: split_list never yields an empty element or one
// that starts with a separator; parse_group's items are what split_list
// gives for the inside; split_nameval and parse_time never crash.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/config.h"

using namespace mta::config;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    for (const auto& e : split_list(text)) {
        if (e.empty()) std::abort();
        if (std::string_view(", \t\r\n").find(e.front()) != std::string_view::npos) std::abort();
        if (e.size() > text.size()) std::abort();
        if (auto g = parse_group(e))
            for (const auto& item : g->items) split_nameval(item);
    }
    if (auto g = parse_group(text)) {
        for (const auto& item : g->items)
            if (item.size() > text.size()) std::abort();
    }
    try {
        parse_time(text, 's');
    } catch (const ConfigError&) {
    }
    return 0;
}
