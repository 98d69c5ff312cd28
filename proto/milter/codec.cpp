#include "milter/codec.h"

#include <algorithm>
#include <type_traits>

namespace proto::milter {

namespace {

constexpr CommandInfo kCommands[] = {
    {'A', "SMFIC_ABORT", 0, 0, false},
    {'B', "SMFIC_BODY", step::no_body, step::no_reply_body, true},
    {'C', "SMFIC_CONNECT", step::no_connect, step::no_reply_connect, true},
    {'D', "SMFIC_MACRO", 0, 0, false},
    {'E', "SMFIC_BODYEOB", 0, 0, true},
    {'H', "SMFIC_HELO", step::no_helo, step::no_reply_helo, true},
    {'K', "SMFIC_QUIT_NC", 0, 0, false},
    {'L', "SMFIC_HEADER", step::no_headers, step::no_reply_header, true},
    {'M', "SMFIC_MAIL", step::no_mail, step::no_reply_mail, true},
    {'N', "SMFIC_EOH", step::no_eoh, step::no_reply_eoh, true},
    {'O', "SMFIC_OPTNEG", 0, 0, true},
    {'Q', "SMFIC_QUIT", 0, 0, false},
    {'R', "SMFIC_RCPT", step::no_rcpt, step::no_reply_rcpt, true},
    {'T', "SMFIC_DATA", step::no_data, step::no_reply_data, true},
    {'U', "SMFIC_UNKNOWN", step::no_unknown, step::no_reply_unknown, true},
};
// The reply table: code and name.
struct CodeName {
    char code;
    std::string_view name;
};
constexpr CodeName kReplies[] = {
    {'+', "SMFIR_ADDRCPT"},   {'-', "SMFIR_DELRCPT"},    {'2', "SMFIR_ADDRCPT_PAR"},
    {'4', "SMFIR_SHUTDOWN"},  {'a', "SMFIR_ACCEPT"},     {'b', "SMFIR_REPLBODY"},
    {'c', "SMFIR_CONTINUE"},  {'d', "SMFIR_DISCARD"},    {'e', "SMFIR_CHGFROM"},
    {'f', "SMFIR_CONN_FAIL"}, {'h', "SMFIR_ADDHEADER"},  {'i', "SMFIR_INSHEADER"},
    {'l', "SMFIR_SETSYMLIST"}, {'m', "SMFIR_CHGHEADER"}, {'p', "SMFIR_PROGRESS"},
    {'q', "SMFIR_QUARANTINE"}, {'r', "SMFIR_REJECT"},    {'s', "SMFIR_SKIP"},
    {'t', "SMFIR_TEMPFAIL"},  {'y', "SMFIR_REPLYCODE"},  {'O', "SMFIC_OPTNEG"},
};

std::string_view lookup(const CodeName* begin, const CodeName* end, char code) {
    auto it = std::find_if(begin, end, [code](const CodeName& c) { return c.code == code; });
    return it == end ? std::string_view("unknown") : it->name;
}

void put32(std::string& out, std::uint32_t v) {
    out.push_back(static_cast<char>((v >> 24) & 0xff));
    out.push_back(static_cast<char>((v >> 16) & 0xff));
    out.push_back(static_cast<char>((v >> 8) & 0xff));
    out.push_back(static_cast<char>(v & 0xff));
}

void put_string(std::string& out, std::string_view s) {
    out.append(s);
    out.push_back('\0');
}

// Reads fields from a packet's data, never past its end.
class Cursor {
public:
    explicit Cursor(std::string_view data) : rest_(data) {}
    bool u32(std::uint32_t& v) {
        if (rest_.size() < 4) return false;
        auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(rest_[i])); };
        v = (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
        rest_.remove_prefix(4);
        return true;
    }
    bool u16(std::uint16_t& v) {
        if (rest_.size() < 2) return false;
        v = static_cast<std::uint16_t>((static_cast<unsigned char>(rest_[0]) << 8) |
                                       static_cast<unsigned char>(rest_[1]));
        rest_.remove_prefix(2);
        return true;
    }
    bool byte(char& c) {
        if (rest_.empty()) return false;
        c = rest_[0];
        rest_.remove_prefix(1);
        return true;
    }
    // A NUL-terminated string; false if the NUL is missing.
    bool string(std::string& s) {
        auto nul = rest_.find('\0');
        if (nul == std::string_view::npos) return false;
        s.assign(rest_.substr(0, nul));
        rest_.remove_prefix(nul + 1);
        return true;
    }
    bool empty() const { return rest_.empty(); }
    std::string_view rest() const { return rest_; }

private:
    std::string_view rest_;
};

template <typename T>
Decoded<T> fail(std::string why) {
    return {std::nullopt, std::move(why)};
}

// The strings of an argv-style field: every one NUL-terminated, at least one.
bool split_strings(std::string_view data, std::vector<std::string>& out) {
    Cursor c(data);
    if (c.empty()) return false;
    while (!c.empty()) {
        std::string s;
        if (!c.string(s)) return false;
        out.push_back(std::move(s));
    }
    return true;
}

// The macro lists after the three words of an OPTNEG (engine.c
// st_optionneg writes them, milter8.c reads them): uint32 stage, names, NUL.
bool read_macro_lists(Cursor& c, OptionNegotiation& o, std::string& error) {
    while (!c.empty()) {
        std::uint32_t stage = 0;
        std::string names;
        if (!c.u32(stage) || !c.string(names)) {
            error = "SMFIC_OPTNEG: truncated macro list";
            return false;
        }
        if (stage >= kMacroStages) {
            error = "SMFIC_OPTNEG: macro list for unknown stage " + std::to_string(stage);
            return false;
        }
        o.macros[stage] = std::move(names);
    }
    return true;
}

Decoded<OptionNegotiation> decode_optneg(std::string_view data) {
    Cursor c(data);
    OptionNegotiation o;
    // engine.c st_optionneg: at least MILTER_OPTLEN (12) bytes.
    if (!c.u32(o.version) || !c.u32(o.actions) || !c.u32(o.steps))
        return fail<OptionNegotiation>("SMFIC_OPTNEG: shorter than 12 bytes");
    // libmilter refuses an MTA older than version 2 (SMFI_PROT_VERSION_MIN).
    if (o.version < 2) return fail<OptionNegotiation>("SMFIC_OPTNEG: protocol version below 2");
    std::string error;
    if (!read_macro_lists(c, o, error)) return fail<OptionNegotiation>(error);
    return {std::move(o), {}};
}

template <typename Variant, typename T>
Decoded<Variant> lift(Decoded<T>&& d) {
    if (!d.value) return {std::nullopt, std::move(d.error)};
    return {Variant(std::move(*d.value)), {}};
}

// Reply text from a filter must be "4xx" or "5xx", then a space, a hyphen
// (multi-line) or nothing (milter8.c and Sendmail's milter.c check this).
bool valid_reply_text(std::string_view t) {
    if (t.size() < 3) return false;
    if (t[0] != '4' && t[0] != '5') return false;
    if (t[1] < '0' || t[1] > '9' || t[2] < '0' || t[2] > '9') return false;
    return t.size() == 3 || t[3] == ' ' || t[3] == '-';
}

}  // namespace

