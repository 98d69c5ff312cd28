// Fuzz the DSN parameter parsers (RFC 3461) with client and server input:
// what parses is printable and within its limit, and xtext round-trips.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "smtp/dsn.h"

namespace {
void printable(const std::string& s) {
    for (char c : s)
        if (c < 32 || c > 126) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace proto::smtp;
    std::string_view in(reinterpret_cast<const char*>(data), size);
    if (auto d = xtext_decode(in)) {
        printable(*d);
        if (xtext_decode(xtext_encode(*d)) != *d) std::abort();
    }
    if (auto n = parse_notify(in)) {
        if (parse_notify(*n) != *n) std::abort();
        (void)notify_of(*n);
    }
    if (auto e = parse_envid(in)) {
        printable(*e);
        if (e->size() > max_envid) std::abort();
    }
    if (auto o = parse_orcpt(in)) {
        printable(*o);
        if (parse_orcpt(orcpt_parameter(*o)) != *o) std::abort();
    }
    (void)parse_ret(in);
    return 0;
}
