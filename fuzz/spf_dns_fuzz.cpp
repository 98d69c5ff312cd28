// Fuzz the DNS answer parser of policyd-spf's DNS layer: answers are hostile
// input. Byte 0 picks the queried type; the rest is the DNS message.
#include <arpa/nameser.h>

#include <cstdint>
#include <cstdlib>

#include "dns.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0 || size > 65536) return 0;
    static const int types[] = {ns_t_a, ns_t_aaaa, ns_t_mx, ns_t_ptr, ns_t_txt};
    int type = types[data[0] % 5];
    auto a = spf::dns::parse_response(data + 1, static_cast<int>(size - 1), type);
    if (a.status == spf::dns::Status::ok && a.records.empty()) std::abort();
    for (const auto& r : a.records) {
        if ((type == ns_t_a && r.size() != 4) || (type == ns_t_aaaa && r.size() != 16)) std::abort();
        // Names may expand (compression) but never past NS_MAXDNAME.
        if (r.size() > size && r.size() >= NS_MAXDNAME) std::abort();
    }
    return 0;
}