// ---- PacketReader -----------------------------------------------------------

void PacketReader::next() {
    header_len_ = 0;
    data_len_ = 0;
    packet_.code = 0;
    packet_.data.clear();
    done_ = false;
}

PacketReader::Result PacketReader::feed(std::string_view bytes) {
    if (failed_) return {ReadStatus::error, 0};
    if (done_) return {ReadStatus::done, 0};
    std::size_t used = 0;
    while (header_len_ < header_.size()) {
        if (used == bytes.size()) return {ReadStatus::need_more, used};
        header_[header_len_++] = static_cast<unsigned char>(bytes[used++]);
        if (header_len_ == 4) {
            std::uint32_t len = (std::uint32_t{header_[0]} << 24) | (std::uint32_t{header_[1]} << 16) |
                                (std::uint32_t{header_[2]} << 8) | std::uint32_t{header_[3]};
            // comm.c mi_rd_cmd: the length counts the command byte, so 0 is
            // malformed; data beyond Maxdatasize is SMFIC_TOOBIG.
            if (len == 0) {
                failed_ = true;
                error_ = "packet length 0";
                return {ReadStatus::error, used};
            }
            if (len - 1 > max_data_) {
                failed_ = true;
                error_ = "packet of " + std::to_string(len - 1) + " data bytes exceeds the limit of " +
                         std::to_string(max_data_);
                return {ReadStatus::error, used};
            }
            data_len_ = len - 1;
            packet_.data.reserve(data_len_);
        } else if (header_len_ == 5) {
            packet_.code = static_cast<char>(header_[4]);
        }
    }
    std::size_t want = data_len_ - packet_.data.size();
    std::size_t take = std::min(want, bytes.size() - used);
    packet_.data.append(bytes.substr(used, take));
    used += take;
    if (packet_.data.size() < data_len_) return {ReadStatus::need_more, used};
    done_ = true;
    return {ReadStatus::done, used};
}

