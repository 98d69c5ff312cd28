// Fuzz the DATA reader: arbitrary bytes in two chunks, in both output forms.
// It must never keep more than its size limit, never report more consumed
// than it was given, and in CRLF form never store a bare CR or LF.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "smtp/data.h"

using proto::smtp::DataReader;
using proto::smtp::LineEnd;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    std::size_t max_size = data[0] * 4u;
    std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    for (LineEnd form : {LineEnd::lf, LineEnd::crlf}) {
        DataReader reader(max_size, form);
        std::size_t cut = data[1] % input.size();
        bool done = false;
        for (std::string_view part : {input.substr(0, cut), input.substr(cut)}) {
            if (done) break;
            auto r = reader.feed(part);
            if (r.consumed > part.size()) std::abort();
            done = r.done;
        }
        const std::string& body = reader.content();
        if (body.size() > max_size) std::abort();
        if (form == LineEnd::crlf && done && !reader.too_big()) {
            for (std::size_t i = 0; i < body.size(); ++i) {
                if (body[i] == '\r' && (i + 1 == body.size() || body[i + 1] != '\n')) std::abort();
                if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r')) std::abort();
            }
        }
    }
    return 0;
}
