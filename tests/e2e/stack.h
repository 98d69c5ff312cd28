// End-to-end harness: a real Postfix configured from deploy/postfix/, real
// Redis, Dovecot (SASL only), a DNS server for SPF, the three policy daemons
// with configs derived from deploy/config/, and delivery-maildir behind
// Postfix's LMTP client. Everything runs in a private network and mount
// namespace of the test process, so the SPF daemon's resolver (which reads
// /etc/resolv.conf and always uses port 53) reaches the test's DNS server,
// and parallel tests cannot see each other's ports. Every process is stopped
// by PID (Postfix with `postfix -c DIR stop`) when the Stack is destroyed.
//
// Needs root (namespaces, Postfix, port 53), and the Debian packages postfix,
// dovecot-core, redis-server, swaks, openssl, python3-dnslib, iproute2.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "support/postfix_instance.h"
#include "support/process.h"
#include "support/redis_server.h"

namespace e2e {

// Move this process into new network and mount namespaces with loopback up
// and /etc/resolv.conf pointing at 127.0.0.1. Call once, before any thread
// or child process exists. Throws on failure (the test must fail, not skip).
void enter_private_network();

// The address of an SMTP client outside mynetworks (added to loopback in
// the namespace; pass.example's SPF record authorises it). 127.0.0.2 is the
// trusted client (mynetworks).
inline constexpr const char* kOutsideClient = "192.0.2.10";

// What an SMTP client (swaks) saw.
struct SmtpResult {
    int exit_code = -1;
    std::string transcript;
    // The last line of the server's reply to the first command that starts
    // with `command` (e.g. "RCPT TO:<bob@example.org>"), "" if none.
    std::string reply_to(const std::string& command) const;
    // The replies to every command starting with `command`, in order.
    std::vector<std::string> replies_to(const std::string& command) const;
};

struct Mail {
    int port = 0;
    std::string client_ip = kOutsideClient;
    std::string helo = "mail.pass.example";
    std::string from;
    std::vector<std::string> to;
    std::string subject = "e2e test";
    std::string body = "Hello from the end-to-end test.";
    bool tls = false;  // STARTTLS (implied by user)
    // Submission: STARTTLS, then AUTH PLAIN with these.
    std::string user;
    std::string password;
};

SmtpResult send_mail(const Mail& mail);

enum class Daemon { spf, ratelimit, greylist, delivery };

class Stack {
public:
    struct Options {
        int greylist_delay_seconds = 2;
        int rate_limit_recipients = 3;  // per SASL user and hour
    };
    Stack() : Stack(Options{}) {}
    explicit Stack(Options options);
    ~Stack();
    Stack(const Stack&) = delete;
    Stack& operator=(const Stack&) = delete;

    int smtp_port() const { return smtp_port_; }
    int submission_port() const { return submission_port_; }
    int port_of(Daemon d) const;

    void stop(Daemon d);
    void start(Daemon d);
    // Rewrite a daemon's config with these keys changed, send SIGHUP and
    // wait until it logs the reload.
    void reload(Daemon d, const std::string& key, const std::string& value);

    // Content of the first message in <vmail>/example.org/<user>/new that
    // contains marker, waiting up to timeout; "" if none arrived.
    std::string wait_for_delivery(const std::string& user, const std::string& marker,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(20));
    // Number of messages in <user>'s new/ now.
    std::size_t delivered_count(const std::string& user) const;
    std::string maillog() const;
    std::string log_of(Daemon d) const;
    // Postfix's maillog, the daemons' logs and Dovecot's, for failure messages.
    std::string diagnostics() const;

private:
    void write_daemon_configs();
    void start_dns();
    void start_dovecot();
    void start_postfix();
    void stop_postfix();
    int new_port();

    Options options_;
    testsupport::TempDir dir_;
    std::unique_ptr<testsupport::RedisServer> redis_;
    testsupport::Process dns_;
    testsupport::Process dovecot_;
    std::map<Daemon, testsupport::Process> daemons_;
    std::map<Daemon, int> ports_;
    std::set<int> used_ports_;
    int smtp_port_ = 0;
    int submission_port_ = 0;
    std::unique_ptr<testsupport::PostfixInstance> postfix_;
};

}  // namespace e2e
