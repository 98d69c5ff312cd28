// Fuzz the Maildir++ maildirsize parser: limits are never negative and the
// recorded size is the input's.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "maildir.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    maildir::Quota q;
    if (maildir::parse_maildirsize(input, q)) {
        if (q.max_bytes < 0 || q.max_count < 0 || q.file_size != size) std::abort();
    }
    return 0;
}
