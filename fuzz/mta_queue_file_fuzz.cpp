// Fuzz mta-core's queue file envelope parser: any bytes either parse or give
// an error; what parses is written again and must parse to the same
// envelope (escaping round-trips), with the content offset inside the input.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "queue/queue_file.h"

using namespace mta::queue;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    std::string error;
    auto parsed = parse(input, &error);
    if (!parsed) {
        if (error.empty()) std::abort();
        return 0;
    }
    if (parsed->content_offset > input.size()) std::abort();
    const Envelope& e = parsed->envelope;
    std::string again = serialize(e);
    auto reparsed = parse(again, &error);
    if (!reparsed) std::abort();
    const Envelope& f = reparsed->envelope;
    if (f.id != e.id || f.sender != e.sender || f.recipients.size() != e.recipients.size() ||
        f.helo != e.helo || f.client_name != e.client_name || f.arrival != e.arrival ||
        f.dsn_envid != e.dsn_envid || f.dsn_ret != e.dsn_ret)
        std::abort();
    for (std::size_t i = 0; i < e.recipients.size(); ++i)
        if (f.recipients[i].address != e.recipients[i].address || f.recipients[i].done != e.recipients[i].done ||
            f.recipients[i].dsn_notify != e.recipients[i].dsn_notify ||
            f.recipients[i].dsn_orcpt != e.recipients[i].dsn_orcpt)
            std::abort();
    // The escaping alone round-trips any bytes.
    auto unescaped = unescape(escape(input));
    if (!unescaped || *unescaped != input) std::abort();
    return 0;
}
