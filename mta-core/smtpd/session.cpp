// The SMTP session; see session.h. Reply texts and codes follow Postfix's
// smtpd so that clients and log tools see what they know.
#include "smtpd/session.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <algorithm>
#include <charconv>
#include <span>
#include <array>
#include <atomic>
#include <cctype>
#include <cstring>
#include <strings.h>
#include <ctime>
#include <optional>

#include "daemon/blocking.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "maillog.h"
#include "message_header.h"
#include "milter/chain.h"
#include "smtp/dsn.h"
#include "dns/resolver.h"
#include "queue/queue_store.h"
#include "sasl/sasl.h"
#include "smtpd/anvil.h"
#include "smtp/command.h"
#include "smtp/data.h"
#include "smtp/address.h"
#include "smtp/reply.h"

namespace mta::smtpd {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using proto::smtp::Command;
using proto::smtp::Verb;
using restrictions::Stage;
using restrictions::Verdict;
using Clock = std::chrono::steady_clock;
using Socket = proto::net::StreamConnection;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

std::atomic<std::uint64_t> g_instance{0};

// Plain or TLS, behind one read/write pair.
class Stream {
public:
    explicit Stream(Socket& c) : c_(c) {}
    bool tls() const { return tls_ != nullptr; }

    asio::awaitable<std::size_t> read_some(char* buf, std::size_t n, boost::system::error_code& ec) {
        std::size_t got = 0;
        if (tls_)
            std::tie(ec, got) = co_await tls_->async_read_some(asio::buffer(buf, n), use_nothrow);
        else
            std::tie(ec, got) = co_await c_.socket.async_read_some(asio::buffer(buf, n), use_nothrow);
        co_return got;
    }
    asio::awaitable<bool> write(std::string_view data) {
        boost::system::error_code ec;
        if (tls_)
            std::tie(ec, std::ignore) = co_await asio::async_write(*tls_, asio::buffer(data), use_nothrow);
        else
            std::tie(ec, std::ignore) =
                co_await asio::async_write(c_.socket, asio::buffer(data), use_nothrow);
        co_return !ec;
    }
    asio::awaitable<std::string> handshake(ssl::context& ctx) {
        tls_ = std::make_unique<ssl::stream<proto::net::StreamProtocol::socket&>>(c_.socket, ctx);
        auto [ec] = co_await tls_->async_handshake(ssl::stream_base::server, use_nothrow);
        if (ec) {
            tls_.reset();
            co_return ec.message();
        }
        co_return std::string();
    }
    SSL* native() { return tls_ ? tls_->native_handle() : nullptr; }

private:
    Socket& c_;
    std::unique_ptr<ssl::stream<proto::net::StreamProtocol::socket&>> tls_;
};

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

// The reply to a command: code and text (text may hold several lines joined by \n).
struct Reply {
    int code = 250;
    std::string text;  // enhanced code included when there is one
};

Reply parse_reply_line(const std::string& line) {
    Reply r;
    r.code = std::atoi(line.substr(0, 3).c_str());
    r.text = line.size() > 4 ? line.substr(4) : "";
    return r;
}

// The lists each stage evaluates, in Postfix's order (with
// smtpd_delay_reject the client, HELO and sender lists wait for RCPT).
constexpr std::array kClientStages{Stage::client};
constexpr std::array kHeloStages{Stage::helo};
constexpr std::array kMailStages{Stage::client, Stage::helo, Stage::sender};
constexpr std::array kRcptDelayedStages{Stage::client, Stage::helo, Stage::sender, Stage::relay,
                                        Stage::recipient};
constexpr std::array kRcptStages{Stage::relay, Stage::recipient};
constexpr std::array kDataStages{Stage::data};
constexpr std::array kEndOfDataStages{Stage::end_of_data};

struct Transaction {
    std::string sender;
    bool active = false;
    std::vector<std::string> recipients;
    std::vector<std::string> originals;
    // RFC 3461 per recipient (parallel to recipients) and per message.
    std::vector<std::pair<std::string, std::string>> dsn;  // NOTIFY, ORCPT
    std::string dsn_envid;
    std::string dsn_ret;
    std::string body_type;
    bool smtputf8 = false;
    std::size_t declared_size = 0;
    std::string queue_id;
    std::string instance;
    restrictions::Effects effects;
    bool milter_discard = false;  // a milter discarded the message before its end
    bool milter_hold = false;     // a milter quarantined it
};

class Session {
public:
    Session(std::shared_ptr<Socket> c, std::shared_ptr<const SmtpdConfig> cfg, SessionServices& s)
        : conn_(std::move(c)), cfg_(std::move(cfg)), svc_(s), stream_(*conn_),
          reader_(proto::smtp::CommandLimits{cfg_->line_length_limit, 256 + 2, 16, cfg_->smtputf8, true}) {}

    asio::awaitable<void> run();

private:
    // The command table: check, policy phase, proceed.
    using Check = std::optional<Reply> (Session::*)(const Command&);
    using Policy = asio::awaitable<std::optional<Reply>> (Session::*)(const Command&);
    using Proceed = asio::awaitable<Reply> (Session::*)(const Command&);
    struct Row {
        Verb verb;
        Check check;
        Policy policy;  // may be null
        Proceed proceed;
        bool ends_pipeline_group;  // RFC 2920 3.1: must be the last in a group
    };
    static const std::array<Row, 12> kTable;

    std::optional<Reply> check_helo(const Command&);
    std::optional<Reply> check_mail(const Command&);
    std::optional<Reply> check_rcpt(const Command&);
    std::optional<Reply> check_data(const Command&);
    std::optional<Reply> check_none(const Command&) { return std::nullopt; }
    std::optional<Reply> check_starttls(const Command&);
    std::optional<Reply> check_vrfy(const Command&);
    std::optional<Reply> check_auth(const Command&);

    asio::awaitable<std::optional<Reply>> policy_helo(const Command&);
    asio::awaitable<std::optional<Reply>> policy_mail(const Command&);
    asio::awaitable<std::optional<Reply>> policy_rcpt(const Command&);
    asio::awaitable<std::optional<Reply>> policy_data(const Command&);

    asio::awaitable<Reply> proceed_helo(const Command&);
    asio::awaitable<Reply> proceed_mail(const Command&);
    asio::awaitable<Reply> proceed_rcpt(const Command&);
    asio::awaitable<Reply> proceed_data(const Command&);
    asio::awaitable<Reply> proceed_rset(const Command&);
    asio::awaitable<Reply> proceed_noop(const Command&);
    asio::awaitable<Reply> proceed_quit(const Command&);
    asio::awaitable<Reply> proceed_vrfy(const Command&);
    asio::awaitable<Reply> proceed_starttls(const Command&);
    asio::awaitable<Reply> proceed_auth(const Command&);
    asio::awaitable<std::optional<std::string>> read_response_line();
    asio::awaitable<Reply> proceed_expn(const Command&);

