// mta-core receiving mail, against the built program with a real
// delivery-maildir behind it, driven by real clients: a raw socket (for
// byte-exact protocol cases), swaks and Python's smtplib.
#include <gtest/gtest.h>
#include <signal.h>

#include <regex>

#include "../delivery/helpers.h"
#include "mta_instance.h"

using namespace testsupport;
using mtatest::MtaInstance;
using mtatest::cmd;
using dtest::LineClient;

namespace {

// Greeting and EHLO; returns the client ready for MAIL.
std::unique_ptr<LineClient> hello(const MtaInstance& mta, const std::string& helo = "client.example") {
    auto c = std::make_unique<LineClient>("127.0.0.1", mta.port());
    EXPECT_EQ(c->reply().substr(0, 4), "220 ");
    c->send("EHLO " + helo + "\r\n");
    EXPECT_EQ(c->reply().substr(0, 4), "250 ");
    return c;
}


}  // namespace

TEST(MtaSmtpd, BannerHasNoVersionAndEhloAdvertisesTheExtensions) {
    MtaInstance mta;
    LineClient c("127.0.0.1", mta.port());
    std::string banner = c.reply();
    EXPECT_EQ(banner, "220 mx.test.example ESMTP");
    c.send("EHLO client.example\r\n");
    std::string all;
    for (std::string line = c.line(); ; line = c.line()) {
        all += line + "\n";
        if (line.size() > 3 && line[3] == ' ') break;
    }
    for (const char* ext : {"250-PIPELINING", "250-SIZE 10240000", "250-ENHANCEDSTATUSCODES", "250-8BITMIME",
                            "250-DSN", "250 SMTPUTF8"})
        EXPECT_NE(all.find(ext), std::string::npos) << ext << " in\n" << all;
    EXPECT_EQ(all.find("STARTTLS"), std::string::npos) << "no certificate, no STARTTLS";
    EXPECT_EQ(all.find("AUTH"), std::string::npos);
    EXPECT_EQ(cmd(c, "HELP"), "500 5.5.2 Error: command not recognized") << "as Postfix answers";
    EXPECT_EQ(cmd(c, "NOOP"), "250 2.0.0 Ok");
    EXPECT_EQ(cmd(c, "QUIT"), "221 2.0.0 Bye");
    EXPECT_TRUE(c.closed());
}

TEST(MtaSmtpd, MessageFromSwaksIsQueuedAndDeliveredIntoTheMaildir) {
    MtaInstance mta;
    auto r = run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(mta.port()), "--from",
                  "sender@remote.example", "--to", "alice@example.org", "--helo", "client.example",
                  "--header", "Subject: hello from swaks", "--body", "first line\nsecond line"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.output, m, std::regex("250 2\\.0\\.0 Ok: queued as ([0-9A-F]+)"))) << r.output;
    std::string id = m[1];
    auto files = mta.wait_for_mail("alice", 1);
    ASSERT_EQ(files.size(), 1u) << mta.maillog();
    std::string msg = read_file(files[0]);
    EXPECT_NE(msg.find("Subject: hello from swaks"), std::string::npos);
    EXPECT_NE(msg.find("Received: from client.example"), std::string::npos) << msg;
    EXPECT_NE(msg.find("by mx.test.example with ESMTP id " + id), std::string::npos) << msg;
    EXPECT_TRUE(mta.maillog_has(id + ": to=<alice@example.org>"));
    EXPECT_TRUE(mta.maillog_has("status=sent"));
    EXPECT_TRUE(mta.maillog_has(id + ": removed"));
}

TEST(MtaSmtpd, PythonSmtplibSendsToTwoRecipients) {
    MtaInstance mta;
    auto r = mtatest::python(
        "import smtplib\n"
        "s = smtplib.SMTP('127.0.0.1', " + std::to_string(mta.port()) + ")\n"
        "s.ehlo('client.example')\n"
        "refused = s.sendmail('a@remote.example', ['alice@example.org', 'bob@example.org'],\n"
        "    'Subject: two\\r\\n\\r\\nbody\\r\\n')\n"
        "print('refused', refused)\n"
        "s.quit()\n");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("refused {}"), std::string::npos) << r.output;
    EXPECT_EQ(mta.wait_for_mail("alice", 1).size(), 1u);
    EXPECT_EQ(mta.wait_for_mail("bob", 1).size(), 1u);
}

