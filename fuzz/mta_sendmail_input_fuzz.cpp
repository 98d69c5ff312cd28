// Fuzz the sendmail command's input handling: the message reader fed in
// two pieces split where the first byte says, then -t's recipient
// extraction. Whatever comes out has CRLF lines only, stays within the size
// limit, and extraction never adds bytes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sendmail/submission.h"

using namespace mta::sendmail;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    bool dot_ends = data[0] & 1;
    std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    std::size_t split = input.empty() ? 0 : data[0] % (input.size() + 1);
    MessageReader reader(2048, dot_ends);
    if (reader.feed(input.substr(0, split))) reader.feed(input.substr(split));
    reader.finish();
    bool too_big = reader.too_big();
    std::string out = reader.take();
    if (too_big) return 0;
    if (out.size() > 2048) std::abort();
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (out[i] == '\r' && (i + 1 >= out.size() || out[i + 1] != '\n')) std::abort();
        if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r')) std::abort();
    }
    auto x = extract_recipients(out);
    if (x.message.size() > out.size()) std::abort();
    for (const auto& r : x.recipients)
        if (r.empty()) std::abort();
    parse_address_list(input);
    return 0;
}
