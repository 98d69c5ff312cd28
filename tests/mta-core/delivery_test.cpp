// mta-core's queue manager end to end: relaying to a relayhost (what leaves
// is what was stored: CRLF lines, dot-stuffed), bounces (RFC 3464) to a
// local sender when the next hop refuses with 5xx (smtp-sink from Postfix),
// and virtual alias expansion.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "../delivery/helpers.h"
#include "mta_instance.h"

using namespace testsupport;
using dtest::LineClient;
using mtatest::MtaInstance;
using mtatest::capture_server;
using mtatest::wait_for_file;
using mtatest::cmd;

namespace {

// Postfix's smtp-sink refusing every RCPT, as remote.test's nexthop
// (transport_maps): with 5xx (smtp-sink -f), or with 4xx (-r) for a
// DeferringNexthop.
struct RefusingNexthop {
    explicit RefusingNexthop(const char* refusal = "-f")
        : process({"/usr/sbin/smtp-sink", "-u", "nobody", refusal, "RCPT", "127.0.0.1:" + std::to_string(port), "10"}) {
        wait_for_tcp("127.0.0.1", port);
    }
    std::string transport_maps() const {
        return "transport_maps = inline:{ remote.test=smtp:[127.0.0.1]:" + std::to_string(port) + " }\n";
    }
    mtatest::Options options(const std::string& extra = "") const {
        mtatest::Options o;
        o.main_cf = transport_maps() + extra;
        return o;
    }
    int port = free_port();
    Process process;
};
struct DeferringNexthop : RefusingNexthop {
    DeferringNexthop() : RefusingNexthop("-r") {}
};

}  // namespace

TEST(MtaDelivery, RelayhostReceivesExactlyWhatWasStored) {
    TempDir cap;
    int port = free_port();
    Process server = capture_server(cap, port);
    mtatest::Options o;
    o.main_cf = "relayhost = [127.0.0.1]:" + std::to_string(port) + "\n";
    MtaInstance mta(o);
    // From 127.0.0.2, in mynetworks: relaying is allowed.
    LineClient c("127.0.0.2", 0, "127.0.0.1", mta.port());
    c.reply();
    cmd(c, "EHLO trusted.example");
    ASSERT_EQ(cmd(c, "MAIL FROM:<alice@example.org>"), "250 2.1.0 Ok");
    ASSERT_EQ(cmd(c, "RCPT TO:<friend@remote.example>"), "250 2.1.5 Ok");
    ASSERT_EQ(cmd(c, "DATA").substr(0, 4), "354 ");
    // A dot-stuffed line, a bare LF, a bare CR and a fake end of data.
    c.send("Subject: bytes\r\n\r\n..leading dot\r\nbare\nlf\r\nbare\rcr\r\n\n.\n\r\n.\r\n");
    EXPECT_EQ(c.reply().substr(0, 24), "250 2.0.0 Ok: queued as ");
    ASSERT_TRUE(wait_for_file(cap.file("captured"))) << mta.maillog();
    std::string raw = read_file(cap.file("captured"));
    EXPECT_NE(raw.find("\r\n..leading dot\r\n"), std::string::npos) << raw;
    EXPECT_NE(raw.find("\r\nbare\r\nlf\r\n"), std::string::npos) << raw;
    EXPECT_NE(raw.find("\r\nbare cr\r\n"), std::string::npos) << raw;
    EXPECT_NE(raw.find("\r\n..\r\n"), std::string::npos) << "the lone dot must go out stuffed: " << raw;
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '\r') {
            ASSERT_TRUE(i + 1 < raw.size() && raw[i + 1] == '\n') << "bare CR at " << i;
        }
        if (raw[i] == '\n') {
            ASSERT_TRUE(i > 0 && raw[i - 1] == '\r') << "bare LF at " << i;
        }
    }
    EXPECT_TRUE(mta.maillog_has("to=<friend@remote.example>, relay=127.0.0.1[127.0.0.1]:" + std::to_string(port)));
    EXPECT_TRUE(mta.maillog_has("status=sent (250 2.0.0 captured)"));
}