TEST(MtaSmtpd, NoOpenRelayAndNoRelayTricks) {
    MtaInstance mta;
    auto c = hello(mta);
    ASSERT_EQ(cmd(*c, "MAIL FROM:<someone@remote.example>"), "250 2.1.0 Ok");
    const std::vector<std::string> refused{
        "<victim@remote.example>",
        "<victim%remote.example@example.org>",
        "<\"victim@remote.example\"@example.org>",
        "<\"victim%remote.example\"@example.org>",
        "<remote.example!victim@example.org>",
        "<victim@[192.0.2.1]>",
        "<@example.org:victim@remote.example>",
        "<victim@REMOTE.example.>",
        "<victim@example.org.remote.example>",
        "<victim@xn--exmple-cua.org>",
    };
    for (const auto& rcpt : refused) {
        std::string reply = cmd(*c, "RCPT TO:" + rcpt);
        EXPECT_EQ(reply.substr(0, 10), "554 5.7.1 ") << rcpt << " -> " << reply;
        EXPECT_NE(reply.find("Relay access denied"), std::string::npos) << rcpt << " -> " << reply;
    }
    // Ours, in any case, with a trailing dot, or via a source route.
    EXPECT_EQ(cmd(*c, "RCPT TO:<alice@EXAMPLE.org>"), "250 2.1.5 Ok");
    EXPECT_EQ(cmd(*c, "RCPT TO:<bob@example.org.>"), "250 2.1.5 Ok");
    EXPECT_EQ(cmd(*c, "RCPT TO:<@relay.example:postmaster@example.org>"), "250 2.1.5 Ok");
    EXPECT_TRUE(mta.maillog_has("NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 554 5.7.1 <victim@remote.example>: Relay access denied"));
}

TEST(MtaSmtpd, UnknownRecipientOfAVirtualDomainIsRefusedAtRcpt) {
    MtaInstance mta;
    auto c = hello(mta);
    ASSERT_EQ(cmd(*c, "MAIL FROM:<someone@remote.example>"), "250 2.1.0 Ok");
    std::string reply = cmd(*c, "RCPT TO:<nobody@example.org>");
    EXPECT_EQ(reply.substr(0, 10), "550 5.1.1 ") << reply;
}

TEST(MtaSmtpd, ProtocolOrderAndSyntaxErrors) {
    MtaInstance mta;
    LineClient c("127.0.0.1", mta.port());
    c.reply();
    EXPECT_EQ(cmd(c, "RCPT TO:<alice@example.org>"), "503 5.5.1 Error: need MAIL command");
    EXPECT_EQ(cmd(c, "DATA"), "503 5.5.1 Error: need RCPT command");
    EXPECT_EQ(cmd(c, "EHLO"), "501 5.5.4 Syntax: EHLO hostname");
    EXPECT_EQ(cmd(c, "HELO client.example"), "250 mx.test.example");
    EXPECT_EQ(cmd(c, "MAIL FROM:<a@remote.example> SIZE=99999999999"), "552 5.3.4 Message size exceeds fixed limit");
    EXPECT_EQ(cmd(c, "MAIL FROM:<a@remote.example> FOO=BAR").substr(0, 4), "555 ");
    EXPECT_EQ(cmd(c, "MAIL FROM:a@remote.example"), "250 2.1.0 Ok") << "brackets are optional, as in Postfix";
    EXPECT_EQ(cmd(c, "RSET"), "250 2.0.0 Ok");
    EXPECT_EQ(cmd(c, "MAIL FROM:<a@remote.example>"), "250 2.1.0 Ok");
    EXPECT_EQ(cmd(c, "MAIL FROM:<a@remote.example>"), "503 5.5.1 Error: nested MAIL command");
    EXPECT_EQ(cmd(c, "DATA"), "554 5.5.1 Error: no valid recipients");
    EXPECT_EQ(cmd(c, "RSET"), "250 2.0.0 Ok");
    EXPECT_EQ(cmd(c, "VRFY alice@example.org").substr(0, 4), "252 ");
    EXPECT_EQ(cmd(c, "VRFY nobody@example.org").substr(0, 4), "252 ") << "not a local domain: no verdict";
}

