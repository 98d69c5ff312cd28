// The delivery command; see lda.h.
#include "lda.h"

#include <sysexits.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <vector>

#include "daemon/config.h"
#include "maildir.h"
#include "recipient.h"
#include "settings.h"

namespace maildir {

namespace {

bool istarts_with(std::string_view text, std::string_view prefix) {
    if (text.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        char a = text[i], b = prefix[i];
        if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
        if (a != b) return false;
    }
    return true;
}

// One header field at the start of text, with its continuation lines.
std::size_t header_length(std::string_view text) {
    std::size_t pos = 0;
    while (true) {
        auto nl = text.find('\n', pos);
        if (nl == std::string_view::npos) return text.size();
        pos = nl + 1;
        if (pos >= text.size() || (text[pos] != ' ' && text[pos] != '\t')) return pos;
    }
}

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) s.remove_suffix(1);
    return std::string(s);
}

// Text from argv or the environment goes into a header: no control characters.
std::string header_safe(std::string_view text) {
    std::string out;
    for (unsigned char c : text) out.push_back(c < 32 || c == 127 ? '?' : static_cast<char>(c));
    return out;
}

int usage(const char* why) {
    std::fprintf(stderr,
                 "delivery-maildir: %s\nusage: delivery-maildir deliver [--config FILE] "
                 "[-f SENDER] [-a RECIPIENT]... [-d USER] [--] [RECIPIENT]... < message\n",
                 why);
    return EX_USAGE;
}

}  // namespace

std::string prepare_lda_message(std::string& m, const Envelope& envelope) {
    // CRLF -> LF (Maildir files use LF; Postfix hands us LF already).
    if (m.find('\r') != std::string::npos) {
        std::string out;
        out.reserve(m.size());
        for (std::size_t i = 0; i < m.size(); ++i)
            if (!(m[i] == '\r' && i + 1 < m.size() && m[i + 1] == '\n')) out.push_back(m[i]);
        m.swap(out);
    }
    std::size_t start = 0;
    if (m.starts_with("From ")) {
        auto nl = m.find('\n');
        start = nl == std::string::npos ? m.size() : nl + 1;
    }
    // Walk the trace headers at the very top: ours replace Return-Path; an
    // identical Delivered-To (Postfix local(8) adds one) is not repeated.
    bool have_delivered_to = false;
    std::string kept;
    std::size_t pos = start;
    while (pos < m.size()) {
        std::string_view rest(m.data() + pos, m.size() - pos);
        bool rp = istarts_with(rest, "Return-Path:");
        bool dt = istarts_with(rest, "Delivered-To:");
        bool ot = istarts_with(rest, "X-Original-To:");
        if (!rp && !dt && !ot) break;
        std::size_t len = header_length(rest);
        if (dt && trim(rest.substr(13, len - 13)) == envelope.recipient) have_delivered_to = true;
        if (!rp) kept.append(rest.substr(0, len));
        pos += len;
    }
    m = kept + m.substr(pos);
    std::string prefix = "Return-Path: <" + envelope.sender + ">\n";
    if (!have_delivered_to) prefix += "Delivered-To: " + envelope.recipient + "\n";
    return prefix;
}

