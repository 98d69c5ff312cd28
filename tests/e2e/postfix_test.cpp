// End to end through a real Postfix configured with deploy/postfix/*.cf and
// the daemons configured from deploy/config/*.json: what a user who pastes
// the snippet gets, checked on SMTP replies and on the delivered Maildir
// files. Each test runs its own stack in its own network namespace.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "stack.h"

namespace {

using namespace std::chrono;
using e2e::Daemon;
using e2e::Mail;
using e2e::send_mail;
using e2e::Stack;

bool starts_with(const std::string& s, const std::string& prefix) {
    return s.rfind(prefix, 0) == 0;
}

class PostfixE2E : public ::testing::Test {
protected:
    static void SetUpTestSuite() { e2e::enter_private_network(); }
};

TEST_F(PostfixE2E, NewTripletIsGreylistedAndTheRetryIsDeliveredWithHeaders) {
    Stack::Options options;
    options.greylist_delay_seconds = 2;
    Stack stack(options);
    Mail mail;
    mail.port = stack.smtp_port();
    mail.from = "sender@pass.example";
    mail.to = {"alice@example.org"};
    mail.subject = "greylisted-then-delivered";

    auto before_first = steady_clock::now();
    auto first = send_mail(mail);
    auto after_first = steady_clock::now();
    std::string rcpt = first.reply_to("RCPT TO:<alice@example.org>");
    EXPECT_TRUE(starts_with(rcpt, "450 4.7.1")) << first.transcript << stack.diagnostics();
    EXPECT_NE(rcpt.find("Greylisted"), std::string::npos) << rcpt;

    // Within the delay the triplet is still refused. The triplet's first-seen
    // time is at least before_first, so an attempt that ended before
    // before_first + delay was surely early.
    auto early = send_mail(mail);
    if (steady_clock::now() < before_first + seconds(options.greylist_delay_seconds)) {
        EXPECT_TRUE(starts_with(early.reply_to("RCPT TO:<alice@example.org>"), "450 4.7.1"))
            << early.transcript;
    }

    // Waiting out the greylisting delay is the behaviour under test.
    std::this_thread::sleep_until(after_first + seconds(options.greylist_delay_seconds) +
                                  milliseconds(300));
    auto retry = send_mail(mail);
    ASSERT_EQ(retry.exit_code, 0) << retry.transcript << stack.diagnostics();
    EXPECT_TRUE(starts_with(retry.reply_to("RCPT TO:<alice@example.org>"), "250"));
    EXPECT_TRUE(starts_with(retry.reply_to("."), "250 2.0.0 Ok: queued as"));

    std::string delivered = stack.wait_for_delivery("alice", "greylisted-then-delivered");
    ASSERT_FALSE(delivered.empty()) << stack.diagnostics();
    EXPECT_NE(delivered.find("\nX-Greylist: delayed "), std::string::npos) << delivered;
    EXPECT_NE(delivered.find("\nReceived-SPF: Pass "), std::string::npos) << delivered;
    EXPECT_NE(delivered.find("identity=mailfrom"), std::string::npos) << delivered;
    EXPECT_NE(delivered.find("Hello from the end-to-end test."), std::string::npos);
    EXPECT_EQ(stack.delivered_count("alice"), 1u);
}

TEST_F(PostfixE2E, SpfFailIsRejectedWith550) {
    Stack stack;
    Mail mail;
    mail.port = stack.smtp_port();
    mail.from = "forger@fail.example";
    mail.to = {"bob@example.org"};
    auto r = send_mail(mail);
    std::string rcpt = r.reply_to("RCPT TO:<bob@example.org>");
    EXPECT_TRUE(starts_with(rcpt, "550 5.7")) << r.transcript << stack.diagnostics();
    EXPECT_NE(rcpt.find("SPF"), std::string::npos) << rcpt;
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(stack.maillog().find("NOQUEUE: reject: RCPT from"), std::string::npos);
    // Refused by SPF before greylisting: the greylist daemon never saw it.
    EXPECT_EQ(stack.log_of(Daemon::greylist).find("fail.example"), std::string::npos)
        << stack.log_of(Daemon::greylist);
    EXPECT_EQ(stack.delivered_count("bob"), 0u);

    // An unknown mailbox is refused before SPF and greylisting are asked.
    Mail unknown = mail;
    unknown.from = "sender@pass.example";
    unknown.to = {"nobody@example.org"};
    auto r2 = send_mail(unknown);
    EXPECT_TRUE(starts_with(r2.reply_to("RCPT TO:<nobody@example.org>"), "550 5.1.1"))
        << r2.transcript;
    EXPECT_EQ(stack.log_of(Daemon::spf).find("nobody@example.org"), std::string::npos);
    EXPECT_EQ(stack.log_of(Daemon::greylist).find("nobody@example.org"), std::string::npos);
}

TEST_F(PostfixE2E, RateLimitDefersRecipientsBeyondTheLimitOfOneSaslUser) {
    Stack::Options options;
    options.rate_limit_recipients = 3;
    Stack stack(options);
    Mail mail;
    mail.port = stack.submission_port();
    mail.user = "sender@example.org";
    mail.password = "secret";
    mail.from = "sender@example.org";
    mail.to = {"alice@example.org", "bob@example.org", "carol@example.org", "dave@example.org"};
    mail.subject = "rate-limited";
    auto r = send_mail(mail);
    EXPECT_TRUE(starts_with(r.reply_to("AUTH PLAIN"), "235 2.7.0")) << r.transcript
                                                                   << stack.diagnostics();
    auto replies = r.replies_to("RCPT TO:");
    ASSERT_EQ(replies.size(), 4u) << r.transcript;
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(starts_with(replies[i], "250")) << replies[i];
    EXPECT_TRUE(starts_with(replies[3], "450 4.7.1")) << r.transcript << stack.diagnostics();
    EXPECT_NE(replies[3].find("Rate limit exceeded"), std::string::npos) << replies[3];
    EXPECT_TRUE(starts_with(r.reply_to("."), "250 2.0.0 Ok: queued as")) << r.transcript;

    for (const char* user : {"alice", "bob", "carol"})
        EXPECT_FALSE(stack.wait_for_delivery(user, "rate-limited").empty())
            << user << "\n" << stack.diagnostics();
    EXPECT_EQ(stack.delivered_count("dave"), 0u);
    // The message and size rules were asked at DATA and END-OF-MESSAGE.
    std::string rl_log = stack.log_of(Daemon::ratelimit);
    EXPECT_NE(rl_log.find("state=DATA client="), std::string::npos) << rl_log;
    EXPECT_NE(rl_log.find("state=END-OF-MESSAGE client="), std::string::npos) << rl_log;

    // The limit is per user: another user is not affected.
    Mail other = mail;
    other.user = "other@example.org";
    other.password = "secret2";
    other.from = "other@example.org";
    other.to = {"dave@example.org"};
    other.subject = "other-user";
    auto r2 = send_mail(other);
    EXPECT_EQ(r2.exit_code, 0) << r2.transcript;
    EXPECT_FALSE(stack.wait_for_delivery("dave", "other-user").empty()) << stack.diagnostics();

    // No login, no mail: the submission port refuses anonymous clients,
    // before TLS and after it.
    Mail anonymous = mail;
    anonymous.user.clear();
    anonymous.to = {"alice@example.org"};
    auto r3 = send_mail(anonymous);
    EXPECT_TRUE(starts_with(r3.reply_to("MAIL FROM:"), "530 5.7.0")) << r3.transcript;
    anonymous.tls = true;
    auto r4 = send_mail(anonymous);
    EXPECT_TRUE(starts_with(r4.reply_to("RCPT TO:<alice@example.org>"), "554 5.7.1"))
        << r4.transcript;
}

TEST_F(PostfixE2E, StoppedDaemonGetsDefaultActionAndARestartedOneIsUsedAgain) {
    Stack stack;
    stack.stop(Daemon::greylist);
    Mail mail;
    mail.port = stack.smtp_port();
    mail.from = "sender@pass.example";
    mail.to = {"bob@example.org"};
    mail.subject = "greylist-down";
    // A new triplet: only default_action=DUNNO lets it through at once.
    auto r = send_mail(mail);
    ASSERT_EQ(r.exit_code, 0) << r.transcript << stack.diagnostics();
    std::string delivered = stack.wait_for_delivery("bob", "greylist-down");
    ASSERT_FALSE(delivered.empty()) << stack.diagnostics();
    EXPECT_EQ(delivered.find("X-Greylist:"), std::string::npos) << delivered;
    // The other services still answered.
    EXPECT_NE(delivered.find("\nReceived-SPF: Pass "), std::string::npos) << delivered;
    std::string log = stack.maillog();
    std::string where = "127.0.0.1:" + std::to_string(stack.port_of(Daemon::greylist));
    EXPECT_NE(log.find("connect to " + where + ": Connection refused"), std::string::npos)
        << log;

    stack.start(Daemon::greylist);
    Mail next = mail;
    next.from = "another@pass.example";
    next.subject = "greylist-back";
    auto r2 = send_mail(next);
    EXPECT_TRUE(starts_with(r2.reply_to("RCPT TO:<bob@example.org>"), "450 4.7.1"))
        << r2.transcript << stack.diagnostics();
    EXPECT_NE(stack.log_of(Daemon::greylist).find("another@pass.example"), std::string::npos);
}

TEST_F(PostfixE2E, ReloadOnSighupKeepsPostfixConnectionsWorking) {
    Stack stack;
    Mail mail;
    mail.port = stack.smtp_port();
    mail.from = "first@pass.example";
    mail.to = {"alice@example.org"};
    auto r = send_mail(mail);
    EXPECT_TRUE(starts_with(r.reply_to("RCPT TO:<alice@example.org>"), "450 4.7.1"))
        << r.transcript << stack.diagnostics();

    // As `systemctl reload` does: new config, SIGHUP. The next request goes
    // over the connection Postfix keeps open, and gets the new text.
    stack.reload(Daemon::greylist, "greylist_text", "Reloaded: retry in %s seconds");
    mail.from = "second@pass.example";
    auto r2 = send_mail(mail);
    std::string rcpt = r2.reply_to("RCPT TO:<alice@example.org>");
    EXPECT_TRUE(starts_with(rcpt, "450 4.7.1")) << r2.transcript << stack.diagnostics();
    EXPECT_NE(rcpt.find("Reloaded: retry in 2 seconds"), std::string::npos) << rcpt;
    std::string where = "127.0.0.1:" + std::to_string(stack.port_of(Daemon::greylist));
    EXPECT_EQ(stack.maillog().find("problem talking to server " + where), std::string::npos)
        << stack.maillog();
}

TEST_F(PostfixE2E, MailFromTrustedClientReachesTheMaildirThroughLmtp) {
    Stack stack;
    Mail mail;
    mail.port = stack.smtp_port();
    mail.client_ip = "127.0.0.2";  // in mynetworks: no SPF, no greylisting
    mail.helo = "relay.example.org";
    mail.from = "app@example.org";
    mail.to = {"erin@example.org"};
    mail.subject = "trusted-lmtp";
    mail.body = "A line\n.leading dot\nlast line";
    auto r = send_mail(mail);
    ASSERT_EQ(r.exit_code, 0) << r.transcript << stack.diagnostics();
    std::string delivered = stack.wait_for_delivery("erin", "trusted-lmtp");
    ASSERT_FALSE(delivered.empty()) << stack.diagnostics();
    EXPECT_TRUE(starts_with(delivered, "Return-Path: <app@example.org>\n")) << delivered;
    EXPECT_NE(delivered.find("\nDelivered-To: erin@example.org\n"), std::string::npos)
        << delivered;
    EXPECT_NE(delivered.find("\n.leading dot\n"), std::string::npos) << delivered;
    EXPECT_EQ(delivered.find("Received-SPF"), std::string::npos);
    EXPECT_EQ(delivered.find("X-Greylist"), std::string::npos);
    // Postfix logged the LMTP delivery to delivery-maildir as sent.
    std::string log = stack.maillog();
    EXPECT_NE(log.find("relay=127.0.0.1[127.0.0.1]:" +
                       std::to_string(stack.port_of(Daemon::delivery))),
              std::string::npos)
        << log;
    EXPECT_NE(log.find("status=sent"), std::string::npos) << log;
    // An unknown mailbox is refused at RCPT, never bounced later.
    Mail unknown = mail;
    unknown.to = {"nobody@example.org"};
    auto r2 = send_mail(unknown);
    EXPECT_TRUE(starts_with(r2.reply_to("RCPT TO:<nobody@example.org>"), "550 5.1.1"))
        << r2.transcript;
}

}  // namespace