TEST(MtaSmtpd, PipeliningBeforeTheReplyToEhloIsRefused) {
    MtaInstance mta;
    LineClient c("127.0.0.1", mta.port());
    c.reply();
    c.send("EHLO client.example\r\nMAIL FROM:<a@remote.example>\r\n");
    std::string last = c.reply();
    EXPECT_EQ(last, "554 5.5.0 Error: SMTP protocol synchronization");
    EXPECT_TRUE(c.closed());
    EXPECT_TRUE(mta.maillog_has("improper command pipelining after EHLO"));
}

TEST(MtaSmtpd, PipelinedEnvelopeAfterEhloIsServedInOrder) {
    MtaInstance mta;
    auto c = hello(mta);
    c->send("MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<x@remote.example>\r\nDATA\r\n");
    EXPECT_EQ(c->reply(), "250 2.1.0 Ok");
    EXPECT_EQ(c->reply(), "250 2.1.5 Ok");
    EXPECT_EQ(c->reply().substr(0, 4), "554 ");
    EXPECT_EQ(c->reply().substr(0, 4), "354 ");
    c->send("Subject: p\r\n\r\nbody\r\n.\r\n");
    EXPECT_EQ(c->reply().substr(0, 24), "250 2.0.0 Ok: queued as ");
}

// SMTP smuggling: whatever a client sends, only <CR><LF>.<CR><LF> ends the
// data, so a second message hidden behind a fake end is never accepted.
TEST(MtaSmtpd, NoSmugglingSequenceMakesTwoMessages) {
    MtaInstance mta;
    const std::vector<std::string> fake_ends{
        "\n.\n", "\n.\r\n", "\r\n.\n", "\r.\r", "\r.\n", "\n.\r", "\r.\r\n", "\r\n.\r",
        std::string("\r\n\0.\r\n", 6), "\r\n.\r\r\n",
    };
    int index = 0;
    for (const auto& fake : fake_ends) {
        auto c = hello(mta);
        ASSERT_EQ(cmd(*c, "MAIL FROM:<a@remote.example>"), "250 2.1.0 Ok");
        ASSERT_EQ(cmd(*c, "RCPT TO:<alice@example.org>"), "250 2.1.5 Ok");
        ASSERT_EQ(cmd(*c, "DATA").substr(0, 4), "354 ");
        c->send("Subject: case " + std::to_string(index) + "\r\n\r\nbefore" + fake +
                "MAIL FROM:<evil@remote.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"
                "Subject: smuggled\r\n\r\nsmuggled\r\n.\r\n");
        std::string reply = c->reply();
        if (reply.substr(0, 4) == "354 ") FAIL() << "a fake end of data was honoured: case " << index;
        // The data goes on until a real end: the hidden commands were content.
        EXPECT_EQ(reply.substr(0, 24), "250 2.0.0 Ok: queued as ") << "case " << index << ": " << reply;
        EXPECT_EQ(cmd(*c, "QUIT"), "221 2.0.0 Bye");
        ++index;
    }
    auto files = mta.wait_for_mail("alice", fake_ends.size());
    EXPECT_EQ(files.size(), fake_ends.size());
    EXPECT_TRUE(mta.mail_files("bob").empty()) << "a smuggled message was delivered";
    // What was stored and delivered has CRLF line ends only (delivery-maildir
    // writes LF, so: no CR left at all once it converted each CRLF).
    for (const auto& f : files) {
        std::string m = read_file(f);
        EXPECT_EQ(m.find('\r'), std::string::npos) << f;
        EXPECT_NE(m.find("smuggled"), std::string::npos);
    }
}

