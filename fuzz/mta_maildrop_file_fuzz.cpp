// Fuzz the maildrop file parser (pickup reads files unprivileged users
// wrote): any bytes parse or give an error, within the limits given; what
// parses is written again and must parse to the same message.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "queue/maildrop_file.h"

using namespace mta::queue;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    MaildropLimits limits;
    limits.max_content = 4096;
    limits.max_recipients = 16;
    std::string error;
    auto m = parse_maildrop(input, limits, &error);
    if (!m) {
        if (error.empty()) std::abort();
        return 0;
    }
    if (m->recipients.empty() || m->recipients.size() > limits.max_recipients ||
        m->content.size() > limits.max_content || input.size() > maildrop_file_bound(limits))
        std::abort();
    auto again = parse_maildrop(serialize_maildrop(*m), limits, &error);
    if (!again || again->sender != m->sender || again->fullname != m->fullname ||
        again->recipients != m->recipients || again->content != m->content)
        std::abort();
    return 0;
}
