// Fuzz the SMTP reply parser (what a client reads from a server) and the
// mailbox parser; a parsed reply must format and parse back to the same code,
// and a parsed mailbox must print and parse back to itself.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "smtp/address.h"
#include "smtp/reply.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    proto::smtp::ReplyParser parser;
    auto r = parser.feed(input);
    if (r.consumed > input.size()) std::abort();
    if (r.status == proto::smtp::ReplyParser::Status::done) {
        auto reply = parser.take();
        proto::smtp::ReplyParser again;
        auto wire = proto::smtp::format_reply(reply);
        if (again.feed(wire).status != proto::smtp::ReplyParser::Status::done ||
            again.take().code != reply.code)
            std::abort();
    }
    if (auto mailbox = proto::smtp::parse_mailbox(input)) {
        auto back = proto::smtp::parse_mailbox(mailbox->to_string());
        if (!back || back->local != mailbox->local || back->domain != mailbox->domain) std::abort();
    }
    return 0;
}