TEST(MtaDelivery, AHardRefusalBouncesToTheSenderWithADeliveryStatusReport) {
    RefusingNexthop sink;
    MtaInstance mta(sink.options());
    auto r = run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(mta.port()), "--local-interface",
                  "127.0.0.2", "--from", "alice@example.org", "--to", "nobody@remote.test", "--header",
                  "Subject: will bounce"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto files = mta.wait_for_mail("alice", 1);
    ASSERT_EQ(files.size(), 1u) << mta.maillog();
    std::string dsn = read_file(files[0]);
    EXPECT_NE(dsn.find("Content-Type: multipart/report; report-type=delivery-status;"), std::string::npos) << dsn;
    EXPECT_NE(dsn.find("Content-Type: message/delivery-status"), std::string::npos) << dsn;
    EXPECT_NE(dsn.find("Final-Recipient: rfc822; nobody@remote.test"), std::string::npos) << dsn;
    EXPECT_NE(dsn.find("Action: failed"), std::string::npos) << dsn;
    EXPECT_NE(dsn.find("Status: 5."), std::string::npos) << dsn;
    EXPECT_NE(dsn.find("Subject: will bounce"), std::string::npos) << "the original headers: " << dsn;
    EXPECT_TRUE(mta.maillog_has("status=bounced"));
    EXPECT_TRUE(mta.maillog_has("sender non-delivery notification"));
}

TEST(MtaDelivery, NoBounceToTheNullSender) {
    RefusingNexthop sink;
    MtaInstance mta(sink.options());
    auto r = run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(mta.port()), "--local-interface",
                  "127.0.0.2", "--from", "<>", "--to", "nobody@remote.test"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(mta.maillog_has("status=bounced"));
    EXPECT_TRUE(mta.maillog_has(": removed"));
    EXPECT_EQ(mta.maillog().find("non-delivery notification"), std::string::npos) << mta.maillog();
}

TEST(MtaDelivery, VirtualAliasesExpandToEveryTarget) {
    mtatest::Options o;
    MtaInstance probe(o);
    probe.dir().write("valias", "sales@example.org alice@example.org, bob@example.org\n");
    o.main_cf = "virtual_alias_maps = texthash:" + probe.dir().file("valias") + "\n"
                "virtual_alias_domains =\n";
    probe.rewrite_main_cf(o.main_cf);
    probe.stop();
    probe.start();
    auto r = run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(probe.port()), "--from",
                  "x@remote.example", "--to", "sales@example.org"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(probe.wait_for_mail("alice", 1).size(), 1u);
    EXPECT_EQ(probe.wait_for_mail("bob", 1).size(), 1u);
    EXPECT_TRUE(probe.maillog_has("to=<alice@example.org>, orig_to=<sales@example.org>"));
}

// RFC 3461 5.2: a server that offers DSN gets the client's RET, ENVID,
// NOTIFY and ORCPT (xtext again), and reports itself: no notice from us.
TEST(MtaDelivery, DsnParametersArePassedOnToAServerThatOffersDsn) {
    TempDir cap;
    int port = free_port();
    Process server = capture_server(cap, port, true);
    mtatest::Options o;
    o.main_cf = "relayhost = [127.0.0.1]:" + std::to_string(port) + "\n";
    MtaInstance mta(o);
    LineClient c("127.0.0.2", 0, "127.0.0.1", mta.port());
    c.reply();
    cmd(c, "EHLO trusted.example");
    ASSERT_EQ(cmd(c, "MAIL FROM:<alice@example.org> RET=HDRS ENVID=env+2B1"), "250 2.1.0 Ok");
    ASSERT_EQ(cmd(c, "RCPT TO:<friend@remote.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Friend+2Bx@remote.example"),
              "250 2.1.5 Ok");
    ASSERT_EQ(cmd(c, "DATA").substr(0, 4), "354 ");
    c.send("Subject: dsn on\r\n\r\nbody\r\n.\r\n");
    EXPECT_EQ(c.reply().substr(0, 24), "250 2.0.0 Ok: queued as ");
    ASSERT_TRUE(wait_for_file(cap.file("captured"))) << mta.maillog();
    std::string commands = read_file(cap.file("captured.commands"));
    EXPECT_NE(commands.find("MAIL FROM:<alice@example.org> RET=HDRS ENVID=env+2B1\r\n"), std::string::npos) << commands;
    EXPECT_NE(commands.find("RCPT TO:<friend@remote.example> NOTIFY=SUCCESS,FAILURE "
                            "ORCPT=rfc822;Friend+2Bx@remote.example\r\n"),
              std::string::npos)
        << commands;
    ASSERT_TRUE(mta.maillog_has("status=sent (250 2.0.0 captured)"));
    ASSERT_TRUE(mta.maillog_has(": removed"));
    EXPECT_EQ(mta.maillog().find("delivery status notification"), std::string::npos) << mta.maillog();
}

