// Fuzz what mta-core's resolver keeps from a DNS answer (c-ares parses the
// wire format): every kept name is a host name, every address parses, no
// more than max_answers records, TXT printable and bounded; and the name
// checks on the same bytes as text (a reverse name is always a valid query
// name).
#include <array>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <ares.h>

#include "dns/answers.h"
#include "dns/names.h"
#include "net/address.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace mta::dns;
    for (bool v6 : {false, true}) {
        std::vector<std::string> out;
        parse_addresses(ARES_SUCCESS, data, size, v6, out);
        if (out.size() > max_answers) std::abort();
        for (const auto& a : out)
            if (!proto::net::IpAddress::parse(a)) std::abort();
    }
    std::vector<MxRecord> mx;
    auto o = parse_mx(ARES_SUCCESS, data, size, mx);
    if (mx.size() > max_answers || (o != Outcome::found && !mx.empty())) std::abort();
    for (const auto& r : mx)
        if (r.host.empty() ? mx.size() != 1 : !valid_hostname(r.host)) std::abort();
    std::array<std::uint8_t, 16> address{192, 0, 2, 1};
    for (bool v6 : {false, true}) {
        std::vector<std::string> names;
        parse_ptr(ARES_SUCCESS, data, size, address, v6, names);
        if (names.size() > max_answers) std::abort();
        for (const auto& n : names)
            if (!valid_hostname(n)) std::abort();
    }
    std::vector<std::string> txt;
    parse_txt(ARES_SUCCESS, data, size, txt);
    if (txt.size() > max_answers) std::abort();
    for (const auto& t : txt) {
        if (t.size() > max_txt) std::abort();
        for (char c : t)
            if (c < 0x20 || c > 0x7e) std::abort();
    }
    std::string_view text(reinterpret_cast<const char*>(data), size);
    if (valid_hostname(text) && !valid_query_name(text)) std::abort();
    if (auto rev = reverse_name(text); rev && !valid_query_name(*rev)) std::abort();
    return 0;
}
