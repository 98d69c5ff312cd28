// Fuzz the virtual_mailboxes file parser: it either throws
// std::invalid_argument or returns lower-case "local@domain" entries.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "mailbox_list.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    try {
        for (const auto& entry : maildir::parse_mailbox_list(input, "fuzz")) {
            auto at = entry.rfind('@');
            if (at == std::string::npos || at == 0 || at + 1 == entry.size()) std::abort();
            for (char c : entry)
                if (c >= 'A' && c <= 'Z') std::abort();
        }
    } catch (const std::invalid_argument&) {
    }
    return 0;
}