// NOTIFY and RET honoured in our own reports: SUCCESS gives a "delivered"
// report with the envelope id and ORCPT, NEVER suppresses the bounce, and
// RET=HDRS returns the header only where the default returns the message.
TEST(MtaDelivery, NotifyAndRetShapeTheReports) {
    RefusingNexthop sink;
    MtaInstance mta(sink.options());
    auto send = [&](const std::string& mail, const std::string& rcpt, const std::string& subject) {
        LineClient c("127.0.0.2", 0, "127.0.0.1", mta.port());
        c.reply();
        cmd(c, "EHLO trusted.example");
        EXPECT_EQ(cmd(c, mail), "250 2.1.0 Ok");
        EXPECT_EQ(cmd(c, rcpt), "250 2.1.5 Ok");
        EXPECT_EQ(cmd(c, "DATA").substr(0, 4), "354 ");
        c.send("Subject: " + subject + "\r\n\r\nthe body of " + subject + "\r\n.\r\n");
        EXPECT_EQ(c.reply().substr(0, 24), "250 2.0.0 Ok: queued as ");
    };
    send("MAIL FROM:<alice@example.org> ENVID=E1", "RCPT TO:<bob@example.org> NOTIFY=SUCCESS ORCPT=rfc822;Bob@example.org",
         "success");
    auto files = mta.wait_for_mail("alice", 1);
    ASSERT_EQ(files.size(), 1u) << mta.maillog();
    std::string report = read_file(files[0]);
    EXPECT_NE(report.find("Subject: Successful Mail Delivery Report"), std::string::npos) << report;
    EXPECT_NE(report.find("Original-Envelope-Id: E1"), std::string::npos) << report;
    EXPECT_NE(report.find("Original-Recipient: rfc822;Bob@example.org"), std::string::npos) << report;
    EXPECT_NE(report.find("Action: delivered"), std::string::npos) << report;
    EXPECT_EQ(mta.wait_for_mail("bob", 1).size(), 1u);

    send("MAIL FROM:<alice@example.org>", "RCPT TO:<nobody@remote.test> NOTIFY=NEVER", "never");
    send("MAIL FROM:<alice@example.org> RET=HDRS", "RCPT TO:<nobody@remote.test>", "headers");
    send("MAIL FROM:<alice@example.org>", "RCPT TO:<nobody@remote.test>", "full");
    files = mta.wait_for_mail("alice", 3);
    ASSERT_EQ(files.size(), 3u) << mta.maillog();
    std::string headers_only, full;
    for (const auto& f : files) {
        std::string m = read_file(f);
        EXPECT_EQ(m.find("Subject: never"), std::string::npos) << "NOTIFY=NEVER: no bounce\n" << m;
        if (m.find("Subject: headers") != std::string::npos) headers_only = m;
        if (m.find("Subject: full") != std::string::npos) full = m;
    }
    EXPECT_NE(headers_only.find("Content-Type: text/rfc822-headers"), std::string::npos) << headers_only;
    EXPECT_EQ(headers_only.find("the body of headers"), std::string::npos) << headers_only;
    EXPECT_NE(full.find("Content-Type: message/rfc822"), std::string::npos) << full;
    EXPECT_NE(full.find("the body of full"), std::string::npos) << full;
    // Three refusals, two bounces: NEVER's was never written.
    auto count = [&](const std::string& text) {
        std::size_t n = 0;
        const std::string log = mta.maillog();
        for (auto p = log.find(text); p != std::string::npos; p = log.find(text, p + 1)) ++n;
        return n;
    };
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (count("to=<nobody@remote.test>") < 3 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling the maillog, bounded
    EXPECT_EQ(count("status=bounced"), 3u) << mta.maillog();
    EXPECT_EQ(count("sender non-delivery notification"), 2u) << mta.maillog();
}

// access(5) FILTER transport:destination: the whole message goes to the
// filter (an after-queue content filter), not to the recipient's mailbox.
TEST(MtaDelivery, AFilterActionSendsTheMessageToTheFilter) {
    TempDir cap;
    int port = free_port();
    Process server = capture_server(cap, port);
    mtatest::Options o;
    o.main_cf = "smtpd_recipient_restrictions = check_recipient_access inline:{ "
                "{ alice@example.org = FILTER smtp:[127.0.0.1]:" + std::to_string(port) + " } }\n";
    MtaInstance mta(o);
    auto r = run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(mta.port()), "--from",
                  "someone@remote.example", "--to", "alice@example.org,bob@example.org", "--header",
                  "Subject: through the filter"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_TRUE(wait_for_file(cap.file("captured"))) << mta.maillog();
    EXPECT_NE(read_file(cap.file("captured")).find("Subject: through the filter"), std::string::npos);
    std::string commands = read_file(cap.file("captured.commands"));
    EXPECT_NE(commands.find("RCPT TO:<alice@example.org>"), std::string::npos) << commands;
    EXPECT_NE(commands.find("RCPT TO:<bob@example.org>"), std::string::npos) << "every recipient: " << commands;
    EXPECT_TRUE(mta.maillog_has("to=<alice@example.org>, relay=127.0.0.1[127.0.0.1]:" + std::to_string(port)));
    EXPECT_TRUE(mta.mail_files("alice").empty());
}

// `mta-core queue list` as postqueue -p: why a deferred message waits (the
// server's reply above the recipients it holds back) and until when, then
// the queue's shape by domain and age (qshape).
TEST(MtaDelivery, QueueListShowsWhyAndUntilWhenAndTheShape) {
    DeferringNexthop sink;
    MtaInstance mta(sink.options("minimal_backoff_time = 300s\nmaximal_backoff_time = 600s\n"));
    auto r = run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(mta.port()), "--local-interface",
                  "127.0.0.2", "--from", "alice@example.org", "--to", "a@remote.test,b@remote.test"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_TRUE(mta.maillog_has("status=deferred")) << mta.maillog();
    std::string list;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    do {
        list = mta.command({"queue", "list"}).output;
        if (list.find("(next attempt") != std::string::npos) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the note is written after the attempt
    } while (std::chrono::steady_clock::now() < deadline);
    EXPECT_NE(list.find("\n(450 4."), std::string::npos) << list;
    auto reason = list.find("\n(450 4.");
    auto a = list.find("a@remote.test"), b = list.find("b@remote.test");
    EXPECT_TRUE(reason != std::string::npos && a > reason && b > reason) << list;
    EXPECT_NE(list.find("(next attempt "), std::string::npos) << list;
    EXPECT_NE(list.find("-- 1 Kbytes in 1 Request."), std::string::npos) << list;
    // The shape: one message for remote.test, less than 5 minutes old.
    EXPECT_NE(list.find("TOTAL     1     1     0"), std::string::npos) << list;
    EXPECT_NE(list.find("remote.test     1     1     0"), std::string::npos) << list;
    auto shape = mta.command({"queue", "shape"});
    EXPECT_EQ(shape.exit_code, 0);
    EXPECT_NE(shape.output.find("remote.test     1     1"), std::string::npos) << shape.output;
}

// delay_warning_time: a message still waiting after it tells its sender
// once ("Delayed Mail", Action: delayed), however many tries follow.
TEST(MtaDelivery, ADelayNoticeGoesOutOnceAfterDelayWarningTime) {
    DeferringNexthop sink;
    MtaInstance mta(sink.options("minimal_backoff_time = 1s\nmaximal_backoff_time = 1s\ndelay_warning_time = 1s\n"));
    auto r = run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(mta.port()), "--local-interface",
                  "127.0.0.2", "--from", "alice@example.org", "--to", "late@remote.test", "--header",
                  "Subject: slow one"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto files = mta.wait_for_mail("alice", 1);
    ASSERT_EQ(files.size(), 1u) << mta.maillog();
    std::string notice = read_file(files[0]);
    EXPECT_NE(notice.find("Subject: Delayed Mail (still being retried)"), std::string::npos) << notice;
    EXPECT_NE(notice.find("Action: delayed"), std::string::npos) << notice;
    EXPECT_NE(notice.find("Final-Recipient: rfc822; late@remote.test"), std::string::npos) << notice;
    // Two more deferrals later, still one notice.
    auto deferrals = [&] {
        std::size_t n = 0;
        const std::string log = mta.maillog();
        for (auto p = log.find("to=<late@remote.test>"); p != std::string::npos; p = log.find("to=<late@remote.test>", p + 1))
            ++n;
        return n;
    };
    std::size_t seen = deferrals();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (deferrals() < seen + 2 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the retries are wall-clock time
    ASSERT_GE(deferrals(), seen + 2) << mta.maillog();
    EXPECT_EQ(mta.mail_files("alice").size(), 1u) << mta.maillog();
}

// notify_classes = bounce, 2bounce: the postmaster gets the header of each
// bounce, and a bounce that cannot be returned; never a notice about a notice.
TEST(MtaDelivery, PostmasterNoticesPerNotifyClasses) {
    RefusingNexthop sink;
    mtatest::Options o = sink.options();
    o.main_cf = "transport_maps = inline:{ remote.test=smtp:[127.0.0.1]:" + std::to_string(sink.port) +
                ", gone.test=smtp:[127.0.0.1]:" + std::to_string(sink.port) + " }\n"
                "notify_classes = resource, software, bounce, 2bounce\n"
                "bounce_notice_recipient = postmaster@example.org\n"
                "2bounce_notice_recipient = postmaster@example.org\n";
    MtaInstance mta(o);
    // The sender's own domain refuses too: its bounce cannot be returned.
    auto r = run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(mta.port()), "--local-interface",
                  "127.0.0.2", "--from", "someone@gone.test", "--to", "nobody@remote.test", "--header",
                  "Subject: twice refused"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto files = mta.wait_for_mail("postmaster", 2);
    ASSERT_EQ(files.size(), 2u) << mta.maillog();
    std::string both = read_file(files[0]) + read_file(files[1]);
    EXPECT_NE(both.find("Final-Recipient: rfc822; nobody@remote.test"), std::string::npos) << both;
    EXPECT_NE(both.find("Final-Recipient: rfc822; someone@gone.test"), std::string::npos) << "the double bounce: " << both;
    EXPECT_TRUE(mta.maillog_has("postmaster non-delivery notification"));
    // Nothing more comes: the notices themselves are delivered, and no notice
    // is ever made about a notice.
    EXPECT_TRUE(mta.maillog_has(": removed"));
    EXPECT_EQ(mta.mail_files("postmaster").size(), 2u);
}

// maximal_queue_lifetime (shortened to seconds): a message that only ever
// met 4xx bounces when its time is up, with an RFC 3464 report whose fields
// are read back here.
TEST(MtaDelivery, AMessageStillDeferredAtTheEndOfItsLifetimeBounces) {
    DeferringNexthop sink;
    MtaInstance mta(sink.options("minimal_backoff_time = 1s\nmaximal_backoff_time = 1s\nmaximal_queue_lifetime = 2s\n"));
    auto r = run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(mta.port()), "--local-interface",
                  "127.0.0.2", "--from", "alice@example.org", "--to", "late@remote.test", "--header",
                  "Subject: too late"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto files = mta.wait_for_mail("alice", 1, std::chrono::seconds(20));
    ASSERT_EQ(files.size(), 1u) << mta.maillog();
    std::string dsn = read_file(files[0]);
    // The report's parts and the per-recipient fields (RFC 3464 2.2, 2.3).
    auto field = [&](const std::string& name) {
        auto p = dsn.find("\n" + name + ": ");
        if (p == std::string::npos) return std::string();
        auto e = dsn.find('\n', p + 1);
        std::string v = dsn.substr(p + name.size() + 3, e - p - name.size() - 3);
        if (!v.empty() && v.back() == '\r') v.pop_back();
        return v;
    };
    EXPECT_NE(dsn.find("Content-Type: multipart/report; report-type=delivery-status;"), std::string::npos) << dsn;
    EXPECT_EQ(field("Subject"), "Undelivered Mail Returned to Sender");
    EXPECT_EQ(field("Reporting-MTA"), "dns; mx.test.example");
    EXPECT_EQ(field("Final-Recipient"), "rfc822; late@remote.test");
    EXPECT_EQ(field("Action"), "failed");
    EXPECT_EQ(field("Status").substr(0, 2), "4.") << "the last deferral's status, as Postfix reports it";
    EXPECT_EQ(field("Diagnostic-Code").substr(0, 10), "smtp; 450 ") << dsn;
    EXPECT_NE(dsn.find("Subject: too late"), std::string::npos) << "the original message comes back";
    EXPECT_TRUE(mta.maillog_has("status=bounced"));
    EXPECT_TRUE(mta.maillog_has("status=deferred")) << "it was retried before";
}
