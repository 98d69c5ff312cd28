#include "support/policy_conn.h"

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

PolicyConn::PolicyConn(const std::string& host, int port) {
    bool v6 = host.find(':') != std::string::npos;
    fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    int rc;
    if (v6) {
        sockaddr_in6 sa{};
        sa.sin6_family = AF_INET6;
        sa.sin6_port = htons(port);
        inet_pton(AF_INET6, host.c_str(), &sa.sin6_addr);
        rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    } else {
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(port);
        inet_pton(AF_INET, host.c_str(), &sa.sin_addr);
        rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    }
    if (rc != 0) throw std::runtime_error("connect " + host + ":" + std::to_string(port) + ": " +
                                          std::strerror(errno));
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

PolicyConn::PolicyConn(const std::string& unix_path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, unix_path.c_str(), sizeof sa.sun_path - 1);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
        throw std::runtime_error("connect " + unix_path + ": " + std::strerror(errno));
}

PolicyConn::~PolicyConn() {
    if (fd_ >= 0) ::close(fd_);
}

void PolicyConn::send_raw(const std::string& bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
        ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
        if (n <= 0) throw std::runtime_error("send failed");
        off += static_cast<std::size_t>(n);
    }
}

std::string PolicyConn::read_reply(milliseconds timeout) {
    auto end = steady_clock::now() + timeout;
    while (true) {
        auto pos = buffer_.find("\n\n");
        if (pos != std::string::npos) {
            std::string reply = buffer_.substr(0, pos + 2);
            buffer_.erase(0, pos + 2);
            return reply;
        }
        auto left = duration_cast<milliseconds>(end - steady_clock::now()).count();
        if (left <= 0) return "TIMEOUT";
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
        char buf[4096];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) return "";
        buffer_.append(buf, static_cast<std::size_t>(n));
    }
}

std::string PolicyConn::ask(const std::map<std::string, std::string>& attrs,
                            milliseconds timeout) {
    std::string req;
    for (const auto& [k, v] : attrs) req += k + "=" + v + "\n";
    req += "\n";
    send_raw(req);
    std::string reply = read_reply(timeout);
    if (reply.empty() || reply == "TIMEOUT") return reply;
    auto pos = reply.find("action=");
    if (pos == std::string::npos) return "NO-ACTION";
    auto nl = reply.find('\n', pos);
    return reply.substr(pos + 7, nl - pos - 7);
}

bool PolicyConn::closed_by_peer(milliseconds timeout) {
    auto end = steady_clock::now() + timeout;
    while (true) {
        auto left = duration_cast<milliseconds>(end - steady_clock::now()).count();
        if (left <= 0) return false;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
        char buf[4096];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) return true;
    }
}

std::map<std::string, std::string> rcpt_request(std::map<std::string, std::string> overrides) {
    std::map<std::string, std::string> r{
        {"request", "smtpd_access_policy"},
        {"protocol_state", "RCPT"},
        {"protocol_name", "ESMTP"},
        {"client_address", "192.0.2.10"},
        {"client_name", "mail.example.org"},
        {"reverse_client_name", "mail.example.org"},
        {"helo_name", "mail.example.org"},
        {"sender", "alice@example.org"},
        {"recipient", "bob@example.net"},
        {"recipient_count", "0"},
        {"queue_id", "ABC123"},
        {"instance", "1a2b.3c4d.1"},
        {"size", "1234"},
    };
    for (auto& [k, v] : overrides) r[k] = v;
    return r;
}

}  // namespace testsupport