TEST(MtaSmtpd, BareLfIsRefusedWhenForbidden) {
    mtatest::Options o;
    o.main_cf = "smtpd_forbid_bare_newline = yes\nsmtpd_forbid_bare_newline_exclusions =\n";
    MtaInstance mta(o);
    auto c = hello(mta);
    ASSERT_EQ(cmd(*c, "MAIL FROM:<a@remote.example>"), "250 2.1.0 Ok");
    ASSERT_EQ(cmd(*c, "RCPT TO:<alice@example.org>"), "250 2.1.5 Ok");
    ASSERT_EQ(cmd(*c, "DATA").substr(0, 4), "354 ");
    c->send("Subject: x\n\nbody\r\n.\r\n");
    EXPECT_EQ(c->reply(), "521 5.5.2 mx.test.example Error: bare <LF> received");
    EXPECT_TRUE(c->closed());
}

TEST(MtaSmtpd, TooManyErrorsEndTheSession) {
    mtatest::Options o;
    o.main_cf = "smtpd_hard_error_limit = 3\n";
    MtaInstance mta(o);
    LineClient c("127.0.0.1", mta.port());
    c.reply();
    cmd(c, "FOO");
    cmd(c, "BAR");
    c.send("BAZ\r\n");
    EXPECT_EQ(c.line().substr(0, 4), "500 ");
    EXPECT_EQ(c.line(), "421 4.7.0 mx.test.example Error: too many errors");
    EXPECT_TRUE(c.closed());
}

TEST(MtaSmtpd, OverlongCommandLineGetsA500AndTheSessionGoesOn) {
    MtaInstance mta;
    auto c = hello(mta);
    c->send("NOOP " + std::string(5000, 'x') + "\r\n");
    EXPECT_EQ(c->reply().substr(0, 4), "500 ");
    EXPECT_EQ(cmd(*c, "NOOP"), "250 2.0.0 Ok");
}

TEST(MtaSmtpd, CheckConfigRefusesWhatMtaCoreCannotDo) {
    mtatest::Options o;
    MtaInstance mta(o);
    auto ok = mta.command({"--check-config"});
    EXPECT_EQ(ok.exit_code, 0) << ok.output;
    mta.rewrite_main_cf("content_filter = smtp:[127.0.0.1]:10025\n");
    auto bad = mta.command({"--check-config"});
    EXPECT_EQ(bad.exit_code, 1) << bad.output;
    EXPECT_NE(bad.output.find("content_filter"), std::string::npos) << bad.output;
    EXPECT_NE(bad.output.find("smtpd_milters"), std::string::npos) << bad.output;
    mta.rewrite_main_cf("smtpd_relay_restrictions = permit\nsmtpd_recipient_restrictions = permit\n");
    auto open_relay = mta.command({"--check-config"});
    EXPECT_EQ(open_relay.exit_code, 1) << open_relay.output;
    EXPECT_NE(open_relay.output.find("reject_unauth_destination"), std::string::npos) << open_relay.output;
    mta.rewrite_main_cf("no_such_parameter_anywhere = 1\n");
    auto unknown = mta.command({"--check-config"});
    EXPECT_EQ(unknown.exit_code, 0) << unknown.output;
    EXPECT_NE(unknown.output.find("unused parameter: no_such_parameter_anywhere=1"), std::string::npos)
        << unknown.output;
}

TEST(MtaSmtpd, QueueSurvivesARestartAndIsDeliveredAfterIt) {
    mtatest::Options o;
    MtaInstance mta(o);
    // No delivery yet: point the transport at a closed port.
    int closed = free_port();
    mta.rewrite_main_cf("virtual_transport = lmtp:inet:127.0.0.1:" + std::to_string(closed) + "\n");
    mta.stop();
    mta.start();
    auto r = run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(mta.port()), "--from",
                  "s@remote.example", "--to", "bob@example.org", "--helo", "client.example"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(mta.maillog_has("status=deferred"));
    auto list = mta.command({"queue", "list"});
    EXPECT_NE(list.output.find("bob@example.org"), std::string::npos) << list.output;
    mta.kill9();
    mta.rewrite_main_cf("");
    mta.start();
    EXPECT_EQ(mta.wait_for_mail("bob", 1).size(), 1u) << mta.maillog();
}

