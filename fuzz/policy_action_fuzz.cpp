// Fuzz access(5) action and policy reply parsing: a parsed action must print
// and parse back to itself, and never contain a line break.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "policy/action.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    auto parsed = proto::policy::parse_action(input);
    if (parsed.action) {
        auto text = parsed.action->to_string();
        if (text.find('\n') != std::string::npos) std::abort();
        auto again = proto::policy::parse_action(text);
        if (!again.action || again.action->kind != parsed.action->kind ||
            again.action->text != parsed.action->text)
            std::abort();
    }
    proto::policy::parse_reply(input);
    return 0;
}
