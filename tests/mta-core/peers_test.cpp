// mta-core with peers no one here wrote: a real Postfix relaying into it over
// TLS (relayhost, smtp_tls_security_level = encrypt), Postfix's smtp-source
// as the load, and clients that send garbage or drip bytes while a hundred
// others send mail at the same time.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <random>
#include <thread>

#include "../delivery/helpers.h"
#include "mta_instance.h"
#include "support/postfix_instance.h"

using namespace testsupport;
using dtest::LineClient;
using mtatest::MtaInstance;
using mtatest::cmd;
using mtatest::make_certificate;

namespace {

}  // namespace

TEST(MtaPeers, PostfixRelaysIntoMtaCoreOverTls) {
    TempDir certs;
    make_certificate(certs);
    mtatest::Options o;
    o.main_cf = "smtpd_tls_cert_file = " + certs.file("cert.pem") + "\nsmtpd_tls_key_file = " +
                certs.file("key.pem") + "\nsmtpd_tls_security_level = may\nsmtpd_tls_received_header = yes\n";
    MtaInstance mta(o);

    TempDir pdir;
    ::chmod(pdir.path().c_str(), 0755);  // Postfix's processes run as postfix
    PostfixInstance postfix(pdir);
    int pport = free_port();
    postfix.write_config(postfix.base_main_cf() +
                             "myhostname = relay.test.example\n"
                             "mydestination =\n"
                             "mynetworks = 127.0.0.0/8\n"
                             "relayhost = [127.0.0.1]:" + std::to_string(mta.port()) + "\n"
                             "smtp_tls_security_level = encrypt\n"
                             "smtp_tls_loglevel = 1\n",
                         PostfixInstance::master_cf(pport));
    postfix.start(pport);

    auto sent = run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(pport), "--helo", "client.test",
                     "--from", "someone@remote.example", "--to", "alice@example.org", "--header",
                     "Subject: through Postfix", "--body", "relayed by a real Postfix"});
    ASSERT_EQ(sent.exit_code, 0) << sent.output;
    auto files = mta.wait_for_mail("alice", 1, std::chrono::seconds(30));
    ASSERT_EQ(files.size(), 1u) << postfix.maillog() << mta.maillog();
    std::string m = read_file(files[0]);
    EXPECT_NE(m.find("Subject: through Postfix"), std::string::npos) << m;
    EXPECT_NE(m.find("relayed by a real Postfix"), std::string::npos) << m;
    // mta-core's Received: names Postfix's HELO and the TLS it used.
    EXPECT_NE(m.find("from relay.test.example"), std::string::npos) << m;
    EXPECT_NE(m.find("(using TLSv1."), std::string::npos) << m;
    const std::string plog = postfix.maillog();
    EXPECT_NE(plog.find("TLS connection established to 127.0.0.1[127.0.0.1]:" + std::to_string(mta.port()) +
                        ": TLSv1."),
              std::string::npos)
        << plog;
    EXPECT_NE(plog.find("status=sent (250 2.0.0 Ok: queued as "), std::string::npos) << plog;
}

TEST(MtaPeers, EverythingSmtpSourceSendsIsDelivered) {
    MtaInstance mta;
    auto r = run({"/usr/sbin/smtp-source", "-s", "10", "-m", "200", "-l", "2000", "-f", "load@remote.example",
                  "-t", "alice@example.org", "127.0.0.1:" + std::to_string(mta.port())},
                 "", std::chrono::seconds(120));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto files = mta.wait_for_mail("alice", 200, std::chrono::seconds(60));
    EXPECT_EQ(files.size(), 200u) << mta.maillog().substr(0, 4000);
}

// Garbage (random bytes with NULs, no line ends for a while, then lines of
// junk) and a client that stops mid-command do not slow down a hundred
// clients sending mail at the same time, and every one of those is queued.
TEST(MtaPeers, GarbageAndStalledClientsDoNotDelayAHundredOthers) {
    mtatest::Options o;
    o.main_cf = "smtpd_timeout = 3s\nsmtpd_junk_command_limit = 5\nsmtpd_hard_error_limit = 5\n"
                "smtpd_client_event_limit_exceptions = 127.0.0.0/8\n";  // one address for every client here
    MtaInstance mta(o);
    std::atomic<bool> stop{false};
    std::atomic<int> garbage_sessions{0};
    std::thread garbage([&] {
        std::mt19937 rng(7);
        while (!stop) {
            try {
                LineClient g("127.0.0.1", mta.port());
                g.reply();
                std::string junk(3000, '\0');
                for (auto& ch : junk) ch = static_cast<char>(rng());
                g.send(junk + "\r\n");
                for (int i = 0; i < 10 && !g.closed(std::chrono::milliseconds(0)); ++i) g.send("\x01\x02junk\r\n");
                ++garbage_sessions;
            } catch (const std::exception&) {
                ++garbage_sessions;  // cut off by the server: what it should do
            }
        }
    });
    LineClient stalled("127.0.0.1", mta.port());
    stalled.reply();
    stalled.send("MAIL FROM:<half");  // and nothing more

    std::atomic<int> queued{0};
    std::vector<std::thread> clients;
    const auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 100; ++i) {
        clients.emplace_back([&, i] {
            try {
                LineClient c("127.0.0.1", mta.port());
                c.reply();
                cmd(c, "EHLO client" + std::to_string(i) + ".test");
                cmd(c, "MAIL FROM:<s" + std::to_string(i) + "@remote.example>");
                cmd(c, "RCPT TO:<bob@example.org>");
                cmd(c, "DATA");
                c.send("Subject: " + std::to_string(i) + "\r\n\r\nbody\r\n.\r\n");
                if (c.reply().rfind("250 2.0.0 Ok: queued as ", 0) == 0) ++queued;
                cmd(c, "QUIT");
            } catch (const std::exception&) {
            }
        });
    }
    for (auto& t : clients) t.join();
    const auto took = std::chrono::steady_clock::now() - started;
    stop = true;
    garbage.join();
    EXPECT_EQ(queued.load(), 100);
    EXPECT_LT(took, std::chrono::seconds(5));
    EXPECT_GT(garbage_sessions.load(), 0);
    EXPECT_EQ(mta.wait_for_mail("bob", 100, std::chrono::seconds(30)).size(), 100u);
    // The stalled client is cut off at smtpd_timeout with Postfix's words.
    EXPECT_EQ(stalled.reply(), "421 4.4.2 mx.test.example Error: timeout exceeded");
    EXPECT_TRUE(stalled.closed(std::chrono::seconds(5)));
    EXPECT_TRUE(mta.maillog_has("timeout after CONNECT from"));
}
