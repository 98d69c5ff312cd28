// mta-core with the parts around a session: TLS (STARTTLS and implicit TLS)
// with a certificate the test makes, client limits (anvil), a real
// policyd-greylist with a real Redis through check_policy_service, and a
// master.cf spawn service run as nobody on its stdin/stdout.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <regex>

#include "../delivery/helpers.h"
#include "mta_instance.h"
#include "support/redis_server.h"

using namespace testsupport;
using dtest::LineClient;
using mtatest::MtaInstance;
using mtatest::cmd;
using mtatest::make_certificate;

namespace {

// A self-signed certificate and key in dir (openssl from Debian).
std::string tls_config(const TempDir& dir) {
    return "smtpd_tls_cert_file = " + dir.file("cert.pem") + "\nsmtpd_tls_key_file = " + dir.file("key.pem") +
           "\nsmtpd_tls_security_level = may\nsmtpd_tls_received_header = yes\n";
}

}  // namespace

TEST(MtaTls, StartTlsWithSmtplibAndTheReceivedHeaderNamesTheCipher) {
    TempDir certs;
    make_certificate(certs);
    mtatest::Options o;
    o.main_cf = tls_config(certs);
    MtaInstance mta(o);
    auto r = mtatest::python(
        "import smtplib, ssl\n"
        "ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n"
        "s = smtplib.SMTP('127.0.0.1', " + std::to_string(mta.port()) + ")\n"
        "s.ehlo('client.example')\n"
        "print('offered', s.has_extn('starttls'))\n"
        "s.starttls(context=ctx)\n"
        "print('version', s.sock.version())\n"
        "s.ehlo('client.example')\n"
        "print('after', s.has_extn('starttls'))\n"
        "s.sendmail('a@remote.example', ['alice@example.org'], 'Subject: tls\\r\\n\\r\\nover tls\\r\\n')\n"
        "s.quit()\n");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("offered True"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("version TLSv1.3"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("after False"), std::string::npos) << "STARTTLS offered again: " << r.output;
    auto files = mta.wait_for_mail("alice", 1);
    ASSERT_EQ(files.size(), 1u);
    std::string m = read_file(files[0]);
    EXPECT_NE(m.find("(using TLSv1.3 with cipher"), std::string::npos) << m;
    EXPECT_NE(m.find("with ESMTPS id"), std::string::npos) << m;
}

TEST(MtaTls, TlsBelow12IsRefusedAndOpensslSClientWorks) {
    TempDir certs;
    make_certificate(certs);
    mtatest::Options o;
    o.main_cf = tls_config(certs);
    MtaInstance mta(o);
    auto old = run({"openssl", "s_client", "-starttls", "smtp", "-connect", "127.0.0.1:" + std::to_string(mta.port()),
                    "-tls1_1"},
                   "QUIT\r\n");
    EXPECT_NE(old.exit_code, 0) << old.output;
    auto ok = run({"openssl", "s_client", "-starttls", "smtp", "-connect", "127.0.0.1:" + std::to_string(mta.port()),
                   "-tls1_2", "-crlf", "-quiet"},
                  "QUIT\n");
    EXPECT_NE(ok.output.find("221 2.0.0 Bye"), std::string::npos) << ok.output;
}

// CVE-2011-0411: what a client pipelines after STARTTLS, in the clear, must
// not be executed inside the TLS session.
TEST(MtaTls, CommandsInjectedBeforeTheHandshakeAreDiscarded) {
    TempDir certs;
    make_certificate(certs);
    mtatest::Options o;
    // With smtpd_forbid_unauth_pipelining (the default) the client is simply
    // refused for talking ahead (below); without it, what it said is dropped.
    o.main_cf = tls_config(certs) + "smtpd_forbid_unauth_pipelining = no\n";
    MtaInstance mta(o);
    auto r = mtatest::python(
        "import socket, ssl\n"
        "s = socket.create_connection(('127.0.0.1', " + std::to_string(mta.port()) + "))\n"
        "f = s.makefile('rb')\n"
        "f.readline()\n"
        "s.sendall(b'EHLO client.example\\r\\n')\n"
        "while True:\n"
        "    l = f.readline()\n"
        "    if l[3:4] == b' ': break\n"
        "s.sendall(b'STARTTLS\\r\\nNOOP injected\\r\\n')\n"
        "print('starttls', f.readline())\n"
        "ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n"
        "t = ctx.wrap_socket(s)\n"
        "t.sendall(b'NOOP\\r\\n')\n"
        "print('first', t.recv(1000))\n");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("starttls b'220 2.0.0 Ready to start TLS\\r\\n'"), std::string::npos) << r.output;
    // Exactly one reply: to our NOOP, none to the injected one.
    EXPECT_NE(r.output.find("first b'250 2.0.0 Ok\\r\\n'"), std::string::npos) << r.output;
}