    asio::awaitable<Verdict> run_stage(std::span<const Stage> stages);
    // Milters (smtpd_milters): their verdict as a reply, logged; nullopt
    // when the command goes on.
    std::optional<Reply> milter_reply(const milter::Outcome& o, std::string_view stage, std::string_view rcpt = {});
    asio::awaitable<void> milter_abort();
    asio::awaitable<std::optional<Reply>> milter_message(std::string& message);
    std::optional<std::string> milter_macro(std::string_view name) const;
    std::vector<std::string> esmtp_args(const Command& cmd) const;
    asio::awaitable<bool> connect_phase();
    asio::awaitable<bool> next_command();
    asio::awaitable<std::optional<Reply>> receive_message();
    asio::awaitable<bool> fill();
    asio::awaitable<bool> flush();
    void queue_reply(const Reply& r);
    asio::awaitable<bool> reply(const Reply& r, bool counts_as_error_if_failed = true);
    void reset_transaction();
    void log_reject(std::string_view stage_name, const std::string& reply_text,
                    std::string_view extra);
    std::string received_header(std::string_view first_rcpt);
    void tls_facts();
    void move_deadline() { conn_->deadline = Clock::now() + cfg_->timeout; }
    // Why reading stopped, in Postfix's words: the deadline passed (the
    // watchdog closed the connection, having told the client 421 4.4.2), or
    // the client went away.
    std::string ended() const { return Clock::now() >= conn_->deadline ? "timeout" : "lost connection"; }
    // anvil: false when this client is over the limit for this event.
    bool within_limit(AnvilEvent what, std::size_t limit) {
        if (limit == 0 || !svc_.anvil || exempt_) return true;
        if (svc_.anvil->event(facts_.client_address, what, limit, cfg_->anvil_rate_time_unit)) return true;
        static constexpr const char* names[] = {"Connection rate", "Message delivery request rate",
                                                "Recipient address rate", "AUTH command rate",
                                                "New TLS session rate"};
        maillog::line("smtpd", std::string("warning: ") + names[static_cast<int>(what)] +
                                   " limit exceeded: from " + maillog::printable(facts_.namaddr()) +
                                   " for service " + cfg_->service);
        return false;
    }

