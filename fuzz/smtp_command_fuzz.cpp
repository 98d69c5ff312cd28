// Fuzz the SMTP/LMTP command reader and parser: arbitrary bytes fed in two
// chunks; every line comes out as a command or an error, never a crash, and
// the reader never holds more than a line's limit.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "smtp/command.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    proto::smtp::CommandLimits limits;
    proto::smtp::CommandReader reader(limits);
    std::size_t cut = size ? data[0] % (size + 1) : 0;
    for (std::string_view part : {input.substr(0, cut), input.substr(cut)}) {
        while (!part.empty()) {
            auto r = reader.feed(part);
            if (r.consumed == 0 && r.status == proto::smtp::CommandReader::Status::need_more) break;
            if (r.consumed > part.size()) std::abort();
            part.remove_prefix(r.consumed);
            if (r.status == proto::smtp::CommandReader::Status::line) {
                auto parsed = reader.take();
                if (!parsed.command && parsed.error.code == 0) std::abort();
            }
            if (reader.pending() > limits.max_line + 2) std::abort();
        }
    }
    proto::smtp::parse_command(input, limits);
    return 0;
}