TEST(MtaTls, TalkingAheadOfStartTlsIsRefusedByDefault) {
    TempDir certs;
    make_certificate(certs);
    mtatest::Options o;
    o.main_cf = tls_config(certs);
    MtaInstance mta(o);
    LineClient c("127.0.0.1", mta.port());
    c.reply();
    cmd(c, "EHLO client.example");
    c.send("STARTTLS\r\nNOOP injected\r\n");
    EXPECT_EQ(c.reply(), "554 5.5.0 Error: SMTP protocol synchronization");
    EXPECT_TRUE(c.closed());
}

TEST(MtaTls, ImplicitTlsWithWrappermode) {
    TempDir certs;
    make_certificate(certs);
    int port = free_port();
    mtatest::Options o;
    o.main_cf = tls_config(certs);
    o.master_cf = "127.0.0.1:" + std::to_string(port) + " inet n - n - - smtpd\n  -o smtpd_tls_wrappermode=yes\n";
    MtaInstance mta(o);
    wait_for_tcp("127.0.0.1", port);
    auto r = mtatest::python(
        "import smtplib, ssl\n"
        "ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n"
        "s = smtplib.SMTP_SSL('127.0.0.1', " + std::to_string(port) + ", context=ctx)\n"
        "s.ehlo('client.example')\n"
        "print('starttls offered', s.has_extn('starttls'))\n"
        "s.sendmail('a@remote.example', ['bob@example.org'], 'Subject: 465\\r\\n\\r\\nbody\\r\\n')\n"
        "s.quit()\n");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("starttls offered False"), std::string::npos) << r.output;
    EXPECT_EQ(mta.wait_for_mail("bob", 1).size(), 1u);
}

TEST(MtaTls, EncryptLevelRefusesMailBeforeStartTls) {
    TempDir certs;
    make_certificate(certs);
    mtatest::Options o;
    o.main_cf = tls_config(certs) + "smtpd_tls_security_level = encrypt\n";
    MtaInstance mta(o);
    LineClient c("127.0.0.1", mta.port());
    c.reply();
    cmd(c, "EHLO client.example");
    EXPECT_EQ(cmd(c, "MAIL FROM:<a@remote.example>"), "530 5.7.0 Must issue a STARTTLS command first");
}

TEST(MtaAnvil, ConnectionCountAndMessageRateAreLimitedPerClient) {
    mtatest::Options o;
    o.main_cf = "smtpd_client_connection_count_limit = 2\nsmtpd_client_message_rate_limit = 2\n";
    MtaInstance mta(o);
    LineClient a("127.0.0.1", mta.port());
    EXPECT_EQ(a.reply().substr(0, 4), "220 ");
    LineClient b("127.0.0.1", mta.port());
    EXPECT_EQ(b.reply().substr(0, 4), "220 ");
    LineClient c("127.0.0.1", mta.port());
    EXPECT_EQ(c.reply(), "421 4.7.0 mx.test.example Error: too many connections from 127.0.0.1");
    EXPECT_TRUE(c.closed());
    EXPECT_TRUE(mta.maillog_has("warning: Connection concurrency limit exceeded: 2 from unknown[127.0.0.1] for service"));
    cmd(a, "EHLO client.example");
    EXPECT_EQ(cmd(a, "MAIL FROM:<a@remote.example>"), "250 2.1.0 Ok");
    cmd(a, "RSET");
    EXPECT_EQ(cmd(a, "MAIL FROM:<a@remote.example>"), "250 2.1.0 Ok");
    cmd(a, "RSET");
    EXPECT_EQ(cmd(a, "MAIL FROM:<a@remote.example>"), "450 4.7.1 Error: too much mail from 127.0.0.1");
    // A session that ends frees its slot.
    cmd(b, "QUIT");
    EXPECT_TRUE(b.closed());
    LineClient d("127.0.0.1", mta.port());
    EXPECT_EQ(d.reply().substr(0, 4), "220 ");
}

