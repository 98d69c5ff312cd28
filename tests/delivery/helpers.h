// Helpers for the delivery-maildir tests: a blocking LMTP/SMTP/IMAP line
// client, a throwaway Unix user, a small tmpfs, and Maildir inspection.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "support/process.h"

namespace dtest {

// A blocking TCP or unix-socket client with a read deadline.
class LineClient {
public:
    LineClient(const std::string& host, int port);
    // From a chosen local address (another loopback address, say).
    LineClient(const std::string& local_address, int local_port, const std::string& host, int port);
    explicit LineClient(const std::string& unix_path);
    ~LineClient();
    LineClient(const LineClient&) = delete;
    LineClient& operator=(const LineClient&) = delete;

    void send(const std::string& text);
    // One line without its CRLF; throws on timeout or EOF.
    std::string line(std::chrono::milliseconds timeout = std::chrono::seconds(20));
    // One complete SMTP reply (continuation lines included); returns the last line.
    std::string reply(std::chrono::milliseconds timeout = std::chrono::seconds(20));
    // Exactly n bytes.
    std::string bytes(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(20));
    // True once the peer has closed (reads until EOF or timeout).
    bool closed(std::chrono::milliseconds timeout = std::chrono::seconds(5));

private:
    bool fill(std::chrono::steady_clock::time_point deadline);
    int fd_ = -1;
    std::string buf_;
};

// A message body with CRLF line endings, as an LMTP client sends it after
// DATA, dot-stuffed and terminated.
std::string data_block(const std::string& message_crlf);
// LF -> CRLF.
std::string crlf(const std::string& lf_text);

// A Unix user created for the test (useradd) with its home in dir, removed
// (userdel) on destruction.
class SystemUser {
public:
    explicit SystemUser(const std::string& home_parent);
    ~SystemUser();
    const std::string& name() const { return name_; }
    const std::string& home() const { return home_; }
    uid_t uid() const { return uid_; }
    gid_t gid() const { return gid_; }

private:
    std::string name_;
    std::string home_;
    uid_t uid_ = 0;
    gid_t gid_ = 0;
};

// A tmpfs of `bytes` mounted on path (created), unmounted on destruction.
class SmallFs {
public:
    SmallFs(const std::string& path, std::size_t bytes);
    ~SmallFs();

private:
    std::string path_;
};

// bindfs (FUSE) mirroring source on mountpoint (created): a real file
// system without O_TMPFILE. Unmounted on destruction.
class BindFs {
public:
    BindFs(const std::string& source, const std::string& mountpoint);
    ~BindFs();

private:
    std::string mountpoint_;
    testsupport::Process bindfs_;
};

// Regular files in dir (names only, sorted); empty if dir is missing.
std::vector<std::string> files_in(const std::string& dir);
// Poll until pred() or timeout; returns pred()'s last value.
template <class F>
bool eventually(F pred, std::chrono::milliseconds timeout = std::chrono::seconds(10));
void pause_briefly();  // polling interval

template <class F>
bool eventually(F pred, std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > end) return pred();
        pause_briefly();
    }
    return true;
}

// A free TCP port on 127.0.0.1 and the delivery-maildir daemon on it.
class Daemon {
public:
    Daemon(const testsupport::TempDir& dir, const std::string& config_json,
           const std::string& name = "dm");
    ~Daemon();
    int port() const { return port_; }
    void signal(int sig) { process_.signal(sig); }
    int stop() { return process_.stop(); }
    void kill9() { process_.kill9(); }
    std::string log() const;
    std::string config_path() const { return config_; }

private:
    std::string config_;
    std::string log_;
    int port_;
    testsupport::Process process_;
};

// Run `delivery-maildir deliver ARGS` with message on stdin (environment
// entries VAR=VALUE first, through env(1)).
testsupport::RunResult deliver(const std::vector<std::string>& args, const std::string& message,
                               const std::vector<std::string>& env = {});

}  // namespace dtest
