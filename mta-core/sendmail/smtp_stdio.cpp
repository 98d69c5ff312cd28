// sendmail -bs; see smtp_stdio.h.
#include "sendmail/smtp_stdio.h"

#include <unistd.h>

#include <cerrno>
#include <string>
#include <string_view>
#include <vector>

#include "queue/maildrop_file.h"
#include "sendmail/postdrop_client.h"
#include "sendmail/sysexits.h"
#include "smtp/command.h"
#include "smtp/data.h"

namespace mta::sendmail {

namespace {

constexpr std::size_t kMaxRecipients = 1000;
constexpr int kHardErrorLimit = 100;

class Stdio {
public:
    // More input into in_; false at the end of input.
    bool fill() {
        char buf[8192];
        while (true) {
            ssize_t n = ::read(0, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            in_.append(buf, static_cast<std::size_t>(n));
            return true;
        }
    }
    void reply(const std::string& text) {
        std::string line = text + "\r\n";
        for (std::size_t done = 0; done < line.size();) {
            ssize_t n = ::write(1, line.data() + done, line.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;
            done += static_cast<std::size_t>(n);
        }
    }
    std::string in_;
};

}  // namespace

int smtp_on_stdio(const LocalConfig& cfg, uid_t uid) {
    std::string login = login_name(uid);
    std::string error;
    if (!submit_allowed(cfg, login, &error)) {
        std::string text = error.empty() ? "User " + login + "(" + std::to_string(uid) + ") is not allowed to submit mail" : error;
        std::string line = "sendmail: fatal: " + text + "\n";
        (void)!::write(2, line.data(), line.size());
        return exit_code::no_perm;
    }
    char host[256] = "localhost";
    ::gethostname(host, sizeof host - 1);
    Stdio io;
    io.reply(std::string("220 ") + host + " ESMTP");
    proto::smtp::CommandLimits limits;
    limits.lenient = true;  // a local client: Postfix's strict_rfc821_envelopes = no
    limits.utf8 = true;
    proto::smtp::CommandReader commands(limits);
    bool have_sender = false;
    std::string sender;
    std::vector<std::string> recipients;
    int errors = 0;
    auto reset = [&] {
        have_sender = false;
        sender.clear();
        recipients.clear();
    };
    while (errors < kHardErrorLimit) {
        auto r = commands.feed(io.in_);
        io.in_.erase(0, r.consumed);
        if (r.status == proto::smtp::CommandReader::Status::need_more) {
            if (!io.fill()) return exit_code::ok;
            continue;
        }
        auto parsed = commands.take();
        if (!parsed.command) {
            ++errors;
            io.reply(std::to_string(parsed.error.code) + " " + parsed.error.enhanced + " " + parsed.error.text);
            continue;
        }
        const auto& cmd = *parsed.command;
        using proto::smtp::Verb;
        switch (cmd.verb) {
            case Verb::helo:
                reset();
                io.reply(std::string("250 ") + host);
                break;
            case Verb::ehlo:
                reset();
                io.reply(std::string("250-") + host);
                io.reply("250-PIPELINING");
                io.reply("250-SIZE " + std::to_string(cfg.message_size_limit));
                io.reply("250 8BITMIME");
                break;
            case Verb::mail: {
                if (have_sender) {
                    ++errors;
                    io.reply("503 5.5.1 Error: nested MAIL command");
                    break;
                }
                const auto* size = cmd.param("SIZE");
                if (size && cfg.message_size_limit && size->value.size() < 20 &&
                    std::stoull("0" + size->value) > cfg.message_size_limit) {
                    io.reply("552 5.3.4 Message size exceeds fixed limit");
                    break;
                }
                have_sender = true;
                sender = cmd.path.empty() ? std::string() : cmd.path.to_string();
                io.reply("250 2.1.0 Ok");
                break;
            }
            case Verb::rcpt:
                if (!have_sender) {
                    ++errors;
                    io.reply("503 5.5.1 Error: need MAIL command");
                } else if (recipients.size() >= kMaxRecipients) {
                    io.reply("452 4.5.3 Error: too many recipients");
                } else {
                    recipients.push_back(cmd.path.to_string());
                    io.reply("250 2.1.5 Ok");
                }
                break;
            case Verb::data: {
                if (recipients.empty()) {
                    ++errors;
                    io.reply(have_sender ? "554 5.5.1 Error: no valid recipients" : "503 5.5.1 Error: need RCPT command");
                    break;
                }
                io.reply("354 End data with <CR><LF>.<CR><LF>");
                proto::smtp::DataReader data(cfg.message_size_limit, proto::smtp::LineEnd::crlf);
                bool done = false;
                while (!done) {
                    auto d = data.feed(io.in_);
                    io.in_.erase(0, d.consumed);
                    done = d.done;
                    if (!done && !io.fill()) return exit_code::ok;
                }
                if (data.too_big()) {
                    io.reply("552 5.3.4 Error: message file too big");
                    reset();
                    break;
                }
                queue::MaildropMessage m;
                m.sender = sender;
                m.recipients = recipients;
                m.content = data.take();
                reset();
                int rc = run_postdrop(cfg, queue::serialize_maildrop(m));
                if (rc == exit_code::ok) io.reply("250 2.0.0 Ok: queued");
                else if (rc == exit_code::data_error) io.reply("554 5.6.0 Error: message refused by mta-core-postdrop");
                else if (rc == exit_code::no_perm) io.reply("554 5.7.1 Error: not allowed to submit mail");
                else io.reply("451 4.3.0 Error: queue file write error");
                break;
            }
            case Verb::rset:
                reset();
                io.reply("250 2.0.0 Ok");
                break;
            case Verb::noop: io.reply("250 2.0.0 Ok"); break;
            case Verb::quit:
                io.reply("221 2.0.0 Bye");
                return exit_code::ok;
            case Verb::vrfy: io.reply("502 5.5.1 VRFY command is disabled"); break;
            default:
                ++errors;
                io.reply("502 5.5.2 Error: command not recognized");
        }
    }
    io.reply("421 4.7.0 Error: too many errors");
    return exit_code::ok;
}

}  // namespace mta::sendmail