TEST(MtaAnvil, ExceptionsAreNotLimited) {
    mtatest::Options o;
    o.main_cf = "smtpd_client_connection_count_limit = 1\nsmtpd_client_event_limit_exceptions = 127.0.0.0/8\n";
    MtaInstance mta(o);
    LineClient a("127.0.0.1", mta.port());
    EXPECT_EQ(a.reply().substr(0, 4), "220 ");
    LineClient b("127.0.0.1", mta.port());
    EXPECT_EQ(b.reply().substr(0, 4), "220 ");
}

TEST(MtaPolicy, GreylistingThroughARealPolicydGreylistAndRedis) {
    RedisServer redis;
    TempDir gdir;
    DaemonProcess greylist(gdir, DaemonProcess::Options{POLICYD_GREYLIST, "greylist", redis.url(), {}, false},
                           nlohmann::json{{"delay", "1s"}, {"whitelist_clients", nlohmann::json::array()},
                                          {"whitelist_recipients", nlohmann::json::array()}});
    mtatest::Options o;
    o.main_cf = "smtpd_recipient_restrictions = reject_unauth_destination, check_policy_service "
                "inet:127.0.0.1:" + std::to_string(greylist.port()) + "\n";
    MtaInstance mta(o);
    auto send = [&] {
        return run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(mta.port()), "--from",
                    "sender@remote.example", "--to", "alice@example.org", "--helo", "client.example"});
    };
    auto first = send();
    EXPECT_NE(first.exit_code, 0);
    EXPECT_NE(first.output.find("450 4.7.1 <alice@example.org>: Recipient address rejected: Greylisted"),
              std::string::npos)
        << first.output;
    EXPECT_TRUE(mta.maillog_has("NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 450 4.7.1 <alice@example.org>"));
    // After the delay (1 s, the daemon's clock), the same triplet passes
    // and the daemon's header is in the delivered message.
    std::string later;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        auto r = send();
        later = r.output;
        if (r.exit_code == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(250));  // the greylist delay is wall-clock time
    }
    ASSERT_NE(later.find("250 2.0.0 Ok: queued as"), std::string::npos) << later;
    auto files = mta.wait_for_mail("alice", 1);
    ASSERT_EQ(files.size(), 1u);
    EXPECT_NE(read_file(files[0]).find("X-Greylist:"), std::string::npos) << read_file(files[0]);
}

TEST(MtaPolicy, AServiceThatIsDownGetsItsDefaultAction) {
    int closed = free_port();
    mtatest::Options o;
    o.main_cf = "smtpd_recipient_restrictions = reject_unauth_destination, check_policy_service "
                "{ inet:127.0.0.1:" + std::to_string(closed) + ", timeout=2s, default_action=DUNNO }, "
                "check_policy_service inet:127.0.0.1:" + std::to_string(closed) + "\n";
    MtaInstance mta(o);
    auto r = run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(mta.port()), "--from",
                  "sender@remote.example", "--to", "alice@example.org", "--helo", "client.example"});
    // The first service defaults to DUNNO, the second to Postfix's 451 4.3.5.
    EXPECT_NE(r.output.find("451 4.3.5"), std::string::npos) << r.output;
    EXPECT_TRUE(mta.maillog_has("4.3.5"));
}

TEST(MtaPolicy, SpawnRunsAStdinStdoutPolicyServerAsItsUser) {
    mtatest::Options o;
    o.with_delivery = true;
    MtaInstance probe(o);  // only for its dir layout
    const auto& dir = probe.dir();
    dir.write("policy.sh",
              "#!/bin/sh\n"
              "# A policy server on stdin/stdout: refuse, naming the user it runs as.\n"
              "while IFS= read -r line; do\n"
              "  if [ -z \"$line\" ]; then printf 'action=550 5.7.1 refused by %s\\n\\n' \"$(id -un)\"; fi\n"
              "done\n");
    ::chmod(dir.file("policy.sh").c_str(), 0755);
    probe.stop();
    mtatest::Options o2;
    o2.main_cf = "smtpd_recipient_restrictions = reject_unauth_destination, check_policy_service unix:private/policy\n";
    o2.master_cf = "policy unix - n n - 0 spawn\n  user=nobody argv=" + dir.file("policy.sh") + "\n";
    MtaInstance mta(o2);
    // The script lives in the first instance's dir, which is still there.
    auto r = run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(mta.port()), "--from",
                  "sender@remote.example", "--to", "alice@example.org", "--helo", "client.example"});
    EXPECT_NE(r.output.find("550 5.7.1 <alice@example.org>: Recipient address rejected: refused by nobody"),
              std::string::npos)
        << r.output << mta.log();
}
