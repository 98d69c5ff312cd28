// SMTP/LMTP delivery client; see smtp_client.h.
#include "delivery/smtp_client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <system_error>

#include "delivery/sasl_client.h"
#include "net/endpoint_asio.h"
#include "sasl/sasl.h"
#include "smtp/dsn.h"
#include "smtp/reply.h"

namespace mta::delivery {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

std::string dot_stuff(std::string_view content, std::size_t line_limit) {
    std::string out;
    out.reserve(content.size() + content.size() / 64 + 8);
    bool line_start = true;
    std::size_t line_length = 0;  // bytes of the current line sent, its CR not counted
    for (std::size_t i = 0; i < content.size(); ++i) {
        char c = content[i];
        if (line_start && c == '.') {
            out.push_back('.');
            ++line_length;
        }
        const bool ends_line = c == '\r' || c == '\n';
        if (!ends_line && line_limit && line_length >= line_limit) {
            // Postfix's smtp_line_length_limit: <CR><LF><SPACE> goes in, the
            // way least harmful to MIME; the space starts a new line.
            out += "\r\n ";
            line_length = 1;
        }
        out.push_back(c);
        if (!ends_line) ++line_length;
        line_start = c == '\n';
        if (line_start) line_length = 0;
    }
    if (!out.empty() && !out.ends_with("\r\n")) out += "\r\n";
    out += ".\r\n";
    return out;
}

MessageTraits traits_of(const std::string& sender, const std::vector<std::string>& recipients,
                        std::string_view content) {
    MessageTraits t;
    t.size = content.size();
    auto non_ascii = [](std::string_view v) {
        return std::any_of(v.begin(), v.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
    };
    auto header_end = content.find("\r\n\r\n");
    std::string_view header = content.substr(0, header_end == std::string_view::npos ? content.size() : header_end);
    t.smtputf8 = non_ascii(sender) || non_ascii(header) ||
                 std::any_of(recipients.begin(), recipients.end(), [&](const std::string& r) { return non_ascii(r); });
    t.eight_bit = non_ascii(content);
    return t;
}

namespace {

namespace ssl = asio::ssl;
using Socket = proto::net::StreamProtocol::socket;

class Conversation {
public:
    explicit Conversation(asio::any_io_executor ex) : socket_(ex), timer_(ex) {}

    asio::awaitable<bool> connect(const proto::net::Endpoint& where, const SessionOptions& o) {
        boost::system::error_code ec;
        proto::net::StreamProtocol::endpoint target;
        try {
            target = proto::net::resolve_for_connect(where);
        } catch (const std::system_error& e) {
            error_ = e.what();
            co_return false;
        }
        // smtp_bind_address / smtp_bind_address6: the source address of
        // this family, when set.
        if (where.kind == proto::net::Endpoint::Kind::inet) {
            bool v6 = where.host.find(':') != std::string::npos;
            const std::string& bind = v6 ? o.bind_address6 : o.bind_address;
            if (!bind.empty()) {
                auto local = asio::ip::make_address(bind, ec);
                if (!ec) {
                    proto::net::StreamProtocol::endpoint from(asio::ip::tcp::endpoint(local, 0));
                    socket_.open(target.protocol(), ec);
                    if (!ec) socket_.bind(from, ec);
                }
                if (ec) {
                    error_ = "bind " + bind + ": " + ec.message();
                    co_return false;
                }
            }
        }
        timer_.expires_after(o.timeouts.connect);
        auto r = co_await (socket_.async_connect(target, use_nothrow) || timer_.async_wait(use_nothrow));
        if (r.index() == 1) {
            error_ = "connect to " + o.peer + ": Connection timed out";
            co_return false;
        }
        std::tie(ec) = std::get<0>(r);
        if (ec) {
            error_ = "connect to " + o.peer + ": " + ec.message();
            co_return false;
        }
        co_return true;
    }

    asio::awaitable<bool> send(std::string_view data, std::chrono::seconds limit) {
        timer_.expires_after(limit);
        boost::system::error_code ec;
        if (tls_) {
            auto r = co_await (asio::async_write(*tls_, asio::buffer(data), use_nothrow) ||
                               timer_.async_wait(use_nothrow));
            if (r.index() == 1) co_return timed_out("write");
            ec = std::get<0>(std::get<0>(r));
        } else {
            auto r = co_await (asio::async_write(socket_, asio::buffer(data), use_nothrow) ||
                               timer_.async_wait(use_nothrow));
            if (r.index() == 1) co_return timed_out("write");
            ec = std::get<0>(std::get<0>(r));
        }
        if (ec) {
            error_ = "write: " + ec.message();
            co_return false;
        }
        co_return true;
    }

    // One reply; nullopt on timeout, loss or a malformed reply (error() says).
    asio::awaitable<std::optional<proto::smtp::Reply>> read(std::chrono::seconds limit) {
        proto::smtp::ReplyParser parser;
        timer_.expires_after(limit);
        while (true) {
            if (!buf_.empty()) {
                auto r = parser.feed(buf_);
                buf_.erase(0, r.consumed);
                if (r.status == proto::smtp::ReplyParser::Status::done) co_return parser.take();
                if (r.status == proto::smtp::ReplyParser::Status::error) {
                    error_ = "malformed reply: " + parser.error();
                    co_return std::nullopt;
                }
            }
            char tmp[4096];
            boost::system::error_code ec;
            std::size_t n = 0;
            if (tls_) {
                auto r = co_await (tls_->async_read_some(asio::buffer(tmp), use_nothrow) ||
                                   timer_.async_wait(use_nothrow));
                if (r.index() == 1) {
                    error_ = "conversation with " + peer_ + " timed out";
                    co_return std::nullopt;
                }
                std::tie(ec, n) = std::get<0>(r);
            } else {
                auto r = co_await (socket_.async_read_some(asio::buffer(tmp), use_nothrow) ||
                                   timer_.async_wait(use_nothrow));
                if (r.index() == 1) {
                    error_ = "conversation with " + peer_ + " timed out";
                    co_return std::nullopt;
                }
                std::tie(ec, n) = std::get<0>(r);
            }
            if (ec || n == 0) {
                error_ = "lost connection with " + peer_;
                co_return std::nullopt;
            }
            buf_.append(tmp, n);
        }
    }

    // RFC 3207 after "220 Ready to start TLS". Whatever the server sent
    // after that reply and before the handshake is dropped: it was not
    // protected, and would otherwise be read as the answer to a command
    // sent under TLS (the STARTTLS command injection attack).
    asio::awaitable<bool> start_tls(ssl::context& ctx, std::chrono::seconds limit) {
        buf_.clear();
        tls_ = std::make_unique<ssl::stream<Socket&>>(socket_, ctx);
        timer_.expires_after(limit);
        auto r = co_await (tls_->async_handshake(ssl::stream_base::client, use_nothrow) ||
                           timer_.async_wait(use_nothrow));
        if (r.index() == 1) {
            error_ = "TLS handshake with " + peer_ + " timed out";
            co_return false;
        }
        auto [ec] = std::get<0>(r);
        if (ec) {
            error_ = "Cannot start TLS: handshake failure with " + peer_ + ": " + ec.message();
            co_return false;
        }
        co_return true;
    }

    SSL* ssl() { return tls_ ? tls_->native_handle() : nullptr; }
    const std::string& error() const { return error_; }
    void set_peer(std::string peer) { peer_ = std::move(peer); }
    void close() {
        boost::system::error_code ignored;
        socket_.close(ignored);
    }

private:
    bool timed_out(const char* what) {
        error_ = std::string(what) + " to " + peer_ + " timed out";
        return false;
    }

    Socket socket_;
    std::unique_ptr<ssl::stream<Socket&>> tls_;
    asio::steady_timer timer_;
    std::string buf_;
    std::string error_;
    std::string peer_;
};

// Send command (unless empty: it went out in a pipelined group) and read its reply.
asio::awaitable<std::optional<proto::smtp::Reply>> exchange(Conversation& c, std::string_view command,
                                                            std::chrono::seconds limit) {
    if (!command.empty() && !co_await c.send(command, limit)) co_return std::nullopt;
    auto reply = co_await c.read(limit);
    co_return reply;
}

std::string joined(const proto::smtp::Reply& r) {
    std::string s;
    for (const auto& l : r.lines) s += (s.empty() ? "" : " ") + l;
    return s;
}

void fail_all(Attempt& a, int code, std::string enhanced, std::string error) {
    a.code = code;
    a.enhanced = std::move(enhanced);
    a.error = std::move(error);
}

void fail_with(Attempt& a, const proto::smtp::Reply& r, std::string_view during) {
    fail_all(a, r.code, r.enhanced, std::string(during) + ": " + std::to_string(r.code) + " " +
                                        (r.enhanced.empty() ? "" : r.enhanced + " ") + joined(r));
}

// A lost connection or timeout: temporary, and the next address may do better.
void fail_lost(Attempt& a, const Conversation& c, std::string_view while_doing = {}) {
    fail_all(a, 421, "4.4.2", c.error() + std::string(while_doing));
    a.try_next = true;
}

std::string upper(std::string s) {
    for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return s;
}

// The EHLO reply's extensions (RFC 5321 4.1.1.1): keyword and parameters.
struct Extensions {
    bool pipelining = false, starttls = false, eight_bit_mime = false, smtputf8 = false, dsn = false;
    bool size = false;
    std::uint64_t size_limit = 0;  // 0: none announced
    std::vector<std::string> auth;

    static Extensions of(const proto::smtp::Reply& ehlo) {
        Extensions e;
        for (std::size_t i = 1; i < ehlo.lines.size(); ++i) {
            std::string line = upper(ehlo.lines[i]);
            std::string keyword = line.substr(0, line.find(' '));
            std::string rest = line.size() > keyword.size() ? line.substr(keyword.size() + 1) : "";
            if (keyword == "PIPELINING") e.pipelining = true;
            else if (keyword == "STARTTLS") e.starttls = true;
            else if (keyword == "8BITMIME") e.eight_bit_mime = true;
            else if (keyword == "SMTPUTF8") e.smtputf8 = true;
            else if (keyword == "DSN") e.dsn = true;
            else if (keyword == "SIZE") {
                e.size = true;
                e.size_limit = std::strtoull(rest.c_str(), nullptr, 10);
            } else if (keyword == "AUTH") {
                std::string word;
                for (char ch : rest + " ") {
                    if (ch == ' ') {
                        if (!word.empty()) e.auth.push_back(word);
                        word.clear();
                    } else {
                        word.push_back(ch);
                    }
                }
            }
        }
        return e;
    }
};

// AUTH with PLAIN or LOGIN (delivery/smtp_auth.h). True when authenticated;
// otherwise the attempt holds why.
asio::awaitable<bool> authenticate(Conversation& c, const SessionOptions& o, const Extensions& ext, bool tls,
                                   Attempt& a) {
    const std::string offered = filter_mechanisms(ext.auth, o.sasl_mechanism_filter);
    SaslClient client(o.host.empty() ? o.peer : o.host, *o.sasl, tls ? o.sasl_tls_security : o.sasl_security);
    SaslClient::Start first = client.start(offered);
    if (first.mechanism.empty()) {
        // Postfix: "SASL authentication failed; cannot authenticate to
        // server ...: no mechanism available"; temporary, try another server.
        fail_all(a, 430, "4.7.0",
                 "SASL authentication failed; cannot authenticate to server " + o.peer + ": " + first.error);
        a.try_next = true;
        co_return false;
    }
    // RFC 4954 4: the initial response on the AUTH line, "=" when empty.
    std::string command = "AUTH " + first.mechanism;
    if (first.response) command += " " + (first.response->empty() ? std::string("=") : *first.response);
    command += "\r\n";
    std::optional<proto::smtp::Reply> r = co_await exchange(c, command, o.timeouts.sasl);
    // A bounded number of challenges: no mechanism we use needs more.
    for (int round = 0; r && r->code == 334 && round < 8; ++round) {
        std::string challenge = r->lines.empty() ? std::string() : r->lines.front();
        std::string error;
        auto response = client.step(challenge, error);
        if (!response) {
            // RFC 4954 4: "*" cancels the exchange.
            std::string cancel = "*\r\n";
            co_await exchange(c, cancel, o.timeouts.sasl);
            fail_all(a, 435, "4.7.0", "SASL authentication failed; cannot authenticate to server " + o.peer + ": " + error);
            a.try_next = true;
            co_return false;
        }
        std::string line = *response + "\r\n";
        r = co_await exchange(c, line, o.timeouts.sasl);
    }
    if (!r) {
        fail_lost(a, c, " during AUTH");
        co_return false;
    }
    if (r->code != 235) {
        // smtp_sasl_auth_soft_bounce (yes): an authentication failure defers.
        fail_all(a, 435, "4.7.0",
                 "SASL authentication failed; server " + o.peer + " said: " + std::to_string(r->code) + " " +
                     (r->enhanced.empty() ? "" : r->enhanced + " ") + joined(*r));
        a.try_next = true;
        co_return false;
    }
    co_return true;
}

}  // namespace

struct Session::State {
    explicit State(asio::any_io_executor ex) : c(ex) {}
    Conversation c;  // not movable: the TLS stream refers to its socket
    SessionOptions options;
    Extensions ext;
    bool lmtp = false;
    bool tls = false;
    bool reusable = false;
    unsigned transactions = 0;
};

Session::Session() = default;
Session::~Session() = default;

asio::awaitable<std::unique_ptr<Session>> Session::open(asio::any_io_executor ex, const Nexthop& nexthop,
                                                        const SessionOptions& o, Attempt& a) {
    const Timeouts& t = o.timeouts;
    auto state = std::make_unique<State>(ex);
    state->options = o;
    state->lmtp = nexthop.lmtp;
    Conversation& c = state->c;
    c.set_peer(o.peer.empty() ? nexthop.text : o.peer);
    if (!co_await c.connect(nexthop.endpoint, o)) {
        fail_all(a, 421, "4.4.1", c.error());
        a.try_next = true;
        co_return nullptr;
    }
    a.connected = true;
    auto greeting = co_await c.read(t.helo);
    if (!greeting) {
        fail_lost(a, c, " while receiving the initial server greeting");
        co_return nullptr;
    }
    if (greeting->code != 220) {
        // RFC 5321 3.1: a server that greets with 4xx/5xx is not taking mail
        // now; Postfix tries the next address (smtp_skip_5xx_greeting).
        fail_with(a, *greeting, "host " + o.peer + " refused to talk to me");
        if (a.code < 400 || a.code >= 500) {
            a.code = 421;
            a.enhanced = "4.3.0";
        }
        a.try_next = true;
        c.close();
        co_return nullptr;
    }
    std::string hello = (nexthop.lmtp ? "LHLO " : "EHLO ") + o.helo_name + "\r\n";
    auto ehlo = co_await exchange(c, hello, t.helo);
    if (!ehlo) {
        fail_lost(a, c);
        co_return nullptr;
    }
    if (ehlo->code >= 500 && !nexthop.lmtp) {
        // RFC 5321 3.2: a server that does not know EHLO gets HELO, and no
        // extensions are used (so no STARTTLS: "may" goes on in the clear).
        std::string helo = "HELO " + o.helo_name + "\r\n";
        ehlo = co_await exchange(c, helo, t.helo);
        if (!ehlo) {
            fail_lost(a, c);
            co_return nullptr;
        }
        if (ehlo->code == 250) ehlo->lines.resize(1);
    }
    if (ehlo->code != 250) {
        fail_with(a, *ehlo, nexthop.lmtp ? "LHLO" : "HELO/EHLO");
        a.try_next = ehlo->code == 421;
        co_return nullptr;
    }
    Extensions ext = Extensions::of(*ehlo);
    const TlsLevel level = o.tls_skip ? TlsLevel::none : o.tls.level;
    bool tls = false;
    if (level != TlsLevel::none && !nexthop.lmtp) {
        if (!ext.starttls) {
            if (level != TlsLevel::may) {
                fail_all(a, 450, "4.7.4", "TLS is required, but was not offered by host " + o.peer);
                a.try_next = true;
                co_await c.send("QUIT\r\n", t.quit);
                co_return nullptr;
            }
        } else {
            auto go = co_await exchange(c, "STARTTLS\r\n", t.starttls);
            if (!go) {
                fail_lost(a, c);
                a.tls_handshake_failed = level == TlsLevel::may;
                co_return nullptr;
            }
            if (go->code != 220) {
                if (level != TlsLevel::may) {
                    fail_with(a, *go, "STARTTLS");
                    a.code = 450;
                    a.enhanced = "4.7.4";
                    a.try_next = true;
                    co_return nullptr;
                }
            } else {
                const auto& ctx = level == TlsLevel::may ? o.tls.opportunistic : o.tls.mandatory;
                if (!co_await c.start_tls(*ctx, t.starttls)) {
                    fail_all(a, 454, "4.7.5", c.error());
                    a.try_next = true;
                    a.tls_handshake_failed = level == TlsLevel::may;
                    co_return nullptr;
                }
                tls = true;
                TlsOutcome outcome = examine(c.ssl(), o.tls.match, o.host, o.nexthop);
                const char* trust = outcome.verified ? "Verified" : outcome.trusted ? "Trusted" : "Untrusted";
                a.tls_log = std::string(trust) + " TLS connection established to " + o.peer + ": " + outcome.summary;
                if ((level == TlsLevel::verify || level == TlsLevel::secure) && !outcome.verified) {
                    // Postfix: "Server certificate not trusted" / "not verified".
                    fail_all(a, 454, "4.7.5",
                             std::string("Server certificate not ") + (outcome.trusted ? "verified" : "trusted") +
                                 " (" + o.peer + ", CN=" + outcome.peer_cn + ")");
                    a.try_next = true;
                    co_await c.send("QUIT\r\n", t.quit);
                    co_return nullptr;
                }
                // RFC 3207 4.2: forget what EHLO said in the clear, ask again.
                ehlo = co_await exchange(c, hello, t.helo);
                if (!ehlo) {
                    fail_lost(a, c);
                    co_return nullptr;
                }
                if (ehlo->code != 250) {
                    fail_with(a, *ehlo, "EHLO");
                    a.try_next = ehlo->code == 421;
                    co_return nullptr;
                }
                ext = Extensions::of(*ehlo);
            }
        }
    }
    if (o.sasl && !nexthop.lmtp) {
        if (ext.auth.empty()) {
            // Postfix logs this and sends without AUTH; the server decides.
        } else if (!co_await authenticate(c, o, ext, tls, a)) {
            co_await c.send("QUIT\r\n", t.quit);
            co_return nullptr;
        }
    }
    state->ext = ext;
    state->tls = tls;
    state->reusable = true;
    std::unique_ptr<Session> session(new Session);
    session->state_ = std::move(state);
    co_return session;
}

asio::awaitable<Attempt> Session::transfer(const std::string& sender, const std::vector<std::string>& recipients,
                                           const std::string& content, const DsnParameters* dsn) {
    const SessionOptions& o = state_->options;
    const Timeouts& t = o.timeouts;
    const Extensions& ext = state_->ext;
    const bool lmtp = state_->lmtp;
    Conversation& c = state_->c;
    // Reusable again only where the transaction ends cleanly.
    state_->reusable = false;
    Attempt a;
    a.connected = true;
    a.conn_use = ++state_->transactions;
    a.recipients.resize(recipients.size());
    MessageTraits traits = traits_of(sender, recipients, content);
    if (ext.size_limit > 0 && traits.size > ext.size_limit) {
        // RFC 1870 6: do not send what the server declared too large.
        fail_all(a, 552, "5.3.4",
                 "message size " + std::to_string(traits.size) + " exceeds size limit " +
                     std::to_string(ext.size_limit) + " of server " + o.peer);
        state_->reusable = true;
        co_return a;
    }
    if (traits.smtputf8 && !ext.smtputf8 && !lmtp) {
        fail_all(a, 550, "5.6.7", "SMTPUTF8 is required, but was not offered by host " + o.peer);
        state_->reusable = true;
        co_return a;
    }
    std::string mail = "MAIL FROM:<" + sender + ">";
    if (ext.size) mail += " SIZE=" + std::to_string(traits.size);
    if (traits.eight_bit && ext.eight_bit_mime) mail += " BODY=8BITMIME";
    if (traits.smtputf8 && ext.smtputf8) mail += " SMTPUTF8";
    // RFC 3461 5.2: a server that offers DSN takes the client's requests on.
    const bool pass_dsn = ext.dsn && dsn;
    a.dsn_offered = ext.dsn;
    if (pass_dsn && !dsn->ret.empty()) mail += " RET=" + dsn->ret;
    if (pass_dsn && !dsn->envid.empty()) mail += " ENVID=" + proto::smtp::xtext_encode(dsn->envid);
    mail += "\r\n";
    const bool pipelining = ext.pipelining;
    // RFC 2920: MAIL, all RCPTs and DATA in one write when the server allows.
    std::vector<std::string> commands;
    commands.push_back(mail);
    for (std::size_t i = 0; i < recipients.size(); ++i) {
        std::string rcpt = "RCPT TO:<" + recipients[i] + ">";
        if (pass_dsn && i < dsn->recipients.size()) {
            const auto& [notify, orcpt] = dsn->recipients[i];
            if (!notify.empty()) rcpt += " NOTIFY=" + notify;
            if (!orcpt.empty()) rcpt += " ORCPT=" + proto::smtp::orcpt_parameter(orcpt);
        }
        commands.push_back(rcpt + "\r\n");
    }
    commands.push_back("DATA\r\n");
    if (pipelining) {
        std::string envelope;
        for (const auto& cmd : commands) envelope += cmd;
        if (!co_await c.send(envelope, t.mail)) {
            fail_lost(a, c);
            co_return a;
        }
    }
    // Without PIPELINING each command is sent when its turn comes.
    auto step = [&](std::size_t i, std::chrono::seconds limit) {
        return exchange(c, pipelining ? std::string_view() : std::string_view(commands[i]), limit);
    };
    auto mail_reply = co_await step(0, t.mail);
    if (!mail_reply) {
        fail_lost(a, c);
        co_return a;
    }
    if (mail_reply->code != 250 && !pipelining) {
        fail_with(a, *mail_reply, "MAIL FROM");
        a.try_next = mail_reply->code == 421;
        state_->reusable = mail_reply->code != 421;
        co_return a;
    }
    std::size_t accepted = 0;
    for (std::size_t i = 0; i < recipients.size(); ++i) {
        if (mail_reply->code != 250 && !pipelining) break;
        auto rr = co_await step(i + 1, t.rcpt);
        if (!rr) {
            fail_lost(a, c);
            for (auto& r : a.recipients) r = {};
            co_return a;
        }
        if (mail_reply->code != 250) continue;
        a.recipients[i] = {rr->code, rr->enhanced, joined(*rr)};
        if (rr->positive()) ++accepted;
    }
    if (mail_reply->code != 250) {
        if (pipelining) co_await step(recipients.size() + 1, t.data_init);
        fail_with(a, *mail_reply, "MAIL FROM");
        a.try_next = mail_reply->code == 421;
        for (auto& r : a.recipients) r = {};
        state_->reusable = mail_reply->code != 421;
        co_return a;
    }
    if (accepted == 0 && !pipelining) {
        state_->reusable = true;
        co_return a;
    }
    auto data = co_await step(recipients.size() + 1, t.data_init);
    if (!data) {
        fail_lost(a, c);
        for (auto& r : a.recipients) r = {};
        co_return a;
    }
    if (accepted == 0 || data->code != 354) {
        if (data->code == 354) {
            // RFC 2920: every recipient refused but DATA accepted; end it empty.
            co_await c.send(".\r\n", t.data_done);
            co_await c.read(t.data_done);
        }
        if (accepted > 0) {
            fail_with(a, *data, "DATA");
            for (auto& r : a.recipients) r = {};
        }
        state_->reusable = data->code != 421;
        co_return a;
    }
    const std::string stuffed = dot_stuff(content, o.line_length_limit);
    if (!co_await c.send(stuffed, t.data_xfer)) {
        fail_all(a, 421, "4.4.2", c.error() + " while sending message content");
        for (auto& r : a.recipients) r = {};
        co_return a;
    }
    bool clean = true;
    if (lmtp) {
        // RFC 2033 4.2: one reply per accepted recipient, in order.
        for (auto& r : a.recipients) {
            if (r.code < 200 || r.code >= 300) continue;
            auto rr = co_await c.read(t.data_done);
            if (!rr) {
                r = {};
                fail_all(a, 421, "4.4.2", c.error() + " while waiting for the end-of-data reply");
                clean = false;
                continue;
            }
            r = {rr->code, rr->enhanced, joined(*rr)};
        }
    } else {
        auto done = co_await c.read(t.data_done);
        if (!done) {
            fail_all(a, 421, "4.4.2", c.error() + " while waiting for the end-of-data reply");
            for (auto& r : a.recipients) r = {};
            co_return a;
        }
        for (auto& r : a.recipients)
            if (r.code >= 200 && r.code < 300) r = {done->code, done->enhanced, joined(*done)};
        clean = done->code != 421;
    }
    state_->reusable = clean;
    co_return a;
}

asio::awaitable<bool> Session::reset() {
    const Timeouts& t = state_->options.timeouts;
    if (!state_->reusable) co_return false;
    auto r = co_await exchange(state_->c, "RSET\r\n", t.rset);
    state_->reusable = r && r->code == 250;
    co_return state_->reusable;
}

asio::awaitable<void> Session::quit() {
    const Timeouts& t = state_->options.timeouts;
    state_->reusable = false;
    if (co_await state_->c.send("QUIT\r\n", t.quit)) co_await state_->c.read(t.quit);
    state_->c.close();
}

bool Session::reusable() const { return state_ && state_->reusable; }

asio::awaitable<Attempt> deliver(asio::any_io_executor ex, const Nexthop& nexthop, const SessionOptions& o,
                                 const std::string& sender, const std::vector<std::string>& recipients,
                                 const std::string& content, const DsnParameters* dsn) {
    Attempt opened;
    opened.recipients.resize(recipients.size());
    auto session = co_await Session::open(ex, nexthop, o, opened);
    if (!session) co_return opened;
    Attempt a = co_await session->transfer(sender, recipients, content, dsn);
    a.tls_log = opened.tls_log;
    co_await session->quit();
    co_return a;
}

}  // namespace mta::delivery
