// Fuzz the milter packet reader and both decoders: arbitrary bytes in two
// chunks, each packet decoded as a command and as a reply. A decoded packet
// must encode back to the same bytes (the wire form is canonical), and the
// reader must never hold more data than its limit. Decoded commands drive a
// filter-side Session into policy requests, and packet data as reply text
// must come out safe: no control characters, bounded, a valid reply code.
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <type_traits>

#include "milter/codec.h"
#include "milter/policy.h"

using namespace proto::milter;

namespace {
template <typename T>
Decoded<T> decode_as(const Packet& p) {
    if constexpr (std::is_same_v<T, Command>)
        return decode_command(p);
    else
        return decode_reply(p);
}

template <typename T>
void check(const Packet& p, const Decoded<T>& d) {
    if (!d.value) {
        if (d.error.empty()) std::abort();
        return;
    }
    std::string wire = encode(*d.value);
    if (wire.size() < 5 || wire[4] != p.code) std::abort();
    // Decoding what we encode gives the same value back.
    Packet again{p.code, wire.substr(5)};
    auto d2 = decode_as<T>(again);
    if (!d2.value || !(*d2.value == *d.value)) std::abort();
    // The wire form is canonical, except where the decoder drops data
    // (commands without any) or reorders it (OPTNEG's macro lists by stage).
    if (again.data.empty() || p.code == 'O') return;
    if (again.data != p.data) std::abort();
}
// What the daemons' front end does with each command.
void drive(Session& s, const Command& c) {
    if (auto* m = std::get_if<Macros>(&c)) s.define(*m);
    if (auto* x = std::get_if<Connect>(&c)) s.connect(*x);
    if (auto* h = std::get_if<Helo>(&c)) s.helo(*h);
    if (auto* m = std::get_if<Mail>(&c)) s.mail(*m, "fuzz");
    if (auto* r = std::get_if<Rcpt>(&c)) s.rcpt(*r);
    if (auto* h = std::get_if<Header>(&c)) s.header(*h, false);
    if (auto* b = std::get_if<BodyChunk>(&c)) s.body(b->bytes.size());
    if (std::holds_alternative<Abort>(c)) s.end_message();
    for (Stage stage : {Stage::connect, Stage::helo, Stage::mail, Stage::rcpt, Stage::end_of_message}) {
        auto r = s.request(stage);
        if (r.get("protocol_state") != protocol_state(stage)) std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    if (size < 2) return 0;
    std::size_t max_data = bytes[0] * 257u;
    std::string_view input(reinterpret_cast<const char*>(bytes) + 1, size - 1);
    std::size_t cut = bytes[1] % input.size();
    PacketReader reader(max_data);
    Session session;
    for (std::string_view part : {input.substr(0, cut), input.substr(cut)}) {
        while (!part.empty()) {
            auto r = reader.feed(part);
            if (r.consumed > part.size()) std::abort();
            if (r.status == ReadStatus::error) return 0;
            part.remove_prefix(r.consumed);
            if (r.status == ReadStatus::need_more) break;
            const Packet& p = reader.packet();
            if (p.data.size() > max_data) std::abort();
            auto command = decode_command(p);
            check(p, command);
            check(p, decode_reply(p));
            if (command.value) drive(session, *command.value);
            ReplyCode code = make_reply_code(p.code == '5' ? "550" : "450", p.data);
            for (char ch : code.text)
                if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) > 0x7e) std::abort();
            if (code.text.size() > 16 + 2 * kMaxReplyText) std::abort();  // "NNN C.SSS.DDD " + text
            if (!decode_reply(Packet{'y', code.text + '\0'}).value) std::abort();
            reader.next();
        }
    }
    return 0;
}