// ---- Decoding -----------------------------------------------------------------

Decoded<Command> decode_command(const Packet& p) {
    std::string_view d = p.data;
    switch (p.code) {
    case 'O':
        return lift<Command>(decode_optneg(d));
    case 'D': {
        // engine.c st_macros: the command byte, then name/value pairs.
        Cursor c(d);
        Macros m;
        if (!c.byte(m.for_command)) return fail<Command>("SMFIC_MACRO: empty");
        while (!c.empty()) {
            std::string name, value;
            if (!c.string(name)) return fail<Command>("SMFIC_MACRO: name without NUL");
            // The name is the peer's: at most 64 bytes of it in the error.
            if (!c.string(value))
                return fail<Command>("SMFIC_MACRO: name \"" + name.substr(0, 64) + "\" without a value");
            m.values.emplace_back(std::move(name), std::move(value));
        }
        return {Command(std::move(m)), {}};
    }
    case 'C': {
        // engine.c st_connect: hostname NUL, family, then (unless unknown)
        // the port and the address NUL.
        Cursor c(d);
        Connect x;
        if (!c.string(x.hostname)) return fail<Command>("SMFIC_CONNECT: hostname without NUL");
        if (!c.byte(x.family)) return fail<Command>("SMFIC_CONNECT: no address family");
        if (x.family != 'U') {
            if (x.family != '4' && x.family != '6' && x.family != 'L')
                return fail<Command>("SMFIC_CONNECT: unknown address family");
            if (!c.u16(x.port)) return fail<Command>("SMFIC_CONNECT: no port");
            if (!c.string(x.address)) return fail<Command>("SMFIC_CONNECT: address without NUL");
        }
        if (!c.empty()) return fail<Command>("SMFIC_CONNECT: trailing bytes");
        return {Command(std::move(x)), {}};
    }
    case 'H': {
        Cursor c(d);
        Helo x;
        if (!c.string(x.name) || !c.empty()) return fail<Command>("SMFIC_HELO: not one string");
        return {Command(std::move(x)), {}};
    }
    case 'M':
    case 'R': {
        // engine.c st_sender/st_rcpt: argv of NUL-terminated strings.
        std::vector<std::string> args;
        if (!split_strings(d, args))
            return fail<Command>(std::string(command_name(p.code)) + ": no NUL-terminated address");
        std::string address = std::move(args.front());
        args.erase(args.begin());
        if (p.code == 'M') return {Command(Mail{std::move(address), std::move(args)}), {}};
        return {Command(Rcpt{std::move(address), std::move(args)}), {}};
    }
    case 'L': {
        // engine.c st_header: exactly name NUL value NUL.
        Cursor c(d);
        Header h;
        if (!c.string(h.name) || !c.string(h.value) || !c.empty())
            return fail<Command>("SMFIC_HEADER: not a name and a value");
        return {Command(std::move(h)), {}};
    }
    case 'U': {
        Cursor c(d);
        Unknown u;
        if (!c.string(u.line) || !c.empty()) return fail<Command>("SMFIC_UNKNOWN: not one string");
        return {Command(std::move(u)), {}};
    }
    case 'B':
        return {Command(BodyChunk{std::string(d)}), {}};
    case 'E':
        return {Command(EndOfMessage{std::string(d)}), {}};
    // Commands without data: libmilter ignores any data sent with them, and so do we.
    case 'N': return {Command(EndOfHeaders{}), {}};
    case 'A': return {Command(Abort{}), {}};
    case 'Q': return {Command(Quit{}), {}};
    case 'K': return {Command(QuitNewConnection{}), {}};
    case 'T': return {Command(Data{}), {}};
    default: {
        std::string why = "unknown command byte 0x";
        const char* hex = "0123456789abcdef";
        why += hex[(static_cast<unsigned char>(p.code) >> 4) & 0xf];
        why += hex[static_cast<unsigned char>(p.code) & 0xf];
        return fail<Command>(why);
    }
    }
}