// pflogsumm, the report operators run on Postfix's log, reads mta-core's.
TEST(MtaSmtpd, PflogsummCountsWhatHappened) {
    MtaInstance mta;
    for (int i = 0; i < 3; ++i) {
        auto r = run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(mta.port()), "--from",
                      "s@remote.example", "--to", "alice@example.org", "--helo", "client.example"});
        ASSERT_EQ(r.exit_code, 0) << r.output;
    }
    for (int i = 0; i < 2; ++i) {
        auto r = run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(mta.port()), "--from",
                      "s@remote.example", "--to", "victim@remote.example", "--helo", "client.example"});
        ASSERT_NE(r.exit_code, 0);
    }
    ASSERT_EQ(mta.wait_for_mail("alice", 3).size(), 3u);
    ASSERT_TRUE(mta.maillog_has(": removed"));
    // The third removal line is the last line of interest.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        std::string log = mta.maillog();
        std::size_t removed = 0;
        for (auto p = log.find(": removed"); p != std::string::npos; p = log.find(": removed", p + 1)) ++removed;
        if (removed == 3) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a file, bounded
    }
    auto report = run({"/usr/sbin/pflogsumm", "--syslog-name", "postfix", mta.dir().file("maillog")});
    ASSERT_EQ(report.exit_code, 0) << report.output;
    auto count = [&](const std::string& what) {
        std::smatch m;
        std::regex re("\\n\\s*(\\d+)\\s+" + what + "\\b");
        return std::regex_search(report.output, m, re) ? std::stoi(m[1]) : -1;
    };
    EXPECT_EQ(count("received"), 3) << report.output;
    EXPECT_EQ(count("delivered"), 3) << report.output;
    EXPECT_EQ(count("rejected"), 2) << report.output;
}

TEST(MtaSmtpd, MetricsCountAcceptedRefusedAndDelivered) {
    int metrics_port = free_port();
    mtatest::Options o;
    o.args = {"--metrics", "inet:127.0.0.1:" + std::to_string(metrics_port)};
    MtaInstance mta(o);
    wait_for_tcp("127.0.0.1", metrics_port);
    run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(mta.port()), "--from", "s@remote.example",
         "--to", "alice@example.org"});
    run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(mta.port()), "--from", "s@remote.example",
         "--to", "x@remote.example"});
    ASSERT_EQ(mta.wait_for_mail("alice", 1).size(), 1u);
    ASSERT_TRUE(mta.maillog_has(": removed"));
    auto m = run({"curl", "-s", "http://127.0.0.1:" + std::to_string(metrics_port) + "/metrics"});
    EXPECT_NE(m.output.find("smtpd_messages_accepted_total 1"), std::string::npos) << m.output;
    EXPECT_NE(m.output.find("smtpd_refused_total{stage=\"RCPT\",code=\"554\"} 1"), std::string::npos) << m.output;
    EXPECT_NE(m.output.find("qmgr_deliveries_total{transport=\"lmtp\",status=\"sent\"} 1"), std::string::npos)
        << m.output;
    EXPECT_NE(m.output.find("smtpd_connections_total"), std::string::npos) << m.output;
}

