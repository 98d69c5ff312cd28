// Fuzz the RFC 7208 record pre-check: arbitrary bytes as a TXT record. A
// record that parses must rewrite (for either client family) into a record
// that parses again, so libspf2 only ever sees what we validated.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "spf_record.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = spf::parse_record(text);
    if (!parsed.record) {
        if (parsed.error.empty()) std::abort();  // every refusal says why
        return 0;
    }
    for (bool v6 : {false, true}) {
        std::string rewritten = spf::to_libspf2(*parsed.record, v6);
        auto again = spf::parse_record(rewritten);
        if (!again.record) std::abort();
        if (again.record->redirect && !parsed.record->redirect) std::abort();
    }
    return 0;
}
