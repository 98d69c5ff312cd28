// Fuzz the message milters edit (mta-core/milter/message_edit.h): any bytes
// as the stored message, then header edits with fuzzed names and values.
// An unedited message is written back as read (up to its header's end); an
// added field adds exactly one field, whatever its value holds (no header
// injection), and what is written reads back to the same fields.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <strings.h>

#include "milter/message_edit.h"

using mta::milter::EditableMessage;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(bytes), size);
    auto split = input.find('\0');
    std::string_view message = input.substr(0, split);
    std::string_view value = split == std::string_view::npos ? std::string_view() : input.substr(split + 1);
    EditableMessage m(message);
    const std::size_t fields = m.headers().size();
    std::string once = m.serialize();
    EditableMessage again(once);
    if (again.headers().size() != fields || again.serialize() != once) std::abort();
    for (bool lead : {false, true}) {
        EditableMessage edited(once);
        edited.add_header("X-Fuzz", value, lead);
        std::string out = edited.serialize();
        EditableMessage reread(out);
        if (reread.headers().size() != fields + 1) std::abort();
        if (reread.headers().back().name != "X-Fuzz") std::abort();
        std::uint32_t ours = 1;  // the index of the field just added among its namesakes
        for (std::size_t i = 0; i < fields; ++i)
            if (m.headers()[i].name.size() == 6 && strncasecmp(m.headers()[i].name.c_str(), "X-Fuzz", 6) == 0) ++ours;
        edited.change_header(ours, "X-Fuzz", "", lead);
        if (edited.serialize() != once) std::abort();
    }
    return 0;
}
