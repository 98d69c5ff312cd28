// See chain.h.
#include "milter/chain.h"

#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <cctype>
#include <sstream>

#include "daemon/metrics.h"
#include "maillog.h"
#include "milter/connection.h"
#include "milter/message_edit.h"

namespace mta::milter {

namespace asio = boost::asio;
namespace pm = proto::milter;

namespace {

// Postfix's milter8.c texts for the replies without text of their own.
constexpr std::string_view kRejectText = "550 5.7.1 Command rejected";
constexpr std::string_view kTempfailText = "451 4.7.1 Service unavailable - try again later";
constexpr std::string_view kShutdownText = "421 4.7.0 Server closing connection";
// milter_default_action=reject (milter8.c's default reply).
constexpr std::string_view kDefaultRejectText = "550 5.5.0 Service unavailable";
// RFC 5321 4.5.3.1.5: a reply line is at most 512 octets with its CRLF.
constexpr std::size_t kMaxReplyText = 510;
// Edits one milter may make to one message. Postfix has no count limit;
// each edit is a packet of at most 64 KiB, so this bounds the memory one
// milter can make us hold for a message.
constexpr std::size_t kMaxEdits = 1000;
// RFC 5321 4.5.3.1.3: a path is at most 256 octets; 2 more for <>.
constexpr std::size_t kMaxAddress = 258;
// Header fields and body chunks the filter does not answer (SMFIP_NR_HDR,
// SMFIP_NR_BODY) are written together, up to this much at a time.
constexpr std::size_t kWriteBatch = 256 * 1024;

// The steps mta-core offers: every SMFIP_NO* and SMFIP_NR_* (a filter may
// leave out any stage or reply), SMFIR_SKIP, and the leading space of
// header values. Not SMFIP_RCPT_REJ (refused recipients are not sent) nor
// the larger packet sizes (MILTER_CHUNK_SIZE bounds what we send).
constexpr std::uint32_t kOfferedSteps =
    pm::step::no_connect | pm::step::no_helo | pm::step::no_mail | pm::step::no_rcpt | pm::step::no_body |
    pm::step::no_headers | pm::step::no_eoh | pm::step::no_reply_header | pm::step::no_unknown |
    pm::step::no_data | pm::step::skip | pm::step::no_reply_connect | pm::step::no_reply_helo |
    pm::step::no_reply_mail | pm::step::no_reply_rcpt | pm::step::no_reply_data | pm::step::no_reply_unknown |
    pm::step::no_reply_eoh | pm::step::no_reply_body | pm::step::header_leading_space;

// Which macro list goes with which command (mfapi.h SMFIM_*).
std::optional<pm::MacroStage> macro_stage(char code) {
    switch (code) {
        case 'C': return pm::MacroStage::connect;
        case 'H': return pm::MacroStage::helo;
        case 'M': return pm::MacroStage::envfrom;
        case 'R': return pm::MacroStage::envrcpt;
        case 'T': return pm::MacroStage::data;
        case 'N': return pm::MacroStage::eoh;
        case 'E': return pm::MacroStage::eom;
        default: return std::nullopt;
    }
}

// Postfix's words for a reply that has no place where it came.
std::string unexpected(const pm::Reply& reply, char after) {
    return "unexpected filter response " + std::string(pm::reply_name(pm::code_of(reply))) + " after event " +
           std::string(pm::command_name(after));
}

// "milter inet:127.0.0.1:8891: ", as Postfix's milter8.c starts its warnings.
std::string prefix_of(const std::string& name) { return "milter " + name + ": "; }

std::vector<std::string> split_names(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

// SMFIR_REPLYCODE: "4NN|5NN[ X.Y.Z] text", the enhanced code's class the
// reply code's (RFC 3463 2), each line bounded; or several lines as
// smfi_setmlreply(3) makes them ("550-5.7.1 a\r\n550 5.7.1 b", at most 32),
// all with the same code. Returned as "550 a-text\nb-text" (the session's
// multi-line form); nullopt when malformed.
constexpr std::size_t kMaxReplyLines = 32;
std::optional<std::string> reply_text(const std::string& t) {
    std::vector<std::string_view> lines;
    std::string_view rest = t;
    while (true) {
        auto eol = rest.find("\r\n");
        lines.push_back(rest.substr(0, eol));
        if (eol == std::string_view::npos) break;
        rest.remove_prefix(eol + 2);
    }
    if (lines.size() > kMaxReplyLines) return std::nullopt;
    std::string out;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        std::string_view l = lines[i];
        const bool last = i + 1 == lines.size();
        if (l.size() < 3 || l.size() > kMaxReplyText) return std::nullopt;
        if ((l[0] != '4' && l[0] != '5') || !std::isdigit(static_cast<unsigned char>(l[1])) ||
            !std::isdigit(static_cast<unsigned char>(l[2])))
            return std::nullopt;
        if (l.substr(0, 3) != std::string_view(t).substr(0, 3)) return std::nullopt;
        if (l.size() > 3 && l[3] != (last ? ' ' : '-')) return std::nullopt;
        if (!last && l.size() == 3) return std::nullopt;
        for (char c : l)
            if (static_cast<unsigned char>(c) < 32 || c == 127) return std::nullopt;
        if (l.size() > 5 && std::isdigit(static_cast<unsigned char>(l[4])) && l[5] == '.' && l[4] != l[0])
            return std::nullopt;
        if (i == 0) out = std::string(l.substr(0, 3)) + " ";
        else out += "\n";
        if (l.size() > 4) out += l.substr(4);
    }
    if (out.size() == 4) out.pop_back();  // a code alone
    return out;
}

// "<a@b>" -> "a@b"; nullopt when it is no address to put in an envelope.
std::optional<std::string> envelope_address(const std::string& a) {
    if (a.size() > kMaxAddress) return std::nullopt;
    for (char c : a)
        if (static_cast<unsigned char>(c) < 32 || c == 127) return std::nullopt;
    std::string s = a;
    while (!s.empty() && s.front() == ' ') s.erase(0, 1);
    while (!s.empty() && s.back() == ' ') s.pop_back();
    if (s.size() >= 2 && s.front() == '<' && s.back() == '>') s = s.substr(1, s.size() - 2);
    return s;
}

}  // namespace

struct Chain::Milter {
    std::string prefix() const { return prefix_of(spec->name); }
    const MilterSpec* spec = nullptr;
    std::unique_ptr<Connection> conn;
    bool dead = false;            // failed: stands for its default action
    bool off_session = false;     // accepted at CONNECT/HELO (or default accept)
    bool off_message = false;     // accepted this message
    bool in_transaction = false;  // saw MAIL, not yet the end of message
    std::string pending;          // unanswered content packets not yet written
    std::uint32_t steps = 0;
    std::uint32_t actions = 0;
    std::array<std::vector<std::string>, pm::kMacroStages> macros;
};

Chain::Chain(asio::any_io_executor ex, std::shared_ptr<const MilterSettings> settings,
             proto::metrics::Registry* metrics, MacroLookup macros, std::string session_name)
    : ex_(std::move(ex)), settings_(std::move(settings)), metrics_(metrics), macros_(std::move(macros)),
      session_name_(std::move(session_name)) {
    for (const auto& spec : settings_->smtpd) {
        auto m = std::make_unique<Milter>();
        m->spec = &spec;
        m->conn = std::make_unique<Connection>(ex_, spec);
        m->macros = settings_->macros;
        milters_.push_back(std::move(m));
    }
}

Chain::~Chain() = default;

void Chain::count(const Milter& m, std::string_view what) {
    if (!metrics_) return;
    metrics_->counter("smtpd_milter_replies_total", "Milter replies and failures, by milter and result",
                      {{"milter", m.spec->name}, {"result", std::string(what)}})
        .inc();
}

Outcome Chain::default_outcome(Milter& m) {
    Outcome o;
    o.milter = m.spec->name;
    switch (m.spec->default_action) {
        case DefaultAction::accept:
            m.off_session = true;
            break;
        case DefaultAction::quarantine:
            break;  // the message goes on hold at its end (message_one)
        case DefaultAction::reject:
            o.kind = Outcome::Kind::reject;
            o.reply = kDefaultRejectText;
            break;
        case DefaultAction::tempfail:
            o.kind = Outcome::Kind::tempfail;
            o.reply = kTempfailText;
            break;
        case DefaultAction::shutdown:
            o.kind = Outcome::Kind::shutdown;
            o.reply = kShutdownText;
            break;
    }
    return o;
}

Outcome Chain::fail(Milter& m, const std::string& log_line) {
    maillog::line("smtpd", "warning: " + maillog::printable(log_line));
    count(m, "failure");
    if (metrics_)
        metrics_->counter("smtpd_milter_failures_total",
                          "Milters that failed (unreachable, timeout, protocol error), by milter and default action",
                          {{"milter", m.spec->name},
                           {"action", std::string(default_action_name(m.spec->default_action))}})
            .inc();
    m.conn->close();
    m.dead = true;
    return default_outcome(m);
}

asio::awaitable<Outcome> Chain::open(Milter& m) {
    std::string err = co_await m.conn->connect();
    // Postfix: "warning: connect to Milter service inet:...: Connection refused"
    if (!err.empty()) co_return fail(m, "connect to Milter service " + m.spec->name + ": " + err);
    pm::OptionNegotiation offer;
    offer.version = m.spec->protocol;
    offer.actions = pm::action::all_v6;
    offer.steps = kOfferedSteps;
    if (m.spec->protocol < 6) {
        // Before version 6 there were no SMFIP_NR_*, SKIP, CHGFROM, ADDRCPT_PAR
        // or SETSYMLIST (mfdef.h history).
        offer.actions &= 0x3f;
        offer.steps &= 0x7f;
    }
    std::string packet = pm::encode(pm::Command{offer});
    err = co_await m.conn->write(std::move(packet), m.spec->command_timeout);
    if (!err.empty()) co_return fail(m, m.prefix() + "can't send SMFIC_OPTNEG packet: " + err);
    pm::Reply reply;
    err = co_await m.conn->read(m.spec->command_timeout, reply);
    if (!err.empty()) co_return fail(m, m.prefix() + "can't read SMFIC_OPTNEG reply packet header: " + err);
    auto* neg = std::get_if<pm::OptionNegotiation>(&reply);
    if (!neg) {
        std::string got(pm::reply_name(pm::code_of(reply)));
        co_return fail(m, m.prefix() + "unexpected filter response " + got + " to SMFIC_OPTNEG");
    }
    auto check = pm::check_negotiation(offer, *neg);
    if (!check.error.empty()) co_return fail(m, m.prefix() + check.error);
    m.steps = check.steps_in_force;
    m.actions = check.actions;
    m.conn->set_max_data(pm::max_data_for(m.steps));
    // The filter's own macro lists replace ours for their stages, as
    // Postfix's milter8.c takes them.
    for (std::size_t i = 0; i < pm::kMacroStages; ++i)
        if (neg->macros[i]) m.macros[i] = split_names(*neg->macros[i]);
    co_return Outcome{};
}

// SMFIC_MACRO before a command: the stage's names that have a value here
// ("" when none has).
std::string Chain::macro_packet(Milter& m, char code) {
    auto stage = macro_stage(code);
    // SMFIC_UNKNOWN has no stage of its own in the negotiation:
    // milter_unknown_command_macros go with it (Postfix's milter8.c).
    if (!stage && code != 'U') return std::string();
    pm::Macros macros;
    macros.for_command = code;
    const auto& names = stage ? m.macros[static_cast<std::size_t>(*stage)] : settings_->unknown_command_macros;
    for (const auto& name : names) {
        auto value = macros_(name);
        if (value) macros.values.emplace_back(name, *value);
    }
    if (macros.values.empty()) return std::string();
    return pm::encode(pm::Command{std::move(macros)});
}

asio::awaitable<std::string> Chain::exchange(Milter& m, char code, pm::Command command, bool content,
                                             std::optional<pm::Reply>& reply) {
    reply.reset();
    if (!pm::is_sent(code, m.steps)) co_return std::string();
    auto timeout = content ? m.spec->content_timeout : m.spec->command_timeout;
    std::string packet = macro_packet(m, code);
    packet += pm::encode(command);
    const bool answered = pm::expects_reply(code, m.steps);
    if (!answered && content) {
        m.pending += packet;
        if (m.pending.size() < kWriteBatch) co_return std::string();
        packet.clear();
    }
    std::string out = std::move(m.pending);
    m.pending.clear();
    out += packet;
    std::string err = co_await m.conn->write(std::move(out), timeout);
    if (!err.empty()) co_return "can't send " + std::string(pm::command_name(code)) + " packet: " + err;
    if (!answered) co_return std::string();
    while (true) {
        pm::Reply r;
        err = co_await m.conn->read(timeout, r);
        if (!err.empty())
            co_return "can't read " + std::string(pm::command_name(code)) + " reply packet header: " + err;
        // SMFIR_PROGRESS: the filter is alive; the timeout starts again.
        if (std::holds_alternative<pm::Progress>(r)) continue;
        reply = std::move(r);
        co_return std::string();
    }
}

Outcome Chain::interpret(Milter& m, char code, const pm::Reply& reply, bool& misbehaved) {
    Outcome o;
    o.milter = m.spec->name;
    misbehaved = false;
    const bool session_stage = code == 'C' || code == 'H';
    if (std::holds_alternative<pm::Continue>(reply)) {
        count(m, "continue");
    } else if (std::holds_alternative<pm::Accept>(reply)) {
        count(m, "accept");
        if (session_stage) m.off_session = true;
        else m.off_message = true;
    } else if (std::holds_alternative<pm::Reject>(reply)) {
        count(m, "reject");
        o.kind = Outcome::Kind::reject;
        o.reply = kRejectText;
    } else if (std::holds_alternative<pm::Tempfail>(reply)) {
        count(m, "tempfail");
        o.kind = Outcome::Kind::tempfail;
        o.reply = kTempfailText;
    } else if (auto* rc = std::get_if<pm::ReplyCode>(&reply)) {
        auto text = reply_text(rc->text);
        if (!text) {
            misbehaved = true;
        } else {
            count(m, rc->text[0] == '5' ? "reject" : "tempfail");
            o.kind = rc->text[0] == '5' ? Outcome::Kind::reject : Outcome::Kind::tempfail;
            o.reply = *text;
            if (o.reply.size() == 3)  // a code alone: Postfix's words after it
                o.reply += rc->text[0] == '5' ? " 5.7.1 Command rejected" : " 4.7.1 Service unavailable";
        }
    } else if (std::holds_alternative<pm::Discard>(reply)) {
        count(m, "discard");
        if (session_stage) {
            // libmilter allows a discard only within a transaction.
            maillog::line("smtpd", "warning: milter " + m.spec->name + ": ignoring SMFIR_DISCARD at " +
                                       std::string(pm::command_name(code)));
        } else {
            o.kind = Outcome::Kind::discard;
        }
    } else if (std::holds_alternative<pm::Shutdown>(reply) || std::holds_alternative<pm::ConnectionFailure>(reply)) {
        count(m, "shutdown");
        o.kind = Outcome::Kind::shutdown;
        o.reply = kShutdownText;
    } else {
        misbehaved = true;
    }
    return o;
}

asio::awaitable<Outcome> Chain::event(char code, pm::Command command) {
    const bool in_message = code == 'M' || code == 'R' || code == 'T';
    if (discard_ && in_message) co_return Outcome{};
    for (auto& mp : milters_) {
        Milter& m = *mp;
        if (m.off_session) continue;
        if (in_message && m.off_message) continue;
        if (m.dead) {
            Outcome o = default_outcome(m);
            if (o.kind != Outcome::Kind::proceed) co_return o;
            continue;
        }
        if (code == 'M') m.in_transaction = true;
        std::optional<pm::Reply> reply;
        std::string err = co_await exchange(m, code, command, false, reply);
        if (!err.empty()) {
            Outcome o = fail(m, m.prefix() + err);
            if (o.kind != Outcome::Kind::proceed) co_return o;
            continue;
        }
        if (!reply) continue;
        bool misbehaved = false;
        Outcome o = interpret(m, code, *reply, misbehaved);
        if (misbehaved) {
            o = fail(m, m.prefix() + unexpected(*reply, code));
        }
        if (o.kind == Outcome::Kind::discard) discard_ = true;
        if (o.kind != Outcome::Kind::proceed) co_return o;
    }
    co_return Outcome{};
}

asio::awaitable<Outcome> Chain::connect(pm::Connect c) {
    for (auto& mp : milters_) {
        Outcome o = co_await open(*mp);
        (void)o;  // a failed milter answers with its default action below
    }
    pm::Command command{std::move(c)};
    Outcome o = co_await event('C', std::move(command));
    co_return o;
}

asio::awaitable<Outcome> Chain::helo(std::string name) {
    pm::Command command{pm::Helo{std::move(name)}};
    Outcome o = co_await event('H', std::move(command));
    co_return o;
}

asio::awaitable<Outcome> Chain::mail(pm::Mail mail) {
    pm::Command command{std::move(mail)};
    Outcome o = co_await event('M', std::move(command));
    co_return o;
}

asio::awaitable<Outcome> Chain::rcpt(pm::Rcpt rcpt) {
    pm::Command command{std::move(rcpt)};
    Outcome o = co_await event('R', std::move(command));
    co_return o;
}

asio::awaitable<Outcome> Chain::unknown(std::string line) {
    pm::Command command{pm::Unknown{std::move(line)}};
    Outcome o = co_await event('U', std::move(command));
    co_return o;
}

asio::awaitable<Outcome> Chain::data() {
    pm::Command command{pm::Data{}};
    Outcome o = co_await event('T', std::move(command));
    co_return o;
}

asio::awaitable<Outcome> Chain::message(std::string& message, EnvelopeEdits& edits) {
    if (discard_) {
        Outcome o;
        o.kind = Outcome::Kind::discard;
        co_return o;
    }
    for (auto& mp : milters_) {
        Outcome o = co_await message_one(*mp, message, edits);
        if (o.kind == Outcome::Kind::discard) discard_ = true;
        if (o.kind != Outcome::Kind::proceed) co_return o;
    }
    co_return Outcome{};
}

// One milter's view of the message: header fields, end of header, body in
// chunks, end of message and its edits (applied only when the milter
// accepts, so the next milter sees them).
asio::awaitable<Outcome> Chain::message_one(Milter& m, std::string& message, EnvelopeEdits& edits) {
    if (m.off_session || m.off_message) co_return Outcome{};
    if (m.dead) {
        if (m.spec->default_action == DefaultAction::quarantine && !edits.quarantine)
            edits.quarantine = "milter " + m.spec->name + " is unavailable";
        co_return default_outcome(m);
    }
    EditableMessage msg(message);
    const bool lead = (m.steps & pm::step::header_leading_space) != 0;
    std::optional<pm::Reply> reply;
    bool misbehaved = false;
    std::string err;
    // A step's reply: continue means go on; accept ends this milter's part.
    auto settle = [&](char code, Outcome& o) -> bool {  // true: stop here
        if (!err.empty()) {
            o = fail(m, m.prefix() + err);
            return true;
        }
        if (!reply) return false;
        o = interpret(m, code, *reply, misbehaved);
        if (misbehaved) {
            o = fail(m, m.prefix() + unexpected(*reply, code));
            return true;
        }
        return o.kind != Outcome::Kind::proceed || m.off_message;
    };
    Outcome o;
    for (const auto& h : msg.headers()) {
        pm::Command header{pm::Header{h.name, EditableMessage::value_for_milter(h, lead)}};
        err = co_await exchange(m, 'L', std::move(header), true, reply);
        if (settle('L', o)) co_return o;
    }
    pm::Command eoh{pm::EndOfHeaders{}};
    err = co_await exchange(m, 'N', std::move(eoh), true, reply);
    if (settle('N', o)) co_return o;
    // MILTER_CHUNK_SIZE (mfdef.h): the largest body chunk.
    const std::string& body = msg.body();
    for (std::size_t at = 0; at < body.size(); at += pm::kChunkSize) {
        pm::Command chunk{pm::BodyChunk{body.substr(at, pm::kChunkSize)}};
        err = co_await exchange(m, 'B', std::move(chunk), true, reply);
        // SMFIR_SKIP: no more body for this milter (only when offered).
        if (err.empty() && reply && std::holds_alternative<pm::Skip>(*reply) && (m.steps & pm::step::skip)) break;
        if (settle('B', o)) co_return o;
    }
    // End of message: edits, then one final reply.
    std::string eom = std::move(m.pending);
    m.pending.clear();
    eom += macro_packet(m, 'E');
    eom += pm::encode(pm::Command{pm::EndOfMessage{}});
    err = co_await m.conn->write(std::move(eom), m.spec->content_timeout);
    if (!err.empty()) co_return fail(m, m.prefix() + "can't send SMFIC_BODYEOB packet: " + err);
    std::vector<pm::Reply> changes;
    std::optional<pm::Reply> final_reply;
    while (!final_reply) {
        pm::Reply r;
        err = co_await m.conn->read(m.spec->content_timeout, r);
        if (!err.empty()) co_return fail(m, m.prefix() + "can't read SMFIC_BODYEOB reply packet header: " + err);
        if (std::holds_alternative<pm::Progress>(r)) continue;
        const bool is_final = std::holds_alternative<pm::Continue>(r) || std::holds_alternative<pm::Accept>(r) ||
                              std::holds_alternative<pm::Reject>(r) || std::holds_alternative<pm::Tempfail>(r) ||
                              std::holds_alternative<pm::ReplyCode>(r) || std::holds_alternative<pm::Discard>(r) ||
                              std::holds_alternative<pm::Shutdown>(r) ||
                              std::holds_alternative<pm::ConnectionFailure>(r);
        if (is_final) {
            final_reply = std::move(r);
        } else {
            if (changes.size() >= kMaxEdits)
                co_return fail(m, m.prefix() + "too many message modifications (limit " +
                                      std::to_string(kMaxEdits) + ")");
            changes.push_back(std::move(r));
        }
    }
    m.in_transaction = false;
    o = interpret(m, 'E', *final_reply, misbehaved);
    if (misbehaved) {
        co_return fail(m, m.prefix() + unexpected(*final_reply, 'E'));
    }
    if (o.kind != Outcome::Kind::proceed) co_return o;
    // Apply the edits, each checked against what the filter negotiated.
    std::optional<std::string> new_body;
    EnvelopeEdits mine;
    for (const auto& c : changes) {
        auto allowed = [&](std::uint32_t action) { return (m.actions & action) != 0; };
        std::string bad;
        if (auto* a = std::get_if<pm::AddHeader>(&c)) {
            if (!allowed(pm::action::add_headers)) bad = "SMFIR_ADDHEADER";
            else if (!EditableMessage::valid_name(a->name)) bad = "SMFIR_ADDHEADER with a bad header name";
            else msg.add_header(a->name, a->value, lead);
        } else if (auto* ins = std::get_if<pm::InsertHeader>(&c)) {
            if (!allowed(pm::action::add_headers)) bad = "SMFIR_INSHEADER";
            else if (!EditableMessage::valid_name(ins->name)) bad = "SMFIR_INSHEADER with a bad header name";
            else msg.insert_header(ins->index, ins->name, ins->value, lead);
        } else if (auto* ch = std::get_if<pm::ChangeHeader>(&c)) {
            if (!allowed(pm::action::change_headers)) bad = "SMFIR_CHGHEADER";
            else if (!EditableMessage::valid_name(ch->name)) bad = "SMFIR_CHGHEADER with a bad header name";
            else msg.change_header(ch->index, ch->name, ch->value, lead);
        } else if (auto* rb = std::get_if<pm::ReplaceBody>(&c)) {
            if (!allowed(pm::action::change_body)) {
                bad = "SMFIR_REPLBODY";
            } else {
                if (!new_body) new_body.emplace();
                *new_body += rb->bytes;
                // message_size_limit bounds a replaced body as it bounds DATA.
                if (settings_->message_size_limit && new_body->size() > settings_->message_size_limit)
                    bad = "SMFIR_REPLBODY beyond message_size_limit";
            }
        } else if (auto* ar = std::get_if<pm::AddRcpt>(&c)) {
            auto addr = envelope_address(ar->address);
            if (!allowed(pm::action::add_rcpt) || !addr || addr->empty()) bad = "SMFIR_ADDRCPT";
            else mine.added.push_back(*addr);
        } else if (auto* arp = std::get_if<pm::AddRcptPar>(&c)) {
            auto addr = envelope_address(arp->address);
            if (!allowed(pm::action::add_rcpt_par) || !addr || addr->empty()) bad = "SMFIR_ADDRCPT_PAR";
            else mine.added.push_back(*addr);  // ESMTP arguments (NOTIFY, ORCPT) are not kept
        } else if (auto* dr = std::get_if<pm::DeleteRcpt>(&c)) {
            auto addr = envelope_address(dr->address);
            if (!allowed(pm::action::delete_rcpt) || !addr) bad = "SMFIR_DELRCPT";
            else mine.deleted.push_back(*addr);
        } else if (auto* cf = std::get_if<pm::ChangeFrom>(&c)) {
            auto addr = envelope_address(cf->address);
            if (!allowed(pm::action::change_from) || !addr) bad = "SMFIR_CHGFROM";
            else mine.sender = *addr;
        } else if (auto* q = std::get_if<pm::Quarantine>(&c)) {
            if (!allowed(pm::action::quarantine)) bad = "SMFIR_QUARANTINE";
            else mine.quarantine = q->reason;
        } else {
            bad = std::string(pm::reply_name(pm::code_of(c)));
        }
        if (!bad.empty())
            co_return fail(m, m.prefix() + "unexpected filter response " + bad + " after event SMFIC_BODYEOB");
    }
    if (new_body) msg.replace_body(*new_body);
    if (!changes.empty()) {
        message = msg.serialize();
        count(m, "modified");
    }
    if (mine.sender) edits.sender = mine.sender;
    for (auto& a : mine.added) edits.added.push_back(std::move(a));
    for (auto& d : mine.deleted) edits.deleted.push_back(std::move(d));
    if (mine.quarantine) edits.quarantine = mine.quarantine;
    co_return o;
}

asio::awaitable<void> Chain::abort() {
    for (auto& mp : milters_) {
        Milter& m = *mp;
        m.off_message = false;
        m.pending.clear();  // content the milter will not need now
        if (!m.in_transaction) continue;
        m.in_transaction = false;
        if (m.dead || m.off_session) continue;
        std::string packet = pm::encode(pm::Command{pm::Abort{}});
        std::string err = co_await m.conn->write(std::move(packet), m.spec->command_timeout);
        if (!err.empty()) fail(m, m.prefix() + "can't send SMFIC_ABORT packet: " + err);
    }
    discard_ = false;
}

asio::awaitable<void> Chain::quit() {
    co_await abort();  // a transaction the client left unfinished
    for (auto& mp : milters_) {
        Milter& m = *mp;
        if (m.dead || !m.conn->is_open()) continue;
        std::string packet = pm::encode(pm::Command{pm::Quit{}});
        std::string err = co_await m.conn->write(std::move(packet), m.spec->command_timeout);
        (void)err;  // the session is over either way
        m.conn->close();
    }
}

}  // namespace mta::milter