// RFC 6531: UTF-8 addresses in a transaction that declared SMTPUTF8 only.
TEST(MtaSmtpd, Utf8AddressesNeedSmtputf8) {
    MtaInstance mta;
    auto c = hello(mta);
    EXPECT_EQ(cmd(*c, "MAIL FROM:<jos\xc3\xa9@remote.example>"), "553 5.6.7 Must declare SMTPUTF8 to send unicode address");
    EXPECT_EQ(cmd(*c, "MAIL FROM:<jos\xc3\xa9@remote.example> SMTPUTF8"), "250 2.1.0 Ok");
    EXPECT_EQ(cmd(*c, "RCPT TO:<alice@example.org>"), "250 2.1.5 Ok");
    EXPECT_EQ(cmd(*c, "RCPT TO:<x@b\xc3\xbc" "cher.example>").substr(0, 4), "554 ") << "not ours: relay refused";
    EXPECT_EQ(cmd(*c, "RSET"), "250 2.0.0 Ok");
    EXPECT_EQ(cmd(*c, "MAIL FROM:<a@remote.example>"), "250 2.1.0 Ok");
    EXPECT_EQ(cmd(*c, "RCPT TO:<\xc3\xa9@example.org>"), "553 5.6.7 Must declare SMTPUTF8 to send unicode address");
    EXPECT_EQ(cmd(*c, "RCPT TO:<bad\xc3@example.org>").substr(0, 10), "501 5.1.3 ") << "ill-formed UTF-8";
}

// smtpd_timeout runs per command line, not per read: a client that drips one
// byte at a time is cut off, while 100 others are served meanwhile.
TEST(MtaSmtpd, ADrippingClientCannotHoldASessionWhileOthersAreServed) {
    mtatest::Options o;
    o.main_cf = "smtpd_timeout = 2s\n";
    MtaInstance mta(o);
    LineClient drip("127.0.0.1", mta.port());
    drip.reply();
    auto started = std::chrono::steady_clock::now();
    std::string line = "NOOP " + std::string(200, 'x');
    bool cut = false;
    std::size_t served = 0;
    for (std::size_t i = 0; i < line.size() && !cut; ++i) {
        try {
            drip.send(std::string(1, line[i]));
        } catch (const std::exception&) {
            cut = true;
            break;
        }
        // Meanwhile other clients are served at once.
        if (served < 100) {
            auto t0 = std::chrono::steady_clock::now();
            LineClient other("127.0.0.1", mta.port());
            EXPECT_EQ(other.reply().substr(0, 4), "220 ");
            EXPECT_EQ(cmd(other, "NOOP"), "250 2.0.0 Ok");
            EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
            ++served;
        } else {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the drip's pace, not a synchronisation
        }
        if (drip.closed(std::chrono::milliseconds(1))) cut = true;
    }
    EXPECT_TRUE(cut) << "the dripping client was never cut off";
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(6));
    EXPECT_EQ(served, 100u);
}

TEST(MtaSmtpd, HelpOffersWhatMtaCoreHas) {
    auto h = run({mtatest::mta_core_binary(), "--help"});
    EXPECT_EQ(h.exit_code, 0);
    EXPECT_EQ(h.output.find("--milter"), std::string::npos) << h.output;
    EXPECT_EQ(h.output.find("--listen"), std::string::npos) << h.output;
    EXPECT_NE(h.output.find("--print-config"), std::string::npos) << h.output;
    EXPECT_NE(h.output.find("queue list"), std::string::npos) << h.output;
}

// RFC 5321 6.3: a message that went through too many hops (Received: fields,
// in any case) is refused; its message-id reaches the maillog.
TEST(MtaSmtpd, TooManyHopsAreRefusedAndTheMessageIdIsLogged) {
    mtatest::Options o;
    o.main_cf = "hopcount_limit = 2\n";
    MtaInstance mta(o);
    auto c = hello(mta);
    auto send = [&](const std::string& header) {
        cmd(*c, "MAIL FROM:<a@remote.example>");
        cmd(*c, "RCPT TO:<alice@example.org>");
        cmd(*c, "DATA");
        c->send(header + "Subject: hops\r\n\r\nbody\r\n.\r\n");
        return c->reply();
    };
    EXPECT_EQ(send("Received: one\r\nreceived: two\r\nRECEIVED: three\r\n"), "554 5.4.0 Error: too many hops");
    EXPECT_EQ(send("Received: one\r\nMessage-ID: <hop@remote.example>\r\nReceived: two\r\n").substr(0, 24),
              "250 2.0.0 Ok: queued as ");
    EXPECT_TRUE(mta.maillog_has("message-id=<hop@remote.example>"));
}