Decoded<Reply> decode_reply(const Packet& p) {
    std::string_view d = p.data;
    Cursor c(d);
    auto one_string = [&](std::string& s) { return c.string(s) && c.empty(); };
    // A string, then optionally a second one (ESMTP arguments).
    auto string_and_optional = [&](std::string& s, std::optional<std::string>& extra) {
        if (!c.string(s)) return false;
        if (c.empty()) return true;
        std::string e;
        if (!c.string(e) || !c.empty()) return false;
        extra = std::move(e);
        return true;
    };
    auto bad = [&](std::string_view what) {
        return fail<Reply>(std::string(reply_name(p.code)) + ": " + std::string(what));
    };
    switch (p.code) {
    case 'O':
        return lift<Reply>(decode_optneg(d));
    case 'a': return {Reply(Accept{}), {}};
    case 'c': return {Reply(Continue{}), {}};
    case 'd': return {Reply(Discard{}), {}};
    case 'r': return {Reply(Reject{}), {}};
    case 't': return {Reply(Tempfail{}), {}};
    case 's': return {Reply(Skip{}), {}};
    case 'p': return {Reply(Progress{}), {}};
    case '4': return {Reply(Shutdown{}), {}};
    case 'f': return {Reply(ConnectionFailure{}), {}};
    case 'y': {
        ReplyCode r;
        if (!one_string(r.text)) return bad("not one string");
        if (!valid_reply_text(r.text)) return bad("not a 4xx or 5xx reply");
        return {Reply(std::move(r)), {}};
    }
    case 'h': {
        AddHeader h;
        if (!c.string(h.name) || !c.string(h.value) || !c.empty()) return bad("not a name and a value");
        return {Reply(std::move(h)), {}};
    }
    case 'i':
    case 'm': {
        std::uint32_t index = 0;
        std::string name, value;
        if (!c.u32(index) || !c.string(name) || !c.string(value) || !c.empty())
            return bad("not an index, a name and a value");
        if (p.code == 'i') return {Reply(InsertHeader{index, std::move(name), std::move(value)}), {}};
        return {Reply(ChangeHeader{index, std::move(name), std::move(value)}), {}};
    }
    case 'b':
        return {Reply(ReplaceBody{std::string(d)}), {}};
    case '+': {
        AddRcpt r;
        if (!one_string(r.address)) return bad("not one string");
        return {Reply(std::move(r)), {}};
    }
    case '-': {
        DeleteRcpt r;
        if (!one_string(r.address)) return bad("not one string");
        return {Reply(std::move(r)), {}};
    }
    case '2': {
        AddRcptPar r;
        if (!string_and_optional(r.address, r.esmtp)) return bad("not an address and arguments");
        return {Reply(std::move(r)), {}};
    }
    case 'e': {
        ChangeFrom r;
        if (!string_and_optional(r.address, r.esmtp)) return bad("not an address and arguments");
        return {Reply(std::move(r)), {}};
    }
    case 'q': {
        Quarantine q;
        if (!one_string(q.reason)) return bad("not one string");
        return {Reply(std::move(q)), {}};
    }
    case 'l': {
        std::uint32_t stage = 0;
        SetSymbolList s;
        if (!c.u32(stage) || !one_string(s.names)) return bad("not a stage and a list");
        if (stage >= kMacroStages) return bad("unknown stage");
        s.stage = static_cast<MacroStage>(stage);
        return {Reply(std::move(s)), {}};
    }
    default:
        return fail<Reply>("unknown reply byte " + std::to_string(static_cast<unsigned char>(p.code)));
    }
}