int lda_main(int argc, char** argv) {
    std::string config_path;
    std::string sender_arg;
    bool have_sender = false;
    std::vector<std::string> recipients;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        auto value = [&](std::string& out) {
            if (i + 1 >= argc) return false;
            out = argv[++i];
            return true;
        };
        std::string v;
        if (a == "--config" || a == "-c") {
            if (!value(config_path)) return usage("--config needs a file");
        } else if (a.starts_with("--config=")) {
            config_path = std::string(a.substr(9));
        } else if (a == "-f") {
            if (!value(sender_arg)) return usage("-f needs a sender");
            have_sender = true;
        } else if (a == "-a" || a == "-d") {
            if (!value(v)) return usage("-a/-d need an address");
            recipients.push_back(v);
        } else if (a == "--") {
            // pipe(8) style: the rest are recipients, whatever they look like.
            for (++i; i < argc; ++i) recipients.emplace_back(argv[i]);
        } else if (!a.empty() && a.front() != '-') {
            recipients.emplace_back(a);
        } else {
            return usage(("unknown argument " + std::string(a)).c_str());
        }
    }
    if (!have_sender) {
        const char* env = std::getenv("SENDER");
        sender_arg = env ? env : "";
    }
    if (recipients.empty()) {
        const char* env = std::getenv("RECIPIENT");
        if (!env || !*env) return usage("no recipient (-a, -d or $RECIPIENT)");
        recipients.emplace_back(env);
    }

    std::shared_ptr<const State> state;
    try {
        std::unique_ptr<nlohmann::json> doc;
        if (!config_path.empty()) doc = proto::config::load_file(config_path);
        nlohmann::json empty = nlohmann::json::object();
        proto::config::Reader reader(doc ? *doc : empty);
        for (const auto& key : daemon_keys()) reader.raw(key);  // the daemon's, shared file
        state = read_state(reader);
        reader.finish();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "delivery-maildir: 4.3.5 configuration error: %s\n", e.what());
        return EX_TEMPFAIL;
    }

    // Read the message, bounded.
    std::string message;
    const std::size_t limit = state->settings.message_size_limit;
    std::vector<char> buf(65536);
    bool too_big = false;
    while (true) {
        ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            std::fprintf(stderr, "delivery-maildir: 4.3.0 cannot read the message: %s\n",
                         std::strerror(errno));
            return EX_TEMPFAIL;
        }
        if (n == 0) break;
        if (message.size() + static_cast<std::size_t>(n) > limit + 4096) {  // slack for From_ and trace headers
            too_big = true;
            break;
        }
        message.append(buf.data(), static_cast<std::size_t>(n));
    }

    std::string sender = header_safe(sender_arg);
    if (sender == "<>" || sender == "MAILER-DAEMON") sender.clear();
    if (sender.size() > 2 && sender.front() == '<' && sender.back() == '>')
        sender = sender.substr(1, sender.size() - 2);

    int worst = EX_OK;
    auto rank = [](int code) {  // temporary beats permanent beats success
        return code == EX_TEMPFAIL ? 2 : code == EX_OK ? 0 : 1;
    };
    for (const auto& raw : recipients) {
        std::string rcpt_text = header_safe(raw);
        Outcome outcome;
        Target target;
        proto::smtp::Address address;
        std::string why;
        if (auto parsed = proto::smtp::parse_mailbox(rcpt_text, &why)) {
            address = std::move(*parsed);
        } else if (rcpt_text.find('@') == std::string::npos && state->settings.mode == Mode::system &&
                   !rcpt_text.empty()) {
            // -d USER: a bare user name; any served domain will do.
            address.local = rcpt_text;
            address.domain = state->settings.local_domains.empty() ? "localhost"
                                                                    : state->settings.local_domains.front();
        } else {
            outcome.status = Status::bad_address;
            outcome.detail = why;
        }
        if (outcome.detail.empty()) {
            if (too_big) {
                outcome.status = Status::too_big;
            } else {
                auto res = resolve(*state, address);
                if (res.status != Status::delivered) {
                    outcome.status = res.status;
                    outcome.detail = res.detail;
                } else {
                    std::string copy = message;
                    Envelope env{sender, rcpt_text};
                    std::string prefix = prepare_lda_message(copy, env);
                    // The LDA decides its trace headers itself (see prepare_lda_message).
                    outcome = deliver_prepared(*state, res.target, prefix, copy);
                }
            }
        }
        int code = to_exit_code(outcome.status);
        if (outcome.status != Status::delivered) {
            auto reply = to_reply(outcome);
            // Postfix puts this line into the bounce or defer reason: the
            // recipient, then the reply; the detail once, unless the reply
            // already ends with it.
            bool detail_shown = outcome.detail.empty() || reply.text.ends_with(outcome.detail);
            std::fprintf(stderr, "delivery-maildir: %.*s %s: %s%s%s\n",
                         static_cast<int>(reply.enhanced.size()), reply.enhanced.data(),
                         rcpt_text.c_str(), reply.text.c_str(), detail_shown ? "" : " (",
                         detail_shown ? "" : (outcome.detail + ")").c_str());
        }
        if (rank(code) > rank(worst)) worst = code;
    }
    return worst;
}

}  // namespace maildir
