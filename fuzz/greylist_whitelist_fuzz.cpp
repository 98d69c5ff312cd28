// Fuzz whitelist files in postgrey's format: any text either loads or throws
// WhitelistError naming the source; a loaded list answers lookups without
// crashing, and an entry read as a plain name or address matches itself.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "whitelist.h"

namespace {

const proto::net::IpAddress& sample_address() {
    static const proto::net::IpAddress a = *proto::net::IpAddress::parse("192.0.2.1");
    return a;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    // The first line doubles as the looked-up value.
    std::string_view first = text.substr(0, text.find('\n'));
    try {
        greylist::ClientWhitelist clients;
        clients.parse(text, "fuzz");
        auto address = proto::net::IpAddress::parse(first);
        clients.matches(first, address ? *address : sample_address());
        clients.matches("mail.example.com", sample_address());
        clients.matches("unknown", sample_address());
    } catch (const greylist::WhitelistError& e) {
        if (std::string_view(e.what()).substr(0, 5) != "fuzz:") std::abort();
    }
    try {
        greylist::RecipientWhitelist recipients;
        recipients.parse(text, "fuzz");
        recipients.matches(first);
        recipients.matches("postmaster@example.org");
        // A plain user@domain entry always matches itself.
        greylist::RecipientWhitelist one;
        std::size_t at = first.find('@');
        bool plain = at != std::string_view::npos && at == first.rfind('@') && at > 0 &&
                     at + 1 < first.size() && first.front() != '/' &&
                     first.find_first_of(" \t\r\v\f#") == std::string_view::npos;
        if (plain) {
            one.parse(first, "fuzz");
            if (!one.matches(first)) std::abort();
        }
    } catch (const greylist::WhitelistError& e) {
        if (std::string_view(e.what()).substr(0, 5) != "fuzz:") std::abort();
    }
    return 0;
}