// ---- Encoding -----------------------------------------------------------------

namespace {

template <class... F>
struct Overloaded : F... {
    using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

std::string packet(char code, std::string_view data) {
    std::string out;
    out.reserve(5 + data.size());
    put32(out, static_cast<std::uint32_t>(data.size() + 1));
    out.push_back(code);
    out.append(data);
    return out;
}

std::string optneg_data(const OptionNegotiation& o) {
    std::string d;
    put32(d, o.version);
    put32(d, o.actions);
    put32(d, o.steps);
    for (std::uint32_t i = 0; i < kMacroStages; ++i) {
        if (!o.macros[i]) continue;
        put32(d, i);
        put_string(d, *o.macros[i]);
    }
    return d;
}

std::string strings(std::string_view first, const std::vector<std::string>& rest) {
    std::string d;
    put_string(d, first);
    for (const auto& s : rest) put_string(d, s);
    return d;
}

std::string name_value(std::string_view name, std::string_view value) {
    std::string d;
    put_string(d, name);
    put_string(d, value);
    return d;
}

std::string indexed(std::uint32_t index, std::string_view name, std::string_view value) {
    std::string d;
    put32(d, index);
    put_string(d, name);
    put_string(d, value);
    return d;
}

std::string optional_pair(std::string_view first, const std::optional<std::string>& second) {
    std::string d;
    put_string(d, first);
    if (second) put_string(d, *second);
    return d;
}

std::string one(std::string_view s) {
    std::string d;
    put_string(d, s);
    return d;
}

}  // namespace

char code_of(const Command& command) {
    return std::visit(Overloaded{
        [](const OptionNegotiation&) { return 'O'; }, [](const Macros&) { return 'D'; },
        [](const Connect&) { return 'C'; },           [](const Helo&) { return 'H'; },
        [](const Mail&) { return 'M'; },              [](const Rcpt&) { return 'R'; },
        [](const Header&) { return 'L'; },            [](const EndOfHeaders&) { return 'N'; },
        [](const BodyChunk&) { return 'B'; },         [](const EndOfMessage&) { return 'E'; },
        [](const Abort&) { return 'A'; },             [](const Quit&) { return 'Q'; },
        [](const QuitNewConnection&) { return 'K'; }, [](const Data&) { return 'T'; },
        [](const Unknown&) { return 'U'; }}, command);
}

char code_of(const Reply& reply) {
    return std::visit(Overloaded{
        [](const OptionNegotiation&) { return 'O'; }, [](const Accept&) { return 'a'; },
        [](const Continue&) { return 'c'; },          [](const Discard&) { return 'd'; },
        [](const Reject&) { return 'r'; },            [](const Tempfail&) { return 't'; },
        [](const ReplyCode&) { return 'y'; },         [](const Skip&) { return 's'; },
        [](const Progress&) { return 'p'; },          [](const Shutdown&) { return '4'; },
        [](const ConnectionFailure&) { return 'f'; }, [](const AddHeader&) { return 'h'; },
        [](const InsertHeader&) { return 'i'; },      [](const ChangeHeader&) { return 'm'; },
        [](const ReplaceBody&) { return 'b'; },       [](const AddRcpt&) { return '+'; },
        [](const AddRcptPar&) { return '2'; },        [](const DeleteRcpt&) { return '-'; },
        [](const ChangeFrom&) { return 'e'; },        [](const Quarantine&) { return 'q'; },
        [](const SetSymbolList&) { return 'l'; }}, reply);
}

std::string encode(const Command& command) {
    std::string data = std::visit(Overloaded{
        [](const OptionNegotiation& o) { return optneg_data(o); },
        [](const Macros& m) {
            std::string d(1, m.for_command);
            for (const auto& [n, v] : m.values) {
                put_string(d, n);
                put_string(d, v);
            }
            return d;
        },
        [](const Connect& c) {
            std::string d;
            put_string(d, c.hostname);
            d.push_back(c.family);
            if (c.family != 'U') {
                d.push_back(static_cast<char>(c.port >> 8));
                d.push_back(static_cast<char>(c.port & 0xff));
                put_string(d, c.address);
            }
            return d;
        },
        [](const Helo& h) { return one(h.name); },
        [](const Mail& m) { return strings(m.address, m.esmtp); },
        [](const Rcpt& r) { return strings(r.address, r.esmtp); },
        [](const Header& h) { return name_value(h.name, h.value); },
        [](const BodyChunk& b) { return b.bytes; },
        [](const EndOfMessage& e) { return e.bytes; },
        [](const Unknown& u) { return one(u.line); },
        [](const auto&) { return std::string(); }}, command);
    return packet(code_of(command), data);
}

std::string encode(const Reply& reply) {
    std::string data = std::visit(Overloaded{
        [](const OptionNegotiation& o) { return optneg_data(o); },
        [](const ReplyCode& r) { return one(r.text); },
        [](const AddHeader& h) { return name_value(h.name, h.value); },
        [](const InsertHeader& h) { return indexed(h.index, h.name, h.value); },
        [](const ChangeHeader& h) { return indexed(h.index, h.name, h.value); },
        [](const ReplaceBody& b) { return b.bytes; },
        [](const AddRcpt& r) { return one(r.address); },
        [](const AddRcptPar& r) { return optional_pair(r.address, r.esmtp); },
        [](const DeleteRcpt& r) { return one(r.address); },
        [](const ChangeFrom& r) { return optional_pair(r.address, r.esmtp); },
        [](const Quarantine& q) { return one(q.reason); },
        [](const SetSymbolList& s) {
            std::string d;
            put32(d, static_cast<std::uint32_t>(s.stage));
            put_string(d, s.names);
            return d;
        },
        [](const auto&) { return std::string(); }}, reply);
    return packet(code_of(reply), data);
}

const CommandInfo* command_info(char code) {
    auto it = std::find_if(std::begin(kCommands), std::end(kCommands),
                           [code](const CommandInfo& c) { return c.code == code; });
    return it == std::end(kCommands) ? nullptr : it;
}

bool expects_reply(char code, std::uint32_t steps) {
    const CommandInfo* c = command_info(code);
    return c && c->answered && !(c->no_reply_step & steps);
}

bool is_sent(char code, std::uint32_t steps) {
    const CommandInfo* c = command_info(code);
    return c && !(c->skip_step & steps);
}

std::string_view command_name(char code) {
    const CommandInfo* c = command_info(code);
    return c ? c->name : std::string_view("unknown");
}

std::string_view reply_name(char code) {
    return lookup(std::begin(kReplies), std::end(kReplies), code);
}

std::size_t max_data_for(std::uint32_t steps) {
    if (steps & step::mds_1m) return kMaxData1M;
    if (steps & step::mds_256k) return kMaxData256K;
    return kMaxDataDefault;
}

NegotiationCheck check_negotiation(const OptionNegotiation& offer, const OptionNegotiation& reply) {
    NegotiationCheck c;
    if (reply.version > offer.version) {
        c.error = "filter protocol version " + std::to_string(reply.version) +
                  " above the MTA's " + std::to_string(offer.version);
        return c;
    }
    if ((reply.actions & offer.actions) != reply.actions) {
        c.error = "filter asks for actions " + std::to_string(reply.actions & ~offer.actions) +
                  " that were not offered";
        return c;
    }
    c.actions = reply.actions;
    c.steps_in_force = reply.steps & offer.steps;
    return c;
}

}  // namespace proto::milter
