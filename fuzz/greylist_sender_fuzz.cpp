// Fuzz greylist sender normalisation with hostile `sender` values: never
// crash, never grow the value, never leave upper case, and keep the null
// sender and the domain separator where they belong.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sender.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    std::string out = greylist::normalise_sender(input);
    if (out.size() > input.size()) std::abort();
    if (input.empty() != out.empty()) std::abort();
    for (char c : out)
        if (c >= 'A' && c <= 'Z') std::abort();
    // An address keeps exactly one separator before its domain.
    if ((input.find('@') == std::string_view::npos) != (out.find('@') == std::string::npos))
        std::abort();
    if (input.find('@') == std::string_view::npos && out != greylist::lower_ascii(input))
        std::abort();
    // Normalising again only removes more (nested SRS), never adds.
    if (greylist::normalise_sender(out).size() > out.size()) std::abort();
    return 0;
}
