#include "support/milter_conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace testsupport {

using namespace std::chrono;
namespace m = proto::milter;

MilterConn::MilterConn(const std::string& host, int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(port));
    inet_pton(AF_INET, host.c_str(), &sa.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
        throw std::runtime_error("connect " + host + ":" + std::to_string(port) + ": " +
                                 std::strerror(errno));
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

MilterConn::MilterConn(const std::string& unix_path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, unix_path.c_str(), sizeof sa.sun_path - 1);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
        throw std::runtime_error("connect " + unix_path + ": " + std::strerror(errno));
}

MilterConn::~MilterConn() {
    if (fd_ >= 0) ::close(fd_);
}

m::OptionNegotiation MilterConn::postfix_offer() {
    return m::OptionNegotiation{6, m::action::all_v6, 0x001fffff, {}};
}

void MilterConn::send_raw(const std::string& bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
        ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
        if (n <= 0) throw std::runtime_error("send failed");
        off += static_cast<std::size_t>(n);
    }
}

void MilterConn::send(const m::Command& command) { send_raw(m::encode(command)); }

std::optional<m::Reply> MilterConn::read(milliseconds timeout) {
    auto end = steady_clock::now() + timeout;
    m::PacketReader reader(m::kMaxData1M);
    while (true) {
        if (!buffer_.empty()) {
            auto r = reader.feed(buffer_);
            buffer_.erase(0, r.consumed);
            if (r.status == m::ReadStatus::error) throw std::runtime_error("bad reply: " + reader.error());
            if (r.status == m::ReadStatus::done) {
                auto d = m::decode_reply(reader.packet());
                if (!d.value) throw std::runtime_error("bad reply: " + d.error);
                return d.value;
            }
        }
        auto left = duration_cast<milliseconds>(end - steady_clock::now()).count();
        if (left <= 0) return std::nullopt;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
        char buf[8192];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) return std::nullopt;
        buffer_.append(buf, static_cast<std::size_t>(n));
    }
}

bool MilterConn::closed_by_peer(milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
}

std::optional<m::OptionNegotiation> MilterConn::negotiate(const m::OptionNegotiation& offer) {
    send(m::Command(offer));
    auto r = read();
    if (!r || !std::holds_alternative<m::OptionNegotiation>(*r)) return std::nullopt;
    auto check = m::check_negotiation(offer, std::get<m::OptionNegotiation>(*r));
    if (!check.error.empty()) throw std::runtime_error("negotiation: " + check.error);
    steps_ = check.steps_in_force;
    return std::get<m::OptionNegotiation>(*r);
}

bool MilterConn::Answer::is_continue() const {
    return final && (std::holds_alternative<m::Continue>(*final) || std::holds_alternative<m::Accept>(*final));
}

std::string MilterConn::Answer::text() const {
    if (final)
        if (auto* c = std::get_if<m::ReplyCode>(&*final)) return c->text;
    return "";
}

MilterConn::Answer MilterConn::ask(const m::Command& command, milliseconds timeout) {
    send(command);
    Answer a;
    auto end = steady_clock::now() + timeout;
    while (true) {
        auto left = duration_cast<milliseconds>(end - steady_clock::now());
        auto r = read(std::max(left, milliseconds(0)));
        if (!r) return a;
        if (std::holds_alternative<m::Progress>(*r)) continue;
        bool final = std::visit(
            [](const auto& x) {
                using T = std::decay_t<decltype(x)>;
                return std::is_same_v<T, m::Continue> || std::is_same_v<T, m::Accept> ||
                       std::is_same_v<T, m::Reject> || std::is_same_v<T, m::Tempfail> ||
                       std::is_same_v<T, m::ReplyCode> || std::is_same_v<T, m::Discard> ||
                       std::is_same_v<T, m::Skip>;
            },
            *r);
        if (final) {
            a.final = std::move(r);
            return a;
        }
        a.edits.push_back(std::move(*r));
    }
}

void MilterConn::send_maybe_ask(const m::Command& command) {
    char code = m::code_of(command);
    if (!m::is_sent(code, steps_)) return;
    if (!m::expects_reply(code, steps_)) {
        send(command);
        return;
    }
    auto a = ask(command);
    if (!a.is_continue()) throw std::runtime_error(std::string(m::command_name(code)) + " refused");
}

void MilterConn::open_session(const std::string& client_address, const std::string& client_name,
                              const std::string& helo) {
    if (!negotiate()) throw std::runtime_error("negotiation failed");
    send(m::Command(m::Macros{'C', {{"j", "mx.example.org"}, {"{daemon_name}", "mx"}, {"_", client_name}}}));
    auto c = ask(m::Command(m::Connect{client_name, '4', 40000, client_address}));
    if (!c.is_continue()) throw std::runtime_error("connect refused: " + c.text());
    auto h = ask(m::Command(m::Helo{helo}));
    if (!h.is_continue()) throw std::runtime_error("helo refused: " + h.text());
}

MilterConn::Transaction MilterConn::transaction(const std::string& sender,
                                                const std::vector<std::string>& recipients,
                                                const std::string& queue_id) {
    Transaction t;
    send(m::Command(m::Macros{'M', {{"{mail_addr}", sender}}}));
    t.mail = ask(m::Command(m::Mail{"<" + sender + ">", {"SIZE=100"}}));
    if (!t.mail.is_continue()) {
        send(m::Command(m::Abort{}));
        return t;
    }
    bool any = false;
    for (const auto& r : recipients) {
        send(m::Command(m::Macros{'R', {{"{rcpt_addr}", r}}}));
        t.rcpts.push_back(ask(m::Command(m::Rcpt{"<" + r + ">", {}})));
        any = any || t.rcpts.back().is_continue();
    }
    if (!any) {
        send(m::Command(m::Abort{}));
        return t;
    }
    // As Postfix: skip what the filter declined, wait only for the answers
    // it said it would give.
    send_maybe_ask(m::Command(m::Data{}));
    send_maybe_ask(m::Command(m::Header{"Subject", "test"}));
    send_maybe_ask(m::Command(m::Header{"From", "<" + sender + ">"}));
    send_maybe_ask(m::Command(m::EndOfHeaders{}));
    send_maybe_ask(m::Command(m::BodyChunk{"hello\r\n"}));
    send(m::Command(m::Macros{'E', {{"i", queue_id}}}));
    t.eom = ask(m::Command(m::EndOfMessage{}));
    return t;
}

}  // namespace testsupport
