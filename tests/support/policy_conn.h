// A blocking policy-protocol client for tests: one persistent connection,
// write a request, read one reply up to the empty line.
#pragma once

#include <chrono>
#include <map>
#include <string>

namespace testsupport {

class PolicyConn {
public:
    PolicyConn(const std::string& host, int port);
    explicit PolicyConn(const std::string& unix_path);
    ~PolicyConn();
    PolicyConn(const PolicyConn&) = delete;
    PolicyConn& operator=(const PolicyConn&) = delete;

    void send_raw(const std::string& bytes);
    // Read one reply block; returns the whole text up to and including the
    // empty line, or "" if the server closed the connection, or "TIMEOUT".
    std::string read_reply(std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // Send attrs as a request and return the value of action= ("" on close).
    std::string ask(const std::map<std::string, std::string>& attrs,
                    std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // True when the server closed the connection (read returns EOF) within timeout.
    bool closed_by_peer(std::chrono::milliseconds timeout = std::chrono::seconds(5));
    int fd() const { return fd_; }

private:
    int fd_ = -1;
    std::string buffer_;
};

// A typical RCPT request, with overrides.
std::map<std::string, std::string> rcpt_request(std::map<std::string, std::string> overrides = {});

}  // namespace testsupport