    std::shared_ptr<Socket> conn_;
    std::shared_ptr<const SmtpdConfig> cfg_;
    SessionServices& svc_;
    Stream stream_;
    proto::smtp::CommandReader reader_;
    std::string in_;       // bytes read, not yet consumed
    std::string out_;      // replies not yet written (pipelining)
    bool esmtp_ = false;
    bool helo_seen_ = false;
    bool quit_ = false;
    std::size_t errors_ = 0;
    std::size_t junk_ = 0;
    restrictions::Facts facts_;
    Transaction tx_;
    std::string tls_info_;  // for Received: and logs
    bool exempt_ = false;   // smtpd_client_event_limit_exceptions
    bool counted_ = false;  // this session is counted in anvil's concurrency
    std::unique_ptr<milter::Chain> milters_;
    // A milter refused the connection: every command but HELO/EHLO, QUIT,
    // RSET and NOOP gets this reply (the client hears it at MAIL, as with
    // smtpd_delay_reject).
    std::string milter_refusal_;
};

const std::array<Session::Row, 12> Session::kTable{{
    {Verb::ehlo, &Session::check_helo, &Session::policy_helo, &Session::proceed_helo, true},
    {Verb::helo, &Session::check_helo, &Session::policy_helo, &Session::proceed_helo, true},
    {Verb::mail, &Session::check_mail, &Session::policy_mail, &Session::proceed_mail, false},
    {Verb::rcpt, &Session::check_rcpt, &Session::policy_rcpt, &Session::proceed_rcpt, false},
    {Verb::data, &Session::check_data, &Session::policy_data, &Session::proceed_data, true},
    {Verb::rset, &Session::check_none, nullptr, &Session::proceed_rset, false},
    {Verb::noop, &Session::check_none, nullptr, &Session::proceed_noop, true},
    {Verb::quit, &Session::check_none, nullptr, &Session::proceed_quit, true},
    {Verb::vrfy, &Session::check_vrfy, nullptr, &Session::proceed_vrfy, true},
    {Verb::starttls, &Session::check_starttls, nullptr, &Session::proceed_starttls, true},
    {Verb::auth, &Session::check_auth, nullptr, &Session::proceed_auth, true},
    {Verb::expn, &Session::check_vrfy, nullptr, &Session::proceed_expn, true},
}};

void Session::queue_reply(const Reply& r) {
    // Multi-line texts: "250-a\r\n250 b\r\n".
    std::string_view text = r.text;
    std::string code = std::to_string(r.code);
    while (true) {
        auto nl = text.find('\n');
        out_ += code;
        out_ += nl == std::string_view::npos ? ' ' : '-';
        out_ += text.substr(0, nl);
        out_ += "\r\n";
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
}

asio::awaitable<bool> Session::flush() {
    if (out_.empty()) co_return true;
    std::string data = std::move(out_);
    out_.clear();
    bool ok = co_await stream_.write(data);
    co_return ok;
}

// Queue a reply; errors (4xx/5xx) are counted and slowed down as Postfix's
// smtpd_error_sleep_time/soft/hard limits say.
asio::awaitable<bool> Session::reply(const Reply& r, bool) {
    queue_reply(r);
    if (r.code >= 400 && r.code != 421) {
        ++errors_;
        if (errors_ >= cfg_->hard_error_limit) {
            queue_reply({421, "4.7.0 " + cfg_->myhostname + " Error: too many errors"});
            maillog::line("smtpd", "too many errors after " + std::string(facts_.protocol_state) +
                                       " from " + maillog::printable(facts_.namaddr()));
            co_await flush();
            quit_ = true;
            co_return false;
        }
        if (errors_ >= cfg_->soft_error_limit && cfg_->error_sleep_time.count() > 0) {
            co_await flush();
            asio::steady_timer pause(co_await asio::this_coro::executor, cfg_->error_sleep_time);
            co_await pause.async_wait(use_nothrow);
        }
    }
    co_return true;
}

void Session::reset_transaction() {
    tx_ = Transaction{};
    facts_.sender.clear();
    facts_.sender_known = false;
    facts_.recipient.clear();
    facts_.recipient_count = 0;
    facts_.queue_id.clear();
    facts_.size = 0;
    conn_->busy = false;
}

void Session::log_reject(std::string_view stage_name, const std::string& reply_text,
                         std::string_view extra) {
    if (svc_.metrics)
        svc_.metrics
            ->counter("smtpd_refused_total", "Commands refused by restrictions and checks, by stage and code",
                      {{"stage", std::string(stage_name)}, {"code", reply_text.substr(0, 3)}})
            .inc();
    std::string line = (tx_.queue_id.empty() ? std::string("NOQUEUE") : tx_.queue_id) +
                       ": reject: " + std::string(stage_name) + " from " +
                       maillog::printable(facts_.namaddr()) + ": " + maillog::printable(reply_text);
    if (!extra.empty()) line += std::string("; ") + std::string(extra);
    maillog::line("smtpd", line);
}

std::string envelope_part(std::string_view what, const restrictions::Facts& f, std::string_view rcpt);

std::optional<Reply> Session::milter_reply(const milter::Outcome& o, std::string_view stage, std::string_view rcpt) {
    using Kind = milter::Outcome::Kind;
    if (o.kind == Kind::proceed) return std::nullopt;
    if (o.kind == Kind::discard) {
        // libmilter: a discard within a transaction drops the whole message
        // after it is accepted.
        tx_.milter_discard = true;
        return std::nullopt;
    }
    if (svc_.metrics)
        svc_.metrics
            ->counter("smtpd_refused_total", "Commands refused by restrictions and checks, by stage and code",
                      {{"stage", std::string(stage)}, {"code", o.reply.substr(0, 3)}})
            .inc();
    // Postfix: "NOQUEUE: milter-reject: RCPT from name[addr]: 550 5.7.1 ...; from=<> to=<> proto=ESMTP helo=<>";
    // at the end of the message its cleanup(8) logs it, without the reply code.
    const bool end_of_message = stage == "END-OF-MESSAGE";
    std::string text = end_of_message && o.reply.size() > 4 ? o.reply.substr(4) : o.reply;
    std::string line = (tx_.queue_id.empty() ? std::string("NOQUEUE") : tx_.queue_id) + ": milter-reject: " +
                       std::string(stage) + " from " + maillog::printable(facts_.namaddr()) + ": " +
                       maillog::printable(text) + "; " + envelope_part("", facts_, rcpt);
    maillog::line(end_of_message ? "cleanup" : "smtpd", line);
    if (o.kind == Kind::shutdown) quit_ = true;
    return parse_reply_line(o.reply);
}

asio::awaitable<void> Session::milter_abort() {
    if (milters_) co_await milters_->abort();
}

std::vector<std::string> Session::esmtp_args(const Command& cmd) const {
    std::vector<std::string> out;
    for (const auto& p : cmd.params) out.push_back(p.has_value ? p.keyword + "=" + p.value : p.keyword);
    return out;
}

// Macro values as Postfix's smtpd defines them (MILTER_README "Macros");
// nullopt: not defined here, not sent.
std::optional<std::string> Session::milter_macro(std::string_view name) const {
    std::string_view n = name;
    if (n.size() > 2 && n.front() == '{' && n.back() == '}') n = n.substr(1, n.size() - 2);
    auto nonempty = [](const std::string& v) -> std::optional<std::string> {
        if (v.empty()) return std::nullopt;
        return v;
    };
    if (n == "j") return cfg_->myhostname;
    if (n == "_") return facts_.client_name + " [" + facts_.client_address + "]";
    if (n == "daemon_name") return cfg_->milters->daemon_name;
    if (n == "daemon_addr") return facts_.server_address;
    if (n == "daemon_port") return facts_.server_port;
    if (n == "v") return cfg_->milters->v;
    if (n == "client_addr") return facts_.client_address;
    if (n == "client_port") return facts_.client_port;
    if (n == "client_name") return facts_.client_name;
    if (n == "client_ptr") return facts_.reverse_client_name;
    if (n == "i") return nonempty(tx_.queue_id);
    if (n == "tls_version") return nonempty(facts_.encryption_protocol);
    if (n == "cipher") return nonempty(facts_.encryption_cipher);
    if (n == "cipher_bits") return nonempty(facts_.encryption_keysize);
    if (n == "auth_type") return nonempty(facts_.sasl_method);
    if (n == "auth_authen") return nonempty(facts_.sasl_username);
    if (n == "mail_addr") {
        if (!facts_.sender_known) return std::nullopt;
        return facts_.sender;
    }
    if (n == "rcpt_addr") return nonempty(facts_.recipient);
    return std::nullopt;
}

// Evaluate the given restriction lists in order, with Postfix's rules:
// "permit" ends its own list only; the first refusal ends the stage.
asio::awaitable<Verdict> Session::run_stage(std::span<const Stage> stages) {
    restrictions::Deferrals deferrals;
    Verdict last;
    for (Stage s : stages) {
        const restrictions::List* list = nullptr;
        switch (s) {
            case Stage::client: list = &cfg_->client; break;
            case Stage::helo: list = &cfg_->helo; break;
            case Stage::sender: list = &cfg_->sender; break;
            case Stage::relay: list = &cfg_->relay; break;
            case Stage::recipient: list = &cfg_->recipient; break;
            case Stage::data: list = &cfg_->data; break;
            case Stage::end_of_data: list = &cfg_->end_of_data; break;
        }
        Verdict v = co_await restrictions::evaluate(*list, s, facts_, cfg_->env, tx_.effects, deferrals);
        if (v.kind == Verdict::Kind::refuse) co_return restrictions::finish(v, deferrals);
        if (v.kind == Verdict::Kind::permit) last = v;
    }
    co_return restrictions::finish(last, deferrals);
}

std::string envelope_part(std::string_view what, const restrictions::Facts& f,
                          std::string_view rcpt) {
    std::string s = "from=<" + maillog::printable(f.sender) + ">";
    if (!rcpt.empty()) s += " to=<" + maillog::printable(rcpt) + ">";
    s += " proto=" + f.protocol_name + " helo=<" + maillog::printable(f.helo) + ">";
    (void)what;
    return s;
}

// --- HELO / EHLO ---------------------------------------------------------

std::optional<Reply> Session::check_helo(const Command& cmd) {
    if (cmd.argument.empty())
        return Reply{501, "5.5.4 Syntax: " + std::string(cmd.verb == Verb::ehlo ? "EHLO" : "HELO") +
                              " hostname"};
    return std::nullopt;
}

asio::awaitable<std::optional<Reply>> Session::policy_helo(const Command& cmd) {
    facts_.helo = cmd.argument;
    facts_.protocol_state = cmd.verb == Verb::ehlo ? "EHLO" : "HELO";
    if (!cfg_->delay_reject) {
        Verdict v = co_await run_stage(kHeloStages);
        if (v.kind == Verdict::Kind::refuse) {
            log_reject(facts_.protocol_state, v.reply, envelope_part("", facts_, {}));
            co_return parse_reply_line(v.reply);
        }
    }
    // Then the milters (Postfix's order: restrictions, then the milter
    // event; with smtpd_delay_reject they run first at RCPT).
    if (!milters_ || !milter_refusal_.empty()) co_return std::nullopt;
    co_await milters_->abort();  // HELO resets a transaction
    std::string helo = cmd.argument;
    milter::Outcome o = co_await milters_->helo(std::move(helo));
    co_return milter_reply(o, facts_.protocol_state);
}

asio::awaitable<Reply> Session::proceed_helo(const Command& cmd) {
    reset_transaction();
    helo_seen_ = true;
    esmtp_ = cmd.verb == Verb::ehlo;
    facts_.protocol_name = esmtp_ ? "ESMTP" : "SMTP";
    if (!esmtp_) co_return Reply{250, cfg_->myhostname};
    std::string text = cfg_->myhostname;
    text += "\nPIPELINING";
    text += "\nSIZE " + std::to_string(cfg_->message_size_limit);
    if (!cfg_->disable_vrfy) text += "\nVRFY";
    if (cfg_->tls && !stream_.tls() && cfg_->tls_level != TlsLevel::none) text += "\nSTARTTLS";
    if (cfg_->sasl && (!cfg_->tls_auth_only || stream_.tls())) {
        auto mechanisms = cfg_->sasl->mechanisms(stream_.tls());
        if (!mechanisms.empty()) {
            text += "\nAUTH";
            for (const auto& m : mechanisms) text += " " + m;
        }
    }
    text += "\nENHANCEDSTATUSCODES\n8BITMIME\nDSN";
    if (cfg_->smtputf8) text += "\nSMTPUTF8";
    co_return Reply{250, text};
}

// --- MAIL ------------------------------------------------------------------

std::optional<Reply> Session::check_mail(const Command& cmd) {
    if (cfg_->helo_required && !helo_seen_) return Reply{503, "5.5.1 Error: send HELO/EHLO first"};
    if (tx_.active) return Reply{503, "5.5.1 Error: nested MAIL command"};
    if (cfg_->tls_level == TlsLevel::encrypt && !stream_.tls())
        return Reply{530, "5.7.0 Must issue a STARTTLS command first"};
    if (const auto* size = cmd.param("SIZE")) {
        std::size_t v = 0;
        auto [p, ec] = std::from_chars(size->value.data(), size->value.data() + size->value.size(), v);
        if (ec != std::errc() || p != size->value.data() + size->value.size())
            return Reply{501, "5.5.4 Bad message size syntax"};
        if (cfg_->message_size_limit && v > cfg_->message_size_limit)
            return Reply{552, "5.3.4 Message size exceeds fixed limit"};
    }
    for (const auto& p : cmd.params) {
        if (p.keyword == "SIZE") continue;
        if (p.keyword == "BODY") {
            std::string v = upper(p.value);
            if (v != "7BIT" && v != "8BITMIME")
                return Reply{501, "5.5.4 Unsupported BODY parameter value"};
            continue;
        }
        if (p.keyword == "AUTH") continue;  // RFC 4954 5: accepted, not trusted
        if (p.keyword == "SMTPUTF8" && !p.has_value && cfg_->smtputf8) continue;
        // RFC 3461 4.3, 4.4 (Postfix's replies).
        if (p.keyword == "RET") {
            if (!proto::smtp::parse_ret(p.value)) return Reply{501, "5.5.4 Bad RET parameter syntax"};
            continue;
        }
        if (p.keyword == "ENVID") {
            if (!proto::smtp::parse_envid(p.value)) return Reply{501, "5.5.4 Bad ENVID parameter syntax"};
            continue;
        }
        return Reply{555, "5.5.4 Unsupported option: " + maillog::printable(p.keyword)};
    }
    for (std::string_view once : {"RET", "ENVID", "SIZE", "BODY"})
        if (std::count_if(cmd.params.begin(), cmd.params.end(), [&](const auto& p) { return p.keyword == once; }) > 1)
            return Reply{501, "5.5.4 Duplicate " + std::string(once) + " parameter"};
    // RFC 6531 3.6: a UTF-8 address only in a transaction that declared it.
    if (proto::smtp::has_non_ascii(cmd.path.to_string()) && !cmd.param("SMTPUTF8"))
        return Reply{553, "5.6.7 Must declare SMTPUTF8 to send unicode address"};
    if (!within_limit(AnvilEvent::message, cfg_->client_message_rate_limit))
        return Reply{450, "4.7.1 Error: too much mail from " + facts_.client_address};
    return std::nullopt;
}

asio::awaitable<std::optional<Reply>> Session::policy_mail(const Command& cmd) {
    facts_.protocol_state = "MAIL";
    facts_.sender = cmd.path.empty() ? "" : cmd.path.to_string();
    facts_.sender_known = true;
    if (const auto* size = cmd.param("SIZE")) facts_.size = std::strtoull(size->value.c_str(), nullptr, 10);
    if (!cfg_->delay_reject) {
        Verdict v = co_await run_stage(kMailStages);
        if (v.kind == Verdict::Kind::refuse) {
            log_reject("MAIL", v.reply, envelope_part("", facts_, {}));
            co_return parse_reply_line(v.reply);
        }
    }
    if (!milters_) co_return std::nullopt;
    co_await milters_->abort();  // whatever the last transaction left
    proto::milter::Mail mail{"<" + facts_.sender + ">", esmtp_args(cmd)};
    milter::Outcome o = co_await milters_->mail(std::move(mail));
    std::optional<Reply> refused = milter_reply(o, "MAIL");
    if (refused) co_await milters_->abort();
    co_return refused;
}

asio::awaitable<Reply> Session::proceed_mail(const Command& cmd) {
    tx_.active = true;
    tx_.sender = facts_.sender;
    tx_.instance = std::to_string(::getpid()) + "." + std::to_string(++g_instance);
    facts_.instance = tx_.instance;
    if (const auto* b = cmd.param("BODY")) tx_.body_type = upper(b->value);
    tx_.smtputf8 = cmd.param("SMTPUTF8") != nullptr;
    if (const auto* ret = cmd.param("RET")) tx_.dsn_ret = proto::smtp::parse_ret(ret->value).value_or("");
    if (const auto* envid = cmd.param("ENVID")) tx_.dsn_envid = proto::smtp::parse_envid(envid->value).value_or("");
    tx_.declared_size = facts_.size;
    conn_->busy = true;  // a transaction in progress: drain lets it finish
    co_return Reply{250, "2.1.0 Ok"};
}

// --- RCPT ------------------------------------------------------------------

std::optional<Reply> Session::check_rcpt(const Command& cmd) {
    if (!tx_.active) return Reply{503, "5.5.1 Error: need MAIL command"};
    if (tx_.recipients.size() >= cfg_->recipient_limit)
        return Reply{452, "4.5.3 Error: too many recipients"};
    if (cmd.path.empty()) return Reply{501, "5.1.3 Bad recipient address syntax"};
    for (const auto& p : cmd.params) {
        // RFC 3461 4.1, 4.2 (Postfix's replies).
        if (p.keyword == "NOTIFY") {
            if (!proto::smtp::parse_notify(p.value)) return Reply{501, "5.5.4 Bad NOTIFY parameter syntax"};
            continue;
        }
        if (p.keyword == "ORCPT") {
            if (!proto::smtp::parse_orcpt(p.value)) return Reply{501, "5.5.4 Bad ORCPT parameter syntax"};
            continue;
        }
        return Reply{555, "5.5.4 Unsupported option: " + maillog::printable(p.keyword)};
    }
    for (std::string_view once : {"NOTIFY", "ORCPT"})
        if (std::count_if(cmd.params.begin(), cmd.params.end(), [&](const auto& p) { return p.keyword == once; }) > 1)
            return Reply{501, "5.5.4 Duplicate " + std::string(once) + " parameter"};
    if (proto::smtp::has_non_ascii(cmd.path.to_string()) && !tx_.smtputf8)
        return Reply{553, "5.6.7 Must declare SMTPUTF8 to send unicode address"};
    if (!within_limit(AnvilEvent::recipient, cfg_->client_recipient_rate_limit))
        return Reply{450, "4.7.1 Error: too many recipients from " + facts_.client_address};
    return std::nullopt;
}

asio::awaitable<std::optional<Reply>> Session::policy_rcpt(const Command& cmd) {
    facts_.protocol_state = "RCPT";
    std::string rcpt = cmd.path.to_string();
    // RFC 5321 4.1.1.3: trailing dots are not part of the domain.
    while (!rcpt.empty() && rcpt.back() == '.') rcpt.pop_back();
    facts_.recipient = rcpt;
    facts_.recipient_count = tx_.recipients.size();
    // (No co_await inside ?: -- g++ 12 miscompiles it.)
    std::span<const Stage> stages = kRcptStages;
    if (cfg_->delay_reject) stages = kRcptDelayedStages;
    Verdict v = co_await run_stage(stages);
    if (v.kind != Verdict::Kind::refuse && !cfg_->unlisted_recipient.empty()) {
        restrictions::Deferrals none;
        v = co_await restrictions::evaluate(cfg_->unlisted_recipient, Stage::recipient, facts_, cfg_->env,
                                            tx_.effects, none);
    }
    if (v.kind == Verdict::Kind::refuse) {
        log_reject("RCPT", v.reply, envelope_part("", facts_, rcpt));
        co_return parse_reply_line(v.reply);
    }
    if (!milters_) co_return std::nullopt;
    proto::milter::Rcpt to{"<" + cmd.path.to_string() + ">", esmtp_args(cmd)};
    milter::Outcome o = co_await milters_->rcpt(std::move(to));
    co_return milter_reply(o, "RCPT", rcpt);
}

asio::awaitable<Reply> Session::proceed_rcpt(const Command& cmd) {
    tx_.recipients.push_back(facts_.recipient);
    tx_.originals.push_back(cmd.path.to_string());
    std::string notify, orcpt;
    if (const auto* n = cmd.param("NOTIFY")) notify = proto::smtp::parse_notify(n->value).value_or("");
    if (const auto* o = cmd.param("ORCPT")) orcpt = proto::smtp::parse_orcpt(o->value).value_or("");
    tx_.dsn.emplace_back(std::move(notify), std::move(orcpt));
    facts_.recipient_count = tx_.recipients.size();
    co_return Reply{250, "2.1.5 Ok"};
}

// --- DATA ------------------------------------------------------------------

std::optional<Reply> Session::check_data(const Command&) {
    if (!tx_.active) return Reply{503, "5.5.1 Error: need RCPT command"};
    if (tx_.recipients.empty()) return Reply{554, "5.5.1 Error: no valid recipients"};
    return std::nullopt;
}

asio::awaitable<std::optional<Reply>> Session::policy_data(const Command&) {
    facts_.protocol_state = "DATA";
    facts_.recipient.clear();
    Verdict v = co_await run_stage(kDataStages);
    if (v.kind == Verdict::Kind::refuse) {
        log_reject("DATA", v.reply, envelope_part("", facts_, {}));
        co_return parse_reply_line(v.reply);
    }
    if (!milters_) co_return std::nullopt;
    // The queue id exists from here on, so milters see it ("i") at DATA.
    tx_.queue_id = svc_.queue->new_id();
    facts_.queue_id = tx_.queue_id;
    milter::Outcome o = co_await milters_->data();
    std::optional<Reply> refused = milter_reply(o, "DATA");
    if (refused) co_await milters_->abort();
    co_return refused;
}

std::string Session::received_header(std::string_view first_rcpt) {
    std::string h = "Received: from " + maillog::printable(facts_.helo.empty() ? facts_.client_name : facts_.helo) +
                    " (" + facts_.client_name + " [" + facts_.client_address + "])\r\n";
    if (cfg_->tls_received_header && !tls_info_.empty()) h += "\t(" + tls_info_ + ")\r\n";
    std::string proto = facts_.protocol_name;
    if (stream_.tls()) proto += "S";
    if (!facts_.sasl_username.empty()) proto += "A";
    h += "\tby " + cfg_->myhostname + " with " + proto + " id " + tx_.queue_id;
    if (tx_.recipients.size() == 1) h += "\r\n\tfor <" + maillog::printable(first_rcpt) + ">";
    h += "; " + rfc5322_date(std::time(nullptr)) + "\r\n";
    return h;
}

asio::awaitable<Reply> Session::proceed_data(const Command&) {
    if (tx_.queue_id.empty()) tx_.queue_id = svc_.queue->new_id();
    facts_.queue_id = tx_.queue_id;
    maillog::line("smtpd", tx_.queue_id + ": client=" + maillog::printable(facts_.namaddr()) +
                               (facts_.sasl_username.empty()
                                    ? std::string()
                                    : ", sasl_method=" + facts_.sasl_method + ", sasl_username=" +
                                          maillog::printable(facts_.sasl_username)));
    queue_reply({354, "End data with <CR><LF>.<CR><LF>"});
    if (!co_await flush()) {
        quit_ = true;
        co_return Reply{421, "4.4.2 write error"};
    }
    auto result = co_await receive_message();
    if (result) co_return *result;
    co_return Reply{250, "2.0.0 Ok: queued as " + tx_.queue_id};
}

// Read the message, check it, store it durably; nullopt means queued.
asio::awaitable<std::optional<Reply>> Session::receive_message() {
    proto::smtp::DataReader data(cfg_->message_size_limit, proto::smtp::LineEnd::crlf);
    bool done = false;
    std::size_t bare_lf_reported = 0;
    while (!done) {
        if (!in_.empty()) {
            // The deadline moves once per line of data (see next_command()).
            if (in_.find('\n') != std::string::npos) move_deadline();
            auto r = data.feed(in_);
            in_.erase(0, r.consumed);
            done = r.done;
            if (cfg_->bare_newline != BareNewline::normalize && data.bare_lf_lines() > bare_lf_reported &&
                !cfg_->bare_newline_exclusions.contains(facts_.client_address)) {
                // smtpd_forbid_bare_newline = yes: refuse, and hang up.
                maillog::line("smtpd", "disconnect: bare <LF> received from " +
                                           maillog::printable(facts_.namaddr()) + " after DATA");
                quit_ = true;
                co_return Reply{521, "5.5.2 " + cfg_->myhostname + " Error: bare <LF> received"};
            }
            bare_lf_reported = data.bare_lf_lines();
            if (done) break;
        }
        if (!co_await fill()) {
            quit_ = true;
            maillog::line("smtpd", ended() + " after DATA (" + std::to_string(data.size()) +
                                       " bytes) from " + maillog::printable(facts_.namaddr()));
            co_return Reply{421, "4.4.2 lost connection"};
        }
    }
    if (data.too_big()) {
        log_reject("END-OF-MESSAGE", "552 5.3.4 Message size exceeds fixed limit", envelope_part("", facts_, {}));
        co_return Reply{552, "5.3.4 Error: message file too big"};
    }
    std::string body = data.take();
    const std::size_t truncated = truncate_long_fields(body, cfg_->header_size_limit);
    if (truncated)
        maillog::line("smtpd", tx_.queue_id + ": warning: " + std::to_string(truncated) +
                                   " header field(s) longer than header_size_limit (" +
                                   std::to_string(cfg_->header_size_limit) + " bytes) truncated, from " +
                                   maillog::printable(facts_.namaddr()));
    // Hop count (RFC 5321 6.3): the Received: fields in the header.
    const std::size_t hops = count_fields(body, "Received");
    if (hops > cfg_->hopcount_limit) {
        log_reject("END-OF-MESSAGE", "554 5.4.0 Error: too many hops", envelope_part("", facts_, {}));
        co_return Reply{554, "5.4.0 Error: too many hops"};
    }
    facts_.protocol_state = "END-OF-MESSAGE";
    facts_.size = body.size();
    Verdict v = co_await run_stage(kEndOfDataStages);
    if (v.kind == Verdict::Kind::refuse) {
        log_reject("END-OF-MESSAGE", v.reply, envelope_part("", facts_, {}));
        co_return parse_reply_line(v.reply);
    }
    std::string message;
    message.reserve(body.size() + 512);
    for (const auto& h : tx_.effects.prepend) message += h + "\r\n";
    message += received_header(tx_.recipients.empty() ? "" : tx_.recipients.front());
    if (!facts_.sasl_username.empty()) {
        // A submission (RFC 6409 8.2, 8.3): add what the client left out.
        if (!field_value(body, "Message-ID")) message += "Message-ID: <" + tx_.queue_id + "@" + cfg_->myhostname + ">\r\n";
        if (!field_value(body, "Date")) message += "Date: " + rfc5322_date(std::time(nullptr)) + "\r\n";
    }
    message += body;
    if (milters_ && !tx_.effects.discard) {
        auto refused = co_await milter_message(message);
        if (refused) co_return refused;
    }
    if (tx_.effects.discard) {
        maillog::line("smtpd", tx_.queue_id + ": discard: END-OF-MESSAGE from " +
                                   maillog::printable(facts_.namaddr()));
        co_return std::nullopt;
    }
    queue::Envelope env;
    env.id = tx_.queue_id;
    env.arrival = std::time(nullptr);
    // A bare local part gets @$myorigin (Postfix's append_at_myorigin).
    auto qualified = [&](const std::string& a) {
        return a.empty() || a.find('@') != std::string::npos || a[0] == '|' || a[0] == '/' ? a
                                                                                            : a + "@" + cfg_->myorigin;
    };
    env.sender = qualified(tx_.sender);
    for (std::size_t i = 0; i < tx_.recipients.size(); ++i) {
        std::string to = qualified(tx_.effects.redirect.empty() ? tx_.recipients[i] : tx_.effects.redirect);
        // Aliases are expanded once, here (as Postfix's cleanup does for
        // virtual aliases); the queue file holds the final addresses, with
        // the address the client gave as the original.
        std::vector<std::string> targets{to};
        if (cfg_->expand) targets = cfg_->expand(to);
        for (const auto& t : targets) {
            bool dup = std::any_of(env.recipients.begin(), env.recipients.end(),
                                   [&](const queue::Recipient& r) { return r.address == t; });
            if (!dup) env.recipients.push_back({t, tx_.originals[i], false, 0, tx_.dsn[i].first, tx_.dsn[i].second});
        }
    }
    for (const auto& b : tx_.effects.bcc) env.recipients.push_back({b, b, false, 0});
    env.client_name = facts_.client_name;
    env.client_address = facts_.client_address;
    env.helo = facts_.helo;
    env.protocol = facts_.protocol_name;
    env.sasl_username = facts_.sasl_username;
    env.body_type = tx_.body_type;
    env.smtputf8 = tx_.smtputf8;
    env.filter = tx_.effects.filter;
    env.dsn_envid = tx_.dsn_envid;
    env.dsn_ret = tx_.dsn_ret;
    // The durable write runs on the blocking pool; its fsyncs are grouped
    // with other sessions' (queue_store.h). The 250 waits for it.
    auto* store = svc_.queue;
    bool hold = tx_.effects.hold;
    auto write = [store, &env, &message, hold] {
        int e = store->commit(env, message);
        if (!e && hold) e = store->move(env.id, queue::Place::active, queue::Place::hold);
        return e;
    };
    int err = co_await proto::daemon::run_blocking<int>(svc_.blocking, co_await asio::this_coro::executor,
                                                        std::move(write));
    if (err) {
        maillog::line("smtpd", tx_.queue_id + ": warning: queue file write error: " + std::strerror(err));
        if (err == ENOSPC || err == EDQUOT)
            co_return Reply{452, "4.3.1 Insufficient system storage"};
        co_return Reply{451, "4.3.0 Error: queue file write error"};
    }
    if (svc_.metrics)
        svc_.metrics->counter("smtpd_messages_accepted_total", "Messages queued (answered 250)").inc();
    // cleanup's line: the Message-ID header as the message has it (Postfix
    // logs the value, angle brackets included).
    std::string message_id(field_value(message, "Message-ID").value_or(""));
    maillog::line("cleanup", tx_.queue_id + ": message-id=" + maillog::printable(message_id.substr(0, 200)));
    maillog::line("qmgr", tx_.queue_id + ": from=<" + maillog::printable(tx_.sender) +
                              ">, size=" + std::to_string(message.size()) +
                              ", nrcpt=" + std::to_string(env.recipients.size()) +
                              (hold ? " (queue hold)" : " (queue active)"));
    if (hold && tx_.milter_hold)
        // cleanup(8)'s words, with the milter's reason added.
        maillog::line("cleanup", tx_.queue_id + ": milter-hold: END-OF-MESSAGE from " +
                                     maillog::printable(facts_.namaddr()) + ": milter triggers HOLD action (" +
                                     maillog::printable(tx_.effects.hold_reason) + "); " +
                                     envelope_part("", facts_, {}));
    else if (hold)
        maillog::line("cleanup", tx_.queue_id + ": hold: END-OF-MESSAGE from " +
                                     maillog::printable(facts_.namaddr()) + ": " +
                                     maillog::printable(tx_.effects.hold_reason));
    else if (svc_.queued)
        svc_.queued(tx_.queue_id);
    co_return std::nullopt;
}

// The milters' end of the message: they see it as it will be stored, in the
// listed order, each after the edits of the ones before; their envelope
// edits and verdicts become this transaction's. nullopt: store it.
asio::awaitable<std::optional<Reply>> Session::milter_message(std::string& message) {
    milter::EnvelopeEdits edits;
    milter::Outcome o = co_await milters_->message(message, edits);
    co_await milters_->abort();  // the milters that did not reach the end
    using Kind = milter::Outcome::Kind;
    if (o.kind == Kind::reject || o.kind == Kind::tempfail || o.kind == Kind::shutdown) {
        std::optional<Reply> r = milter_reply(o, "END-OF-MESSAGE");
        co_return r;
    }
    if (o.kind == Kind::discard || tx_.milter_discard) {
        maillog::line("cleanup", tx_.queue_id + ": milter-discard: END-OF-MESSAGE from " +
                                     maillog::printable(facts_.namaddr()) + ": milter triggers DISCARD action; " +
                                     envelope_part("", facts_, {}));
        tx_.effects.discard = true;
        co_return std::nullopt;
    }
    if (edits.sender) tx_.sender = *edits.sender;
    auto same = [](const std::string& a, const std::string& b) {
        return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
    };
    for (const auto& gone : edits.deleted) {
        for (std::size_t i = tx_.recipients.size(); i-- > 0;) {
            if (!same(tx_.recipients[i], gone) && !same(tx_.originals[i], gone)) continue;
            tx_.recipients.erase(tx_.recipients.begin() + static_cast<std::ptrdiff_t>(i));
            tx_.originals.erase(tx_.originals.begin() + static_cast<std::ptrdiff_t>(i));
            tx_.dsn.erase(tx_.dsn.begin() + static_cast<std::ptrdiff_t>(i));
        }
    }
    for (const auto& added : edits.added) {
        tx_.recipients.push_back(added);
        tx_.originals.push_back(added);
        tx_.dsn.emplace_back();  // a milter's recipient: the default notices
    }
    if (tx_.recipients.empty()) {
        // Every recipient deleted: nothing to deliver (Postfix's cleanup
        // drops such a message too).
        maillog::line("cleanup", tx_.queue_id + ": milter-discard: END-OF-MESSAGE from " +
                                     maillog::printable(facts_.namaddr()) + ": no recipients left after milter edits; " +
                                     envelope_part("", facts_, {}));
        tx_.effects.discard = true;
        co_return std::nullopt;
    }
    if (edits.quarantine) {
        tx_.effects.hold = true;
        tx_.milter_hold = true;
        tx_.effects.hold_reason = *edits.quarantine;
    }
    co_return std::nullopt;
}

// --- the rest ----------------------------------------------------------------

asio::awaitable<Reply> Session::proceed_rset(const Command&) {
    co_await milter_abort();
    reset_transaction();
    co_return Reply{250, "2.0.0 Ok"};
}
asio::awaitable<Reply> Session::proceed_noop(const Command&) { co_return Reply{250, "2.0.0 Ok"}; }
asio::awaitable<Reply> Session::proceed_quit(const Command&) {
    quit_ = true;
    co_return Reply{221, "2.0.0 Bye"};
}

std::optional<Reply> Session::check_vrfy(const Command& cmd) {
    if (cfg_->disable_vrfy || cmd.verb == Verb::expn)
        return Reply{502, "5.5.1 " + std::string(cmd.verb == Verb::expn ? "EXPN" : "VRFY") +
                              " command is disabled"};
    if (cmd.argument.empty()) return Reply{501, "5.5.4 Syntax: VRFY address"};
    return std::nullopt;
}

asio::awaitable<Reply> Session::proceed_vrfy(const Command& cmd) {
    // RFC 5321 3.5.3: 252 when we will accept mail for it, 550 when we know
    // there is no such local user.
    std::string addr = cmd.argument;
    if (addr.size() > 2 && addr.front() == '<' && addr.back() == '>') addr = addr.substr(1, addr.size() - 2);
    if (addr.find('@') == std::string::npos) addr += "@" + cfg_->myorigin;
    auto at = addr.rfind('@');
    std::string domain = addr.substr(at + 1);
    for (char& c : domain) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (cfg_->env.is_local_domain && cfg_->env.is_local_domain(domain) && cfg_->env.is_known_recipient) {
        auto known = cfg_->env.is_known_recipient(addr);
        if (known && !*known)
            co_return Reply{550, "5.1.1 <" + maillog::printable(cmd.argument) +
                                     ">: Recipient address rejected: User unknown in local recipient table"};
    }
    co_return Reply{252, "2.0.0 " + maillog::printable(cmd.argument)};
}

asio::awaitable<Reply> Session::proceed_expn(const Command&) {
    co_return Reply{502, "5.5.1 EXPN command is disabled"};
}

std::optional<Reply> Session::check_starttls(const Command& cmd) {
    if (!cmd.argument.empty()) return Reply{501, "5.5.4 Syntax: STARTTLS"};
    if (stream_.tls()) return Reply{554, "5.5.1 Error: TLS already active"};
    if (!cfg_->tls || cfg_->tls_level == TlsLevel::none)
        return Reply{502, "5.5.1 Error: command not implemented"};
    if (tx_.active) return Reply{503, "5.5.1 Error: MAIL transaction in progress"};
    if (!within_limit(AnvilEvent::new_tls_session, cfg_->client_new_tls_session_rate_limit)) {
        quit_ = true;
        return Reply{421, "4.7.0 " + cfg_->myhostname + " Error: too many new TLS sessions from " +
                              facts_.client_address};
    }
    return std::nullopt;
}

void Session::tls_facts() {
    SSL* ssl = stream_.native();
    if (!ssl) return;
    if (svc_.metrics)
        svc_.metrics
            ->counter("smtpd_tls_sessions_total", "TLS handshakes completed, by protocol and resumption",
                      {{"protocol", SSL_get_version(ssl)}, {"resumed", SSL_session_reused(ssl) ? "yes" : "no"}})
            .inc();
    facts_.encryption_protocol = SSL_get_version(ssl);
    const SSL_CIPHER* c = SSL_get_current_cipher(ssl);
    int alg_bits = 0;
    int bits = c ? SSL_CIPHER_get_bits(c, &alg_bits) : 0;
    facts_.encryption_cipher = c ? SSL_CIPHER_get_name(c) : "";
    facts_.encryption_keysize = std::to_string(bits);
    tls_info_ = "using " + facts_.encryption_protocol + " with cipher " + facts_.encryption_cipher +
                " (" + std::to_string(bits) + "/" + std::to_string(alg_bits) + " bits)";
}

asio::awaitable<Reply> Session::proceed_starttls(const Command&) {
    queue_reply({220, "2.0.0 Ready to start TLS"});
    if (!co_await flush()) {
        quit_ = true;
        co_return Reply{421, "4.4.2 write error"};
    }
    // RFC 3207 4.2 / CVE-2011-0411: anything the client pipelined after
    // STARTTLS arrived in the clear and is discarded, never executed.
    in_.clear();
    reader_ = proto::smtp::CommandReader(proto::smtp::CommandLimits{cfg_->line_length_limit, 258, 16, cfg_->smtputf8, true});
    conn_->deadline_notice.clear();  // from now on the socket carries TLS records
    std::string err = co_await stream_.handshake(*cfg_->tls);
    if (!err.empty()) {
        maillog::line("smtpd", "SSL_accept error from " + maillog::printable(facts_.namaddr()) + ": " + err);
        quit_ = true;
        co_return Reply{0, {}};
    }
    tls_facts();
    if (cfg_->tls_loglevel > 0)
        maillog::line("smtpd", "Anonymous TLS connection established from " +
                                   maillog::printable(facts_.namaddr()) + ": " + tls_info_);
    // RFC 3207 4.2: forget everything learned before the handshake.
    helo_seen_ = false;
    esmtp_ = false;
    facts_.helo.clear();
    facts_.sasl_username.clear();
    facts_.sasl_method.clear();
    reset_transaction();
    co_return Reply{0, {}};  // no reply: the handshake was the answer
}

std::optional<Reply> Session::check_auth(const Command&) {
    if (!cfg_->sasl) return Reply{503, "5.5.1 Error: authentication not enabled"};
    if (cfg_->tls_auth_only && !stream_.tls())
        return Reply{538, "5.7.11 Encryption required for requested authentication mechanism"};
    if (!facts_.sasl_username.empty()) return Reply{503, "5.5.1 Error: already authenticated"};
    if (tx_.active) return Reply{503, "5.5.1 Error: MAIL transaction in progress"};
    if (!within_limit(AnvilEvent::auth, cfg_->client_auth_rate_limit))
        return Reply{450, "4.7.1 Error: too many AUTH commands from " + facts_.client_address};
    return std::nullopt;
}

// One line of an AUTH exchange (RFC 4954 4): at most smtpd_sasl_response_limit
// bytes; nullopt when the client went away or sent too much.
asio::awaitable<std::optional<std::string>> Session::read_response_line() {
    while (true) {
        auto lf = in_.find('\n');
        if (lf != std::string::npos) {
            std::string line = in_.substr(0, lf);
            in_.erase(0, lf + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.size() > cfg_->sasl_response_limit) co_return std::nullopt;
            co_return line;
        }
        if (in_.size() > cfg_->sasl_response_limit + 2) co_return std::nullopt;
        if (in_.empty()) move_deadline();
        bool got = co_await fill();
        if (!got) co_return std::nullopt;
    }
}

asio::awaitable<Reply> Session::proceed_auth(const Command& cmd) {
    // AUTH mechanism [initial-response]
    std::string mechanism = upper(cmd.argument.substr(0, cmd.argument.find(' ')));
    std::optional<std::string> initial;
    if (auto sp = cmd.argument.find(' '); sp != std::string::npos) {
        std::string encoded = cmd.argument.substr(sp + 1);
        if (encoded == "=") {
            initial = std::string();
        } else {
            initial = sasl::base64_decode(encoded);
            if (!initial) co_return Reply{501, "5.5.2 Cannot decode response"};
        }
    }
    if (mechanism.empty()) co_return Reply{501, "5.5.4 Syntax: AUTH mechanism"};
    sasl::Peer peer{facts_.client_address, facts_.client_port, facts_.server_address, facts_.server_port,
                    stream_.tls()};
    auto auth = cfg_->sasl->begin(peer);
    sasl::Step step = co_await auth->start(mechanism, initial);
    while (step.status == sasl::Step::Status::challenge) {
        queue_reply({334, sasl::base64_encode(step.challenge)});
        bool flushed = co_await flush();
        if (!flushed) {
            quit_ = true;
            co_return Reply{0, {}};
        }
        auto line = co_await read_response_line();
        if (!line) {
            quit_ = true;
            maillog::line("smtpd", "warning: " + maillog::printable(facts_.namaddr()) + ": SASL " + mechanism +
                                       " authentication aborted: response too long or connection lost");
            co_return Reply{0, {}};
        }
        if (*line == "*") co_return Reply{501, "5.7.0 Authentication aborted"};
        auto decoded = sasl::base64_decode(*line);
        if (!decoded) co_return Reply{501, "5.5.2 Cannot decode response"};
        step = co_await auth->next(std::move(*decoded));
    }
    if (svc_.metrics)
        svc_.metrics
            ->counter("smtpd_auth_total", "AUTH exchanges by result",
                      {{"result", step.status == sasl::Step::Status::success   ? "success"
                                  : step.status == sasl::Step::Status::failure ? "failure"
                                                                               : "temporary"}})
            .inc();
    if (step.status == sasl::Step::Status::success) {
        facts_.sasl_method = mechanism;
        facts_.sasl_username = step.username;
        co_return Reply{235, "2.7.0 Authentication successful"};
    }
    // The reason is the backend's words, never the password.
    maillog::line("smtpd", "warning: " + maillog::printable(facts_.namaddr()) + ": SASL " + mechanism +
                               " authentication failed: " + maillog::printable(step.reason));
    if (step.status == sasl::Step::Status::temporary)
        co_return Reply{454, "4.7.0 Temporary authentication failure"};
    co_return Reply{535, "5.7.8 Error: authentication failed: authentication failure"};
}

// --- the loop ----------------------------------------------------------------

asio::awaitable<bool> Session::fill() {
    char buf[16384];
    boost::system::error_code ec;
    std::size_t n = co_await stream_.read_some(buf, sizeof buf, ec);
    if (ec || n == 0) co_return false;
    in_.append(buf, n);
    co_return true;
}

asio::awaitable<bool> Session::connect_phase() {
    facts_.protocol_state = "CONNECT";
    if (cfg_->resolver && cfg_->peername_lookup) {
        // Postfix's smtpd_peer: the PTR name, kept as client_name only if it
        // resolves back to the address (RFC 1912 2.1 forward-confirmed).
        auto names = co_await cfg_->resolver->client_names(facts_.client_address);
        facts_.client_name = names.client_name;
        facts_.reverse_client_name = names.reverse_client_name;
        facts_.client_name_tempfail = names.tempfail;
    }
    maillog::line("smtpd", "connect from " + maillog::printable(facts_.namaddr()));
    exempt_ = cfg_->client_event_limit_exceptions.contains(facts_.client_address);
    if (svc_.anvil && !exempt_) {
        bool count_ok = svc_.anvil->open_session(facts_.client_address, cfg_->client_connection_count_limit);
        counted_ = count_ok;
        if (!count_ok)
            maillog::line("smtpd", "warning: Connection concurrency limit exceeded: " +
                                       std::to_string(cfg_->client_connection_count_limit) + " from " +
                                       maillog::printable(facts_.namaddr()) + " for service " + cfg_->service);
        if (!count_ok || !within_limit(AnvilEvent::connection, cfg_->client_connection_rate_limit)) {
            queue_reply({421, "4.7.0 " + cfg_->myhostname + " Error: too many connections from " +
                                  facts_.client_address});
            co_await flush();
            co_return false;
        }
    }
    if (cfg_->wrappermode && cfg_->tls) {
        conn_->deadline_notice.clear();
        std::string err = co_await stream_.handshake(*cfg_->tls);
        if (!err.empty()) {
            maillog::line("smtpd", "SSL_accept error from " + maillog::printable(facts_.namaddr()) + ": " + err);
            co_return false;
        }
        tls_facts();
    }
    if (!cfg_->delay_reject) {
        Verdict v = co_await run_stage(kClientStages);
        if (v.kind == Verdict::Kind::refuse) {
            log_reject("CONNECT", v.reply, "");
            // Postfix answers every command with the refusal; simpler and
            // equivalent for clients: refuse at the greeting.
            Reply r = parse_reply_line(v.reply);
            queue_reply({r.code >= 500 ? 554 : 421, r.text});
            co_await flush();
            co_return false;
        }
    }
    if (cfg_->milters && !cfg_->milters->smtpd.empty()) {
        auto lookup = [this](std::string_view name) { return milter_macro(name); };
        asio::any_io_executor executor = co_await asio::this_coro::executor;
        milters_ = std::make_unique<milter::Chain>(executor, cfg_->milters, svc_.metrics, lookup, facts_.namaddr());
        proto::milter::Connect c;
        // Sendmail's convention for a client without a verified name.
        c.hostname = facts_.client_name == "unknown" ? "[" + facts_.client_address + "]" : facts_.client_name;
        c.family = facts_.client_address.find(':') != std::string::npos ? '6' : '4';
        c.port = static_cast<std::uint16_t>(std::atoi(facts_.client_port.c_str()));
        c.address = facts_.client_address;
        milter::Outcome o = co_await milters_->connect(std::move(c));
        std::optional<Reply> refused = milter_reply(o, "CONNECT");
        if (refused && quit_) {
            queue_reply(*refused);
            co_await flush();
            co_return false;
        }
        if (refused) milter_refusal_ = std::to_string(refused->code) + " " + refused->text;
    }
    queue_reply({220, cfg_->banner});
    bool ok = co_await flush();
    co_return ok;
}

// One step of the loop: run one buffered command, or read more. False ends
// the session. (The loop body is its own coroutine, every temporary that
// crosses a co_await named: g++ 12 miscompiles break/continue and braced
// temporaries inside co_await expressions in long coroutines.)
asio::awaitable<bool> Session::next_command() {
    auto r = reader_.feed(in_);
    in_.erase(0, r.consumed);
    if (r.status == proto::smtp::CommandReader::Status::need_more) {
        bool flushed = co_await flush();
        if (!flushed) co_return false;
        // smtpd_per_record_deadline: the time runs per command line, not per
        // read, so a client dripping bytes cannot hold the session.
        if (reader_.pending() == 0) move_deadline();
        bool got = co_await fill();
        if (!got) {
            maillog::line("smtpd", ended() + " after " + facts_.protocol_state + " from " +
                                       maillog::printable(facts_.namaddr()));
            co_return false;
        }
        co_return true;
    }
    auto parsed = reader_.take();
    if (!parsed.command) {
        Reply error{parsed.error.code, parsed.error.enhanced + " " + parsed.error.text};
        if (parsed.unknown_line && milters_ && milter_refusal_.empty()) {
            // Postfix passes a command it does not know to the milters; a
            // refusal from one of them is the reply instead of ours.
            std::string line = *parsed.unknown_line;
            milter::Outcome o = co_await milters_->unknown(std::move(line));
            std::optional<Reply> refused = milter_reply(o, "UNKNOWN");
            if (refused) error = *refused;
        }
        bool ok = co_await reply(error);
        co_return ok;
    }
    const Command& cmd = *parsed.command;
    auto row = std::find_if(kTable.begin(), kTable.end(), [&](const Row& rw) { return rw.verb == cmd.verb; });
    if (row == kTable.end()) {
        // HELP and unknown verbs: Postfix has no HELP either.
        Reply unknown{500, "5.5.2 Error: command not recognized"};
        bool ok = co_await reply(unknown);
        co_return ok && ++junk_ <= cfg_->junk_command_limit;
    }
    // RFC 2920 3.1: after a command that ends a group, or in an SMTP (HELO)
    // session, the client must wait for our reply before it talks again
    // (smtpd_forbid_unauth_pipelining).
    bool talked_ahead = !in_.empty() && (row->ends_pipeline_group || !esmtp_);
    if (talked_ahead && cmd.verb != Verb::quit) {
        facts_.illegal_pipelining = true;
        if (cfg_->forbid_unauth_pipelining) {
            maillog::line("smtpd", "improper command pipelining after " +
                                       std::string(proto::smtp::verb_name(cmd.verb)) + " from " +
                                       maillog::printable(facts_.namaddr()) + ": " +
                                       maillog::printable(in_.substr(0, 100)));
            queue_reply({554, "5.5.0 Error: SMTP protocol synchronization"});
            co_await flush();
            co_return false;
        }
    }
    if ((cmd.verb == Verb::noop || cmd.verb == Verb::vrfy || cmd.verb == Verb::rset) &&
        ++junk_ > cfg_->junk_command_limit) {
        queue_reply({421, "4.7.0 " + cfg_->myhostname + " Error: too many junk commands"});
        co_await flush();
        co_return false;
    }
    if (!milter_refusal_.empty() && cmd.verb != Verb::quit && cmd.verb != Verb::rset && cmd.verb != Verb::noop &&
        cmd.verb != Verb::ehlo && cmd.verb != Verb::helo) {
        Reply refused = parse_reply_line(milter_refusal_);
        bool ok = co_await reply(refused);
        co_return ok;
    }
    // Check, policy phase, proceed.
    std::optional<Reply> refusal = (this->*(row->check))(cmd);
    if (!refusal && row->policy) refusal = co_await (this->*(row->policy))(cmd);
    Reply result;
    if (refusal)
        result = *refusal;
    else
        result = co_await (this->*(row->proceed))(cmd);
    if (result.code == 0) co_return !quit_;  // STARTTLS: the handshake was the answer
    bool ok = co_await reply(result);
    if (cmd.verb == Verb::data && !refusal) reset_transaction();
    co_return ok;
}

asio::awaitable<void> Session::run() {
    const auto& s = conn_->socket;
    boost::system::error_code ec;
    auto remote = s.remote_endpoint(ec);
    auto local = s.local_endpoint(ec);
    auto ip_of = [](const proto::net::StreamProtocol::endpoint& ep, std::string& port) -> std::string {
        char host[64] = "";
        const sockaddr* sa = ep.data();
        if (sa->sa_family == AF_INET) {
            auto* in = reinterpret_cast<const sockaddr_in*>(sa);
            ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
            port = std::to_string(ntohs(in->sin_port));
        } else if (sa->sa_family == AF_INET6) {
            auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
            ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
            port = std::to_string(ntohs(in6->sin6_port));
        }
        std::string h = host;
        if (h.starts_with("::ffff:") && h.find('.') != std::string::npos) h = h.substr(7);
        return h;
    };
    facts_.client_address = ip_of(remote, facts_.client_port);
    facts_.server_address = ip_of(local, facts_.server_port);
    facts_.protocol_name = "SMTP";
    facts_.compatibility_level = cfg_->compatibility_level;
    move_deadline();
    conn_->deadline_notice = "421 4.4.2 " + cfg_->myhostname + " Error: timeout exceeded\r\n";

    if (co_await connect_phase()) {
        while (!quit_) {
            bool go_on = co_await next_command();
            if (!go_on) break;
        }
    }
    co_await flush();
    if (milters_) co_await milters_->quit();
    if (counted_) svc_.anvil->close_session(facts_.client_address);
    maillog::line("smtpd", "disconnect from " + maillog::printable(facts_.namaddr()));
}

}  // namespace

asio::awaitable<void> serve_session(std::shared_ptr<proto::net::StreamConnection> connection,
                                    std::shared_ptr<const SmtpdConfig> config, SessionServices& services) {
    Session session(std::move(connection), std::move(config), services);
    co_await session.run();
}

}  // namespace mta::smtpd
