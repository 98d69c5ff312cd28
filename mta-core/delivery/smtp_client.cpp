// SMTP/LMTP delivery client; see smtp_client.h.
#include "delivery/smtp_client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <system_error>

#include "net/endpoint_asio.h"
#include "smtp/reply.h"

namespace mta::delivery {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

std::string dot_stuff(std::string_view content) {
    std::string out;
    out.reserve(content.size() + content.size() / 64 + 8);
    bool line_start = true;
    for (std::size_t i = 0; i < content.size(); ++i) {
        char c = content[i];
        if (line_start && c == '.') out.push_back('.');
        out.push_back(c);
        line_start = c == '\n';
    }
    if (!out.empty() && !out.ends_with("\r\n")) out += "\r\n";
    out += ".\r\n";
    return out;
}

namespace {

class Conversation {
public:
    explicit Conversation(asio::any_io_executor ex) : socket_(ex), timer_(ex) {}

    asio::awaitable<bool> connect(const proto::net::Endpoint& where, std::chrono::seconds limit) {
        boost::system::error_code ec;
        proto::net::StreamProtocol::endpoint target;
        try {
            target = proto::net::resolve_for_connect(where);
        } catch (const std::system_error& e) {
            error_ = e.what();
            co_return false;
        }
        timer_.expires_after(limit);
        auto r = co_await (socket_.async_connect(target, use_nothrow) || timer_.async_wait(use_nothrow));
        if (r.index() == 1) {
            error_ = "connect timed out";
            co_return false;
        }
        std::tie(ec) = std::get<0>(r);
        if (ec) {
            error_ = "connect: " + ec.message();
            co_return false;
        }
        co_return true;
    }

    asio::awaitable<bool> send(std::string_view data, std::chrono::seconds limit) {
        timer_.expires_after(limit);
        auto r = co_await (asio::async_write(socket_, asio::buffer(data), use_nothrow) ||
                           timer_.async_wait(use_nothrow));
        if (r.index() == 1) {
            error_ = "write timed out";
            co_return false;
        }
        auto [ec, n] = std::get<0>(r);
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
            auto r = co_await (socket_.async_read_some(asio::buffer(tmp), use_nothrow) ||
                               timer_.async_wait(use_nothrow));
            if (r.index() == 1) {
                error_ = "timeout reading reply";
                co_return std::nullopt;
            }
            auto [ec, n] = std::get<0>(r);
            if (ec || n == 0) {
                error_ = "lost connection";
                co_return std::nullopt;
            }
            buf_.append(tmp, n);
        }
    }

    const std::string& error() const { return error_; }
    void close() {
        boost::system::error_code ignored;
        socket_.close(ignored);
    }

private:
    proto::net::StreamProtocol::socket socket_;
    asio::steady_timer timer_;
    std::string buf_;
    std::string error_;
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

}  // namespace

asio::awaitable<Attempt> deliver(asio::any_io_executor ex, const Nexthop& nexthop,
                                 const std::string& helo_name, const std::string& sender,
                                 const std::vector<std::string>& recipients,
                                 const std::string& content, const Timeouts& t) {
    Attempt a;
    a.recipients.resize(recipients.size());
    Conversation c(ex);
    if (!co_await c.connect(nexthop.endpoint, t.connect)) {
        fail_all(a, 421, "4.4.1", c.error());
        co_return a;
    }
    a.connected = true;
    auto greeting = co_await c.read(t.helo);
    if (!greeting) {
        fail_all(a, 421, "4.4.2", c.error() + " while receiving the initial server greeting");
        co_return a;
    }
    if (greeting->code != 220) {
        fail_with(a, *greeting, "host greeted us");
        if (a.code < 400) a.code = 421;
        co_return a;
    }
    std::string hello = (nexthop.lmtp ? "LHLO " : "EHLO ") + helo_name + "\r\n";
    if (!co_await c.send(hello, t.helo)) {
        fail_all(a, 421, "4.4.2", c.error());
        co_return a;
    }
    auto ehlo = co_await c.read(t.helo);
    if (!ehlo || ehlo->code != 250) {
        if (ehlo) fail_with(a, *ehlo, nexthop.lmtp ? "LHLO" : "EHLO");
        else fail_all(a, 421, "4.4.2", c.error());
        co_return a;
    }
    bool pipelining = false;
    for (const auto& l : ehlo->lines)
        if (l == "PIPELINING" || l.starts_with("PIPELINING ")) pipelining = true;
    // RFC 2920: MAIL, all RCPTs and DATA in one write when the server allows.
    std::string envelope = "MAIL FROM:<" + sender + ">\r\n";
    for (const auto& r : recipients) envelope += "RCPT TO:<" + r + ">\r\n";
    envelope += "DATA\r\n";
    std::vector<std::string> commands;
    if (!pipelining) {
        commands.push_back("MAIL FROM:<" + sender + ">\r\n");
        for (const auto& r : recipients) commands.push_back("RCPT TO:<" + r + ">\r\n");
        commands.push_back("DATA\r\n");
    } else if (!co_await c.send(envelope, t.mail)) {
        fail_all(a, 421, "4.4.2", c.error());
        co_return a;
    }
    // Without PIPELINING each command is sent when its turn comes.
    auto step = [&](std::size_t i, std::chrono::seconds limit) {
        return exchange(c, pipelining ? std::string_view() : std::string_view(commands[i]), limit);
    };
    auto mail = co_await step(0, t.mail);
    if (!mail) {
        fail_all(a, 421, "4.4.2", c.error());
        co_return a;
    }
    std::size_t accepted = 0;
    for (std::size_t i = 0; i < recipients.size(); ++i) {
        auto rr = co_await step(i + 1, t.rcpt);
        if (!rr) {
            fail_all(a, 421, "4.4.2", c.error());
            co_return a;
        }
        if (mail->code != 250) continue;
        a.recipients[i] = {rr->code, rr->enhanced, joined(*rr)};
        if (rr->positive()) ++accepted;
    }
    if (mail->code != 250) {
        fail_with(a, *mail, "MAIL FROM");
        for (auto& r : a.recipients) r = {};
        co_return a;
    }
    auto data = co_await step(recipients.size() + 1, t.data_init);
    if (!data) {
        fail_all(a, 421, "4.4.2", c.error());
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
        co_await c.send("QUIT\r\n", t.quit);
        co_return a;
    }
    const std::string stuffed = dot_stuff(content);
    if (!co_await c.send(stuffed, t.data_xfer)) {
        fail_all(a, 421, "4.4.2", c.error() + " while sending message content");
        for (auto& r : a.recipients) r = {};
        co_return a;
    }
    if (nexthop.lmtp) {
        // RFC 2033 4.2: one reply per accepted recipient, in order.
        for (auto& r : a.recipients) {
            if (r.code < 200 || r.code >= 300) continue;
            auto rr = co_await c.read(t.data_done);
            if (!rr) {
                r = {};
                fail_all(a, 421, "4.4.2", c.error() + " while waiting for the end-of-data reply");
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
    }
    co_await c.send("QUIT\r\n", t.quit);
    c.close();
    co_return a;
}

}  // namespace mta::delivery