// header_size_limit: a header field longer than the limit keeps its first
// bytes, the rest of the message is intact, and the maillog says so.
TEST(MtaSmtpd, AHeaderFieldOverHeaderSizeLimitIsTruncated) {
    mtatest::Options o;
    o.main_cf = "header_size_limit = 1024\n";
    MtaInstance mta(o);
    auto c = hello(mta);
    cmd(*c, "MAIL FROM:<a@remote.example>");
    cmd(*c, "RCPT TO:<alice@example.org>");
    cmd(*c, "DATA");
    std::string folded;
    for (int i = 0; i < 100; ++i) folded += " continuation-" + std::to_string(i) + "\r\n";
    c->send("Subject: long\r\nX-Big: start\r\n" + folded + "To: alice@example.org\r\n\r\nthe body\r\n.\r\n");
    EXPECT_EQ(c->reply().substr(0, 24), "250 2.0.0 Ok: queued as ");
    auto files = mta.wait_for_mail("alice", 1);
    ASSERT_EQ(files.size(), 1u) << mta.maillog();
    std::string m = read_file(files[0]);
    EXPECT_NE(m.find("X-Big: start\n continuation-0\n"), std::string::npos) << m;
    EXPECT_EQ(m.find("continuation-99"), std::string::npos) << m;
    EXPECT_NE(m.find("\nTo: alice@example.org\n\nthe body\n"), std::string::npos) << m;
    EXPECT_TRUE(mta.maillog_has("header field(s) longer than header_size_limit (1024 bytes) truncated"));
}

// RFC 3461: the DSN parameters are checked as Postfix checks them and kept
// in the queue file with the message (here one held by a HOLD action).
TEST(MtaSmtpd, DsnParametersAreCheckedAndKeptWithTheMessage) {
    mtatest::Options o;
    o.main_cf = "smtpd_recipient_restrictions = check_recipient_access inline:{ alice@example.org=HOLD }\n";
    MtaInstance mta(o);
    auto c = hello(mta);
    EXPECT_EQ(cmd(*c, "MAIL FROM:<a@remote.example> RET=BODY"), "501 5.5.4 Bad RET parameter syntax");
    EXPECT_EQ(cmd(*c, "MAIL FROM:<a@remote.example> ENVID=a+zz"), "501 5.5.4 Bad ENVID parameter syntax");
    EXPECT_EQ(cmd(*c, "MAIL FROM:<a@remote.example> RET=FULL RET=HDRS"), "501 5.5.4 Duplicate RET parameter");
    EXPECT_EQ(cmd(*c, "MAIL FROM:<a@remote.example> RET=hdrs ENVID=QQ314159+2Bx"), "250 2.1.0 Ok");
    EXPECT_EQ(cmd(*c, "RCPT TO:<alice@example.org> NOTIFY=NEVER,DELAY"), "501 5.5.4 Bad NOTIFY parameter syntax");
    EXPECT_EQ(cmd(*c, "RCPT TO:<alice@example.org> ORCPT=alice@example.org"), "501 5.5.4 Bad ORCPT parameter syntax");
    EXPECT_EQ(cmd(*c, "RCPT TO:<alice@example.org> NOTIFY=delay,success ORCPT=rfc822;Alice+2Bx@example.org"),
              "250 2.1.5 Ok");
    EXPECT_EQ(cmd(*c, "DATA").substr(0, 4), "354 ");
    c->send("Subject: dsn\r\n\r\nbody\r\n.\r\n");
    std::string queued = c->reply();
    ASSERT_EQ(queued.substr(0, 24), "250 2.0.0 Ok: queued as ") << queued;
    std::string id = queued.substr(24);
    std::string file = read_file(mta.queue_dir() + "/hold/" + id);
    EXPECT_NE(file.find("\ndsn_envid=QQ314159+x\n"), std::string::npos) << file;
    EXPECT_NE(file.find("\ndsn_ret=HDRS\n"), std::string::npos) << file;
    EXPECT_NE(file.find("\nrcpt_dsn=SUCCESS,DELAY rfc822;Alice+x@example.org\n"), std::string::npos) << file;
}
