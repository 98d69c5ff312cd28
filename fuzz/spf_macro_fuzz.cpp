// Fuzz macro strings (RFC 7208 section 7): validation and explanation
// expansion agree, and the expansion stays within its bound.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "spf_record.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    bool v6 = data[0] & 1;
    std::size_t max_out = data[0] >> 1;
    std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    spf::MacroContext ctx;
    ctx.sender = "user-name+tag@mail.example.com";
    ctx.domain = "mail.example.com";
    ctx.helo = "mx.example.org";
    ctx.receiver = "receiver.example";
    ctx.v6 = v6;
    for (std::size_t i = 0; i < ctx.ip.size(); ++i) ctx.ip[i] = static_cast<std::uint8_t>(i * 17);
    ctx.now = 1700000000;
    auto out = spf::expand_explanation(text, ctx, max_out);
    if (out.has_value() != spf::valid_macro_string(text, true)) std::abort();
    if (out && out->size() > max_out) std::abort();
    if (spf::valid_domain_spec(text) && !spf::valid_macro_string(text, false)) std::abort();
    (void)spf::valid_domain_name(text);
    return 0;
}
