// A real mta-core for tests: main.cf and master.cf in a temp dir, its queue
// and maillog there too, listening on a free loopback port, stopped by PID;
// with a real delivery-maildir (virtual mailboxes in the same dir) as its
// LMTP nexthop for example.org.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "../delivery/helpers.h"
#include "support/daemon_process.h"
#include "support/process.h"

namespace mtatest {

struct Options {
    // Lines appended to main.cf (they win over the defaults written first).
    std::string main_cf;
    // Lines appended to master.cf; the smtpd listener is always there.
    std::string master_cf;
    bool with_delivery = true;
    std::vector<std::string> args;  // more command-line flags (--metrics ADDR, ...)
    std::vector<std::string> wrapper;  // run under this (e.g. unshare -m ... for a private resolv.conf)
    // delivery-maildir's mode: "virtual" (example.org's mailboxes in the
    // test dir) or "system" (system users' ~/Maildir).
    std::string delivery_mode = "virtual";
    bool default_main_cf = true;  // write the test defaults before main_cf
    std::vector<std::string> mailboxes{"alice@example.org", "bob@example.org", "postmaster@example.org"};
};

class MtaInstance {
public:
    explicit MtaInstance(Options options = {});
    ~MtaInstance();

    void start();
    int stop();
    // Wait for the process to exit by itself (-1 on timeout), and what the
    // next start() runs it under.
    int wait_exit(std::chrono::milliseconds timeout);
    void set_wrapper(std::vector<std::string> wrapper) { options_.wrapper = std::move(wrapper); }
    void kill9();
    void signal(int sig);
    pid_t pid() const { return process_.pid(); }
    int port() const { return port_; }
    const testsupport::TempDir& dir() const { return dir_; }
    std::string queue_dir() const { return dir_.file("queue"); }
    std::string maillog() const;
    std::string log() const;
    // Poll the maillog for text (lines are written as events happen).
    bool maillog_has(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
    // Files in a mailbox's new/ (example.org user), polled until count arrive.
    std::vector<std::string> wait_for_mail(const std::string& user, std::size_t count,
                                           std::chrono::milliseconds timeout = std::chrono::seconds(15)) const;
    std::vector<std::string> mail_files(const std::string& user) const;
    // The program with this configuration and args (--check-config, queue list...).
    testsupport::RunResult command(const std::vector<std::string>& args) const;
    std::string main_cf_path() const { return dir_.file("main.cf"); }
    void rewrite_main_cf(const std::string& extra);

private:
    void write_config();
    Options options_;
    testsupport::TempDir dir_;
    int port_ = 0;
    std::unique_ptr<testsupport::DaemonProcess> delivery_;
    testsupport::Process process_;
};

// The program's path.
std::string mta_core_binary();

// One command line and its reply (the first line of it).
std::string cmd(dtest::LineClient& c, const std::string& line);

// A self-signed P-256 certificate for mx.test.example, dir/cert.pem and
// dir/key.pem (openssl from Debian); a failure fails the calling test.
void make_certificate(const testsupport::TempDir& dir);

// A minimal SMTP server (Python) on 127.0.0.1:port that keeps the raw bytes
// of one DATA exchange, dot-stuffing and all, in dir/captured, then exits;
// every command line it got is in dir/captured.commands. With dsn it offers
// DSN in its EHLO reply.
testsupport::Process capture_server(const testsupport::TempDir& dir, int port, bool dsn = false);
// Poll until a file exists and is not empty (bounded).
bool wait_for_file(const std::string& path, std::chrono::milliseconds timeout = std::chrono::seconds(15));

// A python3 -c script's output (Debian's /usr/bin/python3).
testsupport::RunResult python(const std::string& script);

}  // namespace mtatest
