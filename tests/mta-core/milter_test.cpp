// mta-core's milter client (smtpd_milters) against filters no one here
// wrote: a python3-milter filter (libmilter underneath) that rejects,
// edits, quarantines or discards as its argv says; a hand-written filter
// that hangs, closes or sends garbage on cue; and the project's own
// policyd-greylist through its milter front end; and non_smtpd_milters on
// mail from the sendmail command. What the client hears and what reaches
// the mailbox (the real delivery-maildir nexthop) are checked.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>
#include <regex>
#include <thread>

#include "../delivery/helpers.h"
#include "mta_instance.h"
#include "support/daemon_process.h"
#include "support/redis_server.h"

using namespace testsupport;
using dtest::LineClient;
using mtatest::MtaInstance;
using mtatest::cmd;

namespace {

std::string script(const std::string& name) { return source_dir() + "/tests/mta-core/" + name; }

// A python3-milter filter on a free port (or a unix socket), stopped by PID.
class PyMilter {
public:
    enum class Listen { inet, unix_socket };
    PyMilter(const TempDir& dir, std::vector<std::string> args, Listen listen = Listen::inet)
        : port_(free_port()), socket_(dir.file("milter.sock")), listen_(listen) {
        std::string where = listen == Listen::inet ? "inet:" + std::to_string(port_) + "@127.0.0.1" : "unix:" + socket_;
        std::vector<std::string> argv{"/usr/bin/python3", script("milter_filter.py"), where, "--record",
                                      dir.file("milter.record")};
        argv.insert(argv.end(), args.begin(), args.end());
        record_ = dir.file("milter.record");
        ::chmod(dir.path().c_str(), 0755);  // mta-core runs as mail_owner: the socket must be reachable
        process_ = Process(argv, dir.file("milter.log"));
        if (listen == Listen::inet)
            wait_for_tcp("127.0.0.1", port_);
        else
            wait_for_unix(socket_);
    }
    ~PyMilter() { process_.kill9(); }  // libmilter waits for its sessions on SIGTERM
    std::string address() const {
        return listen_ == Listen::inet ? "inet:127.0.0.1:" + std::to_string(port_) : "unix:" + socket_;
    }
    std::string record() const { return std::filesystem::exists(record_) ? read_file(record_) : ""; }

private:
    int port_;
    std::string socket_;
    Listen listen_;
    std::string record_;
    Process process_;
};

class FaultMilter {
public:
    explicit FaultMilter(const TempDir& dir, const std::string& mode = "") : port_(free_port()) {
        std::vector<std::string> argv{"/usr/bin/python3", script("milter_fault.py"), std::to_string(port_)};
        if (!mode.empty()) argv.push_back(mode);
        process_ = Process(argv, dir.file("fault.log"));
        wait_for_tcp("127.0.0.1", port_);
    }
    ~FaultMilter() { process_.stop(); }
    std::string address() const { return "inet:127.0.0.1:" + std::to_string(port_); }

private:
    int port_;
    Process process_;
};

std::unique_ptr<LineClient> hello(const MtaInstance& mta) {
    auto c = std::make_unique<LineClient>("127.0.0.1", mta.port());
    EXPECT_EQ(c->reply().substr(0, 4), "220 ");
    c->send("EHLO client.example\r\n");
    EXPECT_EQ(c->reply().substr(0, 4), "250 ");
    return c;
}

// MAIL, the recipients (each must get 250), DATA and the message; the reply
// to the final dot.
std::string send_message(LineClient& c, const std::string& from, const std::vector<std::string>& to,
                         const std::string& message) {
    EXPECT_EQ(cmd(c, "MAIL FROM:<" + from + ">"), "250 2.1.0 Ok");
    for (const auto& r : to) EXPECT_EQ(cmd(c, "RCPT TO:<" + r + ">"), "250 2.1.5 Ok") << r;
    EXPECT_EQ(cmd(c, "DATA").substr(0, 4), "354 ");
    c.send(message + ".\r\n");
    return c.reply();
}

const std::string kMessage =
    "From: sender@remote.example\r\n"
    "Subject: original subject\r\n"
    "Message-ID: <m1@remote.example>\r\n"
    "\r\n"
    "original body line\r\n";

mtatest::Options with_milters(const std::string& milters, const std::string& more = "") {
    mtatest::Options o;
    o.main_cf = "smtpd_milters = " + milters + "\n" + more;
    return o;
}

}  // namespace

TEST(MtaMilter, FilterSeesTheSessionAndRejectsOneRecipientWithItsOwnText) {
    TempDir dir;
    PyMilter filter(dir, {"--reject-rcpt", "bob@example.org", "--reply", "550 5.7.1 bob is not welcome"});
    MtaInstance mta(with_milters(filter.address()));
    auto c = hello(mta);
    ASSERT_EQ(cmd(*c, "MAIL FROM:<sender@remote.example>"), "250 2.1.0 Ok");
    EXPECT_EQ(cmd(*c, "RCPT TO:<alice@example.org>"), "250 2.1.5 Ok");
    EXPECT_EQ(cmd(*c, "RCPT TO:<bob@example.org>"), "550 5.7.1 bob is not welcome");
    EXPECT_EQ(cmd(*c, "DATA").substr(0, 4), "354 ");
    c->send(kMessage + ".\r\n");
    EXPECT_EQ(c->reply().substr(0, 24), "250 2.0.0 Ok: queued as ");
    EXPECT_EQ(cmd(*c, "QUIT"), "221 2.0.0 Bye");
    EXPECT_EQ(mta.wait_for_mail("alice", 1).size(), 1u) << mta.maillog();
    EXPECT_TRUE(mta.mail_files("bob").empty());
    EXPECT_TRUE(mta.maillog_has("NOQUEUE: milter-reject: RCPT from unknown[127.0.0.1]: 550 5.7.1 bob is not welcome; "
                                "from=<sender@remote.example> to=<bob@example.org> proto=ESMTP helo=<client.example>"))
        << mta.maillog();
    std::string seen = filter.record();
    // Postfix's default macros: j, {daemon_name}, v and _ at CONNECT; i from DATA on.
    EXPECT_NE(seen.find("connect [127.0.0.1] 127.0.0.1 j=mx.test.example daemon_name=mx.test.example v=Postfix"),
              std::string::npos) << seen;
    EXPECT_NE(seen.find("_=unknown [127.0.0.1]"), std::string::npos) << seen;
    EXPECT_NE(seen.find("helo client.example"), std::string::npos) << seen;
    EXPECT_NE(seen.find("mail <sender@remote.example>"), std::string::npos) << seen;
    EXPECT_NE(seen.find("rcpt <alice@example.org> rcpt_addr=alice@example.org"), std::string::npos) << seen;
    // The message as stored: our Received: first, then the client's fields.
    EXPECT_NE(seen.find("header Received: from client.example"), std::string::npos) << seen;
    EXPECT_NE(seen.find("header Subject: original subject"), std::string::npos) << seen;
    EXPECT_NE(seen.find("body b'original body line\\r\\n'"), std::string::npos) << seen;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(seen, m, std::regex("eom i=([0-9A-F]+)"))) << seen;
}

TEST(MtaMilter, HeaderEditsReachTheMailboxAndTheNextMilterSeesThem) {
    TempDir dir1, dir2;
    PyMilter first(dir1, {"--add-header", "X-Scanned:by first", "--change-header", "Subject:1:changed subject",
                          "--insert-header", "X-Top:inserted"});
    PyMilter second(dir2, {"--change-header", "Message-ID:1:"});
    MtaInstance mta(with_milters(first.address() + ", " + second.address()));
    auto c = hello(mta);
    EXPECT_EQ(send_message(*c, "sender@remote.example", {"alice@example.org"}, kMessage).substr(0, 24),
              "250 2.0.0 Ok: queued as ");
    auto files = mta.wait_for_mail("alice", 1);
    ASSERT_EQ(files.size(), 1u) << mta.maillog();
    std::string msg = read_file(files[0]);
    EXPECT_NE(msg.find("X-Scanned: by first"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Subject: changed subject"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("original subject"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("Message-ID"), std::string::npos) << "an empty value deletes\n" << msg;
    // Inserted at the top of the message header, before our Received:.
    EXPECT_LT(msg.find("X-Top: inserted"), msg.find("Received: from client.example")) << msg;
    // The second milter saw the first one's work.
    std::string seen = second.record();
    EXPECT_NE(seen.find("header X-Scanned: by first"), std::string::npos) << seen;
    EXPECT_NE(seen.find("header Subject: changed subject"), std::string::npos) << seen;
}

TEST(MtaMilter, BodyReplacedRecipientsEditedAndSenderChanged) {
    TempDir dir;
    PyMilter filter(dir, {"--replace-body", "a new body\\nsecond line\\n", "--add-rcpt", "bob@example.org",
                          "--del-rcpt", "alice@example.org", "--change-from", "changed@remote.example"});
    MtaInstance mta(with_milters(filter.address()));
    auto c = hello(mta);
    EXPECT_EQ(send_message(*c, "sender@remote.example", {"alice@example.org"}, kMessage).substr(0, 24),
              "250 2.0.0 Ok: queued as ");
    auto files = mta.wait_for_mail("bob", 1);
    ASSERT_EQ(files.size(), 1u) << mta.maillog();
    std::string msg = read_file(files[0]);
    // (delivery-maildir stores LF line ends.)
    EXPECT_NE(msg.find("\n\na new body\nsecond line\n"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("original body line"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Return-Path: <changed@remote.example>"), std::string::npos) << msg;
    EXPECT_TRUE(mta.maillog_has("from=<changed@remote.example>")) << mta.maillog();
    EXPECT_TRUE(mta.mail_files("alice").empty());
}

TEST(MtaMilter, QuarantinePutsTheMessageOnHold) {
    TempDir dir;
    PyMilter filter(dir, {"--quarantine", "looks odd"});
    MtaInstance mta(with_milters(filter.address()));
    auto c = hello(mta);
    std::string reply = send_message(*c, "sender@remote.example", {"alice@example.org"}, kMessage);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(reply, m, std::regex("queued as ([0-9A-F]+)"))) << reply;
    EXPECT_TRUE(std::filesystem::exists(mta.queue_dir() + "/hold/" + m[1].str())) << mta.maillog();
    EXPECT_TRUE(mta.maillog_has(m[1].str() + ": milter-hold: END-OF-MESSAGE from unknown[127.0.0.1]: milter triggers "
                                "HOLD action (looks odd); from=<sender@remote.example>"))
        << mta.maillog();
    EXPECT_TRUE(mta.mail_files("alice").empty());
}

TEST(MtaMilter, DiscardAnswers250AndDeliversNothing) {
    TempDir dir;
    PyMilter filter(dir, {"--discard"}, PyMilter::Listen::unix_socket);
    MtaInstance mta(with_milters(filter.address()));
    auto c = hello(mta);
    EXPECT_EQ(send_message(*c, "sender@remote.example", {"alice@example.org"}, kMessage).substr(0, 24),
              "250 2.0.0 Ok: queued as ");
    EXPECT_TRUE(mta.maillog_has("milter-discard: END-OF-MESSAGE from unknown[127.0.0.1]: milter triggers DISCARD action"))
        << mta.maillog();
    EXPECT_TRUE(mta.mail_files("alice").empty());
}

TEST(MtaMilter, TempfailAndCustomRejectAtEndOfMessage) {
    {
        TempDir dir;
        PyMilter filter(dir, {"--tempfail"});
        MtaInstance mta(with_milters(filter.address()));
        auto c = hello(mta);
        EXPECT_EQ(send_message(*c, "sender@remote.example", {"alice@example.org"}, kMessage),
                  "451 4.7.1 Service unavailable - try again later");
        // The session goes on: the next transaction is judged afresh.
        EXPECT_EQ(cmd(*c, "RSET"), "250 2.0.0 Ok");
    }
    {
        TempDir dir;
        PyMilter filter(dir, {"--reply", "554 5.7.0 content refused by policy"});
        MtaInstance mta(with_milters(filter.address()));
        auto c = hello(mta);
        EXPECT_EQ(send_message(*c, "sender@remote.example", {"alice@example.org"}, kMessage),
                  "554 5.7.0 content refused by policy");
        // cleanup(8)'s line: the text without the reply code.
        EXPECT_TRUE(mta.maillog_has("postfix/cleanup[") &&
                    mta.maillog_has("milter-reject: END-OF-MESSAGE from unknown[127.0.0.1]: 5.7.0 content refused by "
                                    "policy; from=<sender@remote.example> proto=ESMTP helo=<client.example>"))
            << mta.maillog();
        EXPECT_TRUE(mta.mail_files("alice").empty());
    }
}

TEST(MtaMilter, UnreachableMilterGetsTheDefaultAction) {
    int port = free_port();  // nothing listens there
    std::string address = "inet:127.0.0.1:" + std::to_string(port);
    {
        MtaInstance mta(with_milters(address));
        auto c = hello(mta);
        EXPECT_EQ(cmd(*c, "MAIL FROM:<sender@remote.example>"), "451 4.7.1 Service unavailable - try again later");
        EXPECT_TRUE(mta.maillog_has("warning: connect to Milter service " + address + ": Connection refused"))
            << mta.maillog();
    }
    {
        // Per-milter settings: this one may be skipped.
        MtaInstance mta(with_milters("{ " + address + ", default_action=accept }"));
        auto c = hello(mta);
        EXPECT_EQ(send_message(*c, "sender@remote.example", {"alice@example.org"}, kMessage).substr(0, 24),
                  "250 2.0.0 Ok: queued as ");
        EXPECT_EQ(mta.wait_for_mail("alice", 1).size(), 1u);
    }
    {
        MtaInstance mta(with_milters(address, "milter_default_action = reject\n"));
        auto c = hello(mta);
        EXPECT_EQ(cmd(*c, "MAIL FROM:<sender@remote.example>"), "550 5.5.0 Service unavailable");
    }
    {
        // A milter that hangs up before the negotiation.
        TempDir dir;
        FaultMilter closing(dir, "close-at-connect");
        MtaInstance mta(with_milters(closing.address()));
        auto c = hello(mta);
        EXPECT_EQ(cmd(*c, "MAIL FROM:<sender@remote.example>"), "451 4.7.1 Service unavailable - try again later");
        // Usually "can't read SMFIC_OPTNEG reply packet header: Connection
        // closed by peer"; a reset may come first, or break the write.
        EXPECT_TRUE(mta.maillog_has("warning: milter " + closing.address() + ": can't ")) << mta.maillog();
        EXPECT_TRUE(mta.maillog_has("SMFIC_OPTNEG")) << mta.maillog();
    }
    {
        // quarantine: accepted into the hold queue.
        MtaInstance mta(with_milters(address, "milter_default_action = quarantine\n"));
        auto c = hello(mta);
        std::string reply = send_message(*c, "sender@remote.example", {"alice@example.org"}, kMessage);
        std::smatch m;
        ASSERT_TRUE(std::regex_search(reply, m, std::regex("queued as ([0-9A-F]+)"))) << reply;
        EXPECT_TRUE(std::filesystem::exists(mta.queue_dir() + "/hold/" + m[1].str())) << mta.maillog();
    }
    {
        // shutdown: 421 and the session ends.
        MtaInstance mta(with_milters(address, "milter_default_action = shutdown\n"));
        LineClient c("127.0.0.1", mta.port());
        EXPECT_EQ(c.reply(), "421 4.7.0 Server closing connection");
        EXPECT_TRUE(c.closed());
    }
}

// A hanging, a closing and a garbage-sending milter each get the default
// action within their timeout, while another session on the same mta-core
// is served at once.
TEST(MtaMilter, MisbehavingMilterGetsTheDefaultActionWhileOtherSessionsGoOn) {
    TempDir dir;
    FaultMilter fault(dir);
    int metrics_port = free_port();
    mtatest::Options o = with_milters("{ " + fault.address() + ", command_timeout=3s, content_timeout=3s }");
    o.args = {"--metrics", "inet:127.0.0.1:" + std::to_string(metrics_port)};
    MtaInstance mta(o);
    wait_for_tcp("127.0.0.1", metrics_port);

    auto hung = hello(mta);
    hung->send("MAIL FROM:<hang@remote.example>\r\n");
    auto start = std::chrono::steady_clock::now();
    {
        // Meanwhile a well-behaved transaction goes through.
        auto other = hello(mta);
        EXPECT_EQ(send_message(*other, "fine@remote.example", {"alice@example.org"}, kMessage).substr(0, 24),
                  "250 2.0.0 Ok: queued as ");
        EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
    }
    EXPECT_EQ(hung->reply(std::chrono::seconds(10)), "451 4.7.1 Service unavailable - try again later");
    auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_GE(waited, std::chrono::milliseconds(2500));
    EXPECT_TRUE(mta.maillog_has("can't read SMFIC_MAIL reply packet header: Connection timed out")) << mta.maillog();

    auto closing = hello(mta);
    EXPECT_EQ(send_message(*closing, "close@remote.example", {"alice@example.org"}, kMessage),
              "451 4.7.1 Service unavailable - try again later");

    auto garbage = hello(mta);
    ASSERT_EQ(cmd(*garbage, "MAIL FROM:<garbage@remote.example>"), "250 2.1.0 Ok");
    EXPECT_EQ(cmd(*garbage, "RCPT TO:<alice@example.org>"), "451 4.7.1 Service unavailable - try again later");
    EXPECT_TRUE(mta.maillog_has("can't read SMFIC_RCPT reply packet header: malformed packet")) << mta.maillog();
    EXPECT_EQ(mta.wait_for_mail("alice", 1).size(), 1u) << "the well-behaved one only";
    // Each failure is counted under its milter and default action.
    auto metrics = run({"curl", "-s", "http://127.0.0.1:" + std::to_string(metrics_port) + "/metrics"});
    EXPECT_NE(metrics.output.find("smtpd_milter_failures_total{milter=\"" + fault.address() +
                                  "\",action=\"tempfail\"} 3"),
              std::string::npos) << metrics.output;
}

TEST(MtaMilter, BadMilterSettingsAreNamedByCheckConfig) {
    MtaInstance mta;
    mta.rewrite_main_cf("smtpd_milters = { inet:127.0.0.1:9, default_action=maybe }\n");
    auto bad_action = mta.command({"--check-config"});
    EXPECT_EQ(bad_action.exit_code, 1) << bad_action.output;
    EXPECT_NE(bad_action.output.find("smtpd_milters inet:127.0.0.1:9: bad default action \"maybe\""),
              std::string::npos) << bad_action.output;
    mta.rewrite_main_cf("smtpd_milters = 127.0.0.1\n");
    auto bad_address = mta.command({"--check-config"});
    EXPECT_EQ(bad_address.exit_code, 1) << bad_address.output;
    EXPECT_NE(bad_address.output.find("smtpd_milters: bad milter address \"127.0.0.1\""), std::string::npos)
        << bad_address.output;
    mta.rewrite_main_cf("non_smtpd_milters = { inet:127.0.0.1:9, command_timeout=soon }\n");
    auto bad_time = mta.command({"--check-config"});
    EXPECT_EQ(bad_time.exit_code, 1) << bad_time.output;
    EXPECT_NE(bad_time.output.find("non_smtpd_milters inet:127.0.0.1:9"), std::string::npos) << bad_time.output;
    mta.rewrite_main_cf("smtpd_milters = { inet:127.0.0.1:9, command_timeout=10s, default_action=accept }\n"
                        "milter_default_action = quarantine\n");
    auto good = mta.command({"--check-config"});
    EXPECT_EQ(good.exit_code, 0) << good.output;
}

// The project's own greylisting daemon behind mta-core through its milter
// front end (not its policy listener): the first attempt is deferred at
// RCPT with the daemon's text, a later one passes.
TEST(MtaMilter, GreylistingThroughPolicydGreylistsMilterFrontEnd) {
    RedisServer redis;
    TempDir gdir;
    int milter_port = free_port();
    DaemonProcess greylist(gdir, DaemonProcess::Options{POLICYD_GREYLIST, "greylist", redis.url(), {}, false},
                           nlohmann::json{{"delay", "1s"},
                                          {"milter", "inet:" + std::to_string(milter_port) + "@127.0.0.1"},
                                          {"whitelist_clients", nlohmann::json::array()},
                                          {"whitelist_recipients", nlohmann::json::array()}});
    wait_for_tcp("127.0.0.1", milter_port);
    MtaInstance mta(with_milters("inet:127.0.0.1:" + std::to_string(milter_port)));
    auto attempt = [&] {
        auto c = hello(mta);
        EXPECT_EQ(cmd(*c, "MAIL FROM:<sender@remote.example>"), "250 2.1.0 Ok");
        std::string reply = cmd(*c, "RCPT TO:<alice@example.org>");
        if (reply.substr(0, 4) != "250 ") return reply;
        EXPECT_EQ(cmd(*c, "DATA").substr(0, 4), "354 ");
        c->send(kMessage + ".\r\n");
        return c->reply();
    };
    std::string first = attempt();
    EXPECT_EQ(first.substr(0, 1), "4") << first;
    EXPECT_NE(first.find("Greylisted"), std::string::npos) << first;
    EXPECT_TRUE(mta.maillog_has("NOQUEUE: milter-reject: RCPT from unknown[127.0.0.1]: " + first)) << mta.maillog();
    std::string later;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        later = attempt();
        if (later.substr(0, 4) == "250 ") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(250));  // the greylist delay is wall-clock time
    }
    EXPECT_EQ(later.substr(0, 24), "250 2.0.0 Ok: queued as ") << later;
    EXPECT_EQ(mta.wait_for_mail("alice", 1).size(), 1u) << mta.maillog();
}

// OpenDKIM signing through mta-core: the signature it adds at the end of
// the message verifies against its public key over what was delivered, so
// milters saw the message exactly as it was stored.
TEST(MtaMilter, OpendkimSignatureVerifiesOnTheDeliveredMessage) {
    TempDir kdir;
    auto gen = run({"opendkim-genkey", "-D", kdir.path(), "-d", "remote.example", "-s", "mail"});
    ASSERT_EQ(gen.exit_code, 0) << gen.output;
    int port = free_port();
    kdir.write("opendkim.conf", "Syslog no\n"
                                "Domain remote.example\n"
                                "Selector mail\n"
                                "KeyFile " + kdir.file("mail.private") + "\n"
                                "Mode s\n"
                                // The key is in a temp dir under the world-writable /tmp.
                                "RequireSafeKeys false\n"
                                "Canonicalization relaxed/simple\n"
                                "InternalHosts 127.0.0.1\n"
                                "Socket inet:" + std::to_string(port) + "@127.0.0.1\n");
    Process opendkim({"/usr/sbin/opendkim", "-f", "-x", kdir.file("opendkim.conf")}, kdir.file("opendkim.log"));
    wait_for_tcp("127.0.0.1", port);
    MtaInstance mta(with_milters("inet:127.0.0.1:" + std::to_string(port)));
    auto c = hello(mta);
    const std::string message =
        "From: Sender <sender@remote.example>\r\n"
        "To: alice@example.org\r\n"
        "Subject: signed\r\n"
        "Date: Mon, 30 Nov 2026 08:00:00 +0000\r\n"
        "Message-ID: <dkim1@remote.example>\r\n"
        "\r\n"
        "first line\r\n"
        "\r\n"
        "  indented line with trailing space \r\n";
    EXPECT_EQ(send_message(*c, "sender@remote.example", {"alice@example.org"}, message).substr(0, 24),
              "250 2.0.0 Ok: queued as ");
    auto files = mta.wait_for_mail("alice", 1);
    ASSERT_EQ(files.size(), 1u) << mta.maillog();
    std::string delivered = read_file(files[0]);
    ASSERT_NE(delivered.find("DKIM-Signature: v=1;"), std::string::npos) << delivered << read_file(kdir.file("opendkim.log"));
    // Verified with dkimpy (python3-dkim), the key given as its DNS answer.
    auto verify = mtatest::python(
        "import dkim, re\n"
        "txt = ''.join(re.findall(r'\"([^\"]*)\"', open('" + kdir.file("mail.txt") + "').read()))\n"
        "msg = open('" + files[0] + "', 'rb').read().replace(b'\\r\\n', b'\\n').replace(b'\\n', b'\\r\\n')\n"
        "dns = lambda name, timeout=5: txt.encode()\n"
        "print('delivered', dkim.verify(msg, dnsfunc=dns))\n"
        "print('tampered', dkim.verify(msg.replace(b'first line', b'first linE'), dnsfunc=dns))\n");
    ASSERT_EQ(verify.exit_code, 0) << verify.output;
    EXPECT_NE(verify.output.find("delivered True"), std::string::npos) << verify.output << delivered;
    EXPECT_NE(verify.output.find("tampered False"), std::string::npos) << verify.output;
    c.reset();  // the session ends, and with it the signer's milter session
    // And OpenDKIM verifying on the receiving side, behind a second
    // mta-core: the signed message, sent on as it was delivered, passes.
    TempDir vdir;
    auto key = mtatest::python("import re\nprint(''.join(re.findall(r'\"([^\"]*)\"', open('" +
                               kdir.file("mail.txt") + "').read())))\n");
    ASSERT_EQ(key.exit_code, 0) << key.output;
    vdir.write("keys", "mail._domainkey.remote.example " + key.output);
    int vport = free_port();
    vdir.write("opendkim.conf", "Syslog no\n"
                                "Mode v\n"
                                "AuthservID mx.test.example\n"
                                "InternalHosts 192.0.2.1\n"  // 127.0.0.1 is verified, not trusted
                                "TestPublicKeys " + vdir.file("keys") + "\n"
                                "Socket inet:" + std::to_string(vport) + "@127.0.0.1\n");
    Process verifier({"/usr/sbin/opendkim", "-f", "-x", vdir.file("opendkim.conf")}, vdir.file("opendkim.log"));
    wait_for_tcp("127.0.0.1", vport);
    MtaInstance receiver(with_milters("inet:127.0.0.1:" + std::to_string(vport)));
    auto sent = run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(receiver.port()), "--from",
                     "sender@remote.example", "--to", "alice@example.org", "--data", files[0]});
    ASSERT_EQ(sent.exit_code, 0) << sent.output;
    auto received = receiver.wait_for_mail("alice", 1);
    ASSERT_EQ(received.size(), 1u) << receiver.maillog();
    std::string checked = read_file(received[0]);
    EXPECT_NE(checked.find("Authentication-Results: mx.test.example;"), std::string::npos) << checked;
    EXPECT_NE(checked.find("dkim=pass"), std::string::npos) << checked << read_file(vdir.file("opendkim.log"));
    // libmilter waits for its sessions on SIGTERM; nothing is left to lose.
    verifier.kill9();
    opendkim.kill9();
}

// Postfix's order with smtpd_delay_reject = yes: the milter sees MAIL before
// the sender restrictions run (at RCPT); a recipient refused by mta-core's
// own restrictions never reaches it.
TEST(MtaMilter, RestrictionsRunBeforeTheMilterAtEachStageAndDelayedAtRcpt) {
    TempDir dir;
    PyMilter filter(dir, {});
    MtaInstance mta(with_milters(filter.address(),
                                 "smtpd_sender_restrictions = check_sender_access inline:{ blocked@remote.example=REJECT }\n"));
    auto c = hello(mta);
    EXPECT_EQ(cmd(*c, "MAIL FROM:<blocked@remote.example>"), "250 2.1.0 Ok");
    std::string refused = cmd(*c, "RCPT TO:<alice@example.org>");
    EXPECT_EQ(refused.substr(0, 4), "554 ") << refused;
    EXPECT_EQ(cmd(*c, "RSET"), "250 2.0.0 Ok");
    EXPECT_EQ(cmd(*c, "MAIL FROM:<fine@remote.example>"), "250 2.1.0 Ok");
    EXPECT_EQ(cmd(*c, "RCPT TO:<bob@example.org>"), "250 2.1.5 Ok");
    EXPECT_EQ(cmd(*c, "QUIT"), "221 2.0.0 Bye");
    std::string seen = filter.record();
    EXPECT_NE(seen.find("mail <blocked@remote.example>"), std::string::npos) << seen;
    EXPECT_EQ(seen.find("rcpt <alice@example.org>"), std::string::npos) << seen;
    EXPECT_NE(seen.find("abort"), std::string::npos) << "RSET aborts the milter's transaction\n" << seen;
    EXPECT_NE(seen.find("rcpt <bob@example.org>"), std::string::npos) << seen;
}

namespace {

// A content filter's two verdicts in one session: the bad message is refused
// with 550 at the end of data (and logged as Postfix logs it), then after
// RSET a clean one is queued; the clean one as delivered is returned.
std::string refused_then_clean(const MtaInstance& mta, const std::string& bad, const std::string& filter_log) {
    auto c = hello(mta);
    std::string refused = send_message(*c, "sender@remote.example", {"alice@example.org"}, bad);
    EXPECT_EQ(refused.substr(0, 4), "550 ") << refused << read_file(filter_log);
    EXPECT_TRUE(mta.maillog_has("milter-reject: END-OF-MESSAGE from unknown[127.0.0.1]: " + refused.substr(4)))
        << mta.maillog();
    EXPECT_EQ(cmd(*c, "RSET"), "250 2.0.0 Ok");
    EXPECT_EQ(send_message(*c, "sender@remote.example", {"alice@example.org"}, kMessage).substr(0, 24),
              "250 2.0.0 Ok: queued as ");
    auto files = mta.wait_for_mail("alice", 1);
    EXPECT_EQ(files.size(), 1u) << mta.maillog();
    return files.size() == 1 ? read_file(files[0]) : std::string();
}

}  // namespace

// clamav-milter with a real clamd whose only signature is the EICAR test
// string, made here with sigtool (nothing is downloaded): the EICAR message
// is refused at the end of DATA, a clean one is queued and marked scanned.
TEST(MtaMilter, ClamavMilterRejectsTheEicarTestFile) {
    TempDir cdir;
    const std::string eicar = R"(X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*)";
    cdir.write("eicar.txt", eicar);
    ASSERT_EQ(::mkdir(cdir.file("db").c_str(), 0755), 0);
    auto hex = run({"sigtool", "--hex-dump"}, eicar);
    ASSERT_EQ(hex.exit_code, 0) << hex.output;
    std::string hex_sig = hex.output;
    hex_sig.erase(std::remove(hex_sig.begin(), hex_sig.end(), '\n'), hex_sig.end());
    cdir.write("db/local.ndb", "Eicar-Test-Local:0:*:" + hex_sig + "\n");
    cdir.write("clamd.conf", "LocalSocket " + cdir.file("clamd.sock") + "\nDatabaseDirectory " + cdir.file("db") +
                                 "\nForeground yes\nLogFile " + cdir.file("clamd.log") + "\n");
    Process clamd({"/usr/sbin/clamd", "-c", cdir.file("clamd.conf")}, cdir.file("clamd.out"));
    wait_for_unix(cdir.file("clamd.sock"), std::chrono::seconds(60));
    int port = free_port();
    cdir.write("clamav-milter.conf", "MilterSocket inet:" + std::to_string(port) + "@127.0.0.1\nClamdSocket unix:" +
                                         cdir.file("clamd.sock") +
                                         "\nForeground yes\nOnInfected Reject\nOnFail Defer\nAddHeader Replace\n"
                                         "LogInfected Basic\nLogFile " + cdir.file("clamav-milter.log") + "\n");
    Process milter({"/usr/sbin/clamav-milter", "-c", cdir.file("clamav-milter.conf")}, cdir.file("clamav-milter.out"));
    wait_for_tcp("127.0.0.1", port);
    MtaInstance mta(with_milters("inet:127.0.0.1:" + std::to_string(port)));
    std::string clean =
        refused_then_clean(mta, "Subject: test\r\n\r\n" + eicar + "\r\n", cdir.file("clamav-milter.log"));
    EXPECT_NE(clean.find("X-Virus-Scanned: clamav-milter"), std::string::npos) << clean;
    EXPECT_NE(clean.find("X-Virus-Status: Clean"), std::string::npos) << clean;
    EXPECT_EQ(clean.find("EICAR"), std::string::npos);
    milter.stop();
    clamd.stop();
}

// spamass-milter with a real spamd (local tests only, no network): the
// GTUBE message is refused with spamass-milter's reply, a clean one is
// queued with SpamAssassin's headers.
TEST(MtaMilter, SpamassMilterRejectsGtube) {
    TempDir sdir;
    int spamd_port = free_port();
    Process spamd({"/usr/sbin/spamd", "--listen=127.0.0.1:" + std::to_string(spamd_port), "--local", "-x",
                   "--max-children=1", "-u", "nobody", "--pidfile=" + sdir.file("spamd.pid"), "-s", "stderr"},
                  sdir.file("spamd.log"));
    wait_for_tcp("127.0.0.1", spamd_port, std::chrono::seconds(60));
    int port = free_port();
    Process milter({"/usr/sbin/spamass-milter", "-p", "inet:" + std::to_string(port) + "@127.0.0.1", "-r", "-1", "--",
                    "-d", "127.0.0.1", "-p", std::to_string(spamd_port)},
                   sdir.file("spamass-milter.log"));
    wait_for_tcp("127.0.0.1", port);
    MtaInstance mta(with_milters("inet:127.0.0.1:" + std::to_string(port)));
    std::string clean = refused_then_clean(mta,
                                           "Subject: buy now\r\n\r\n"
                                           "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n",
                                           sdir.file("spamass-milter.log"));
    EXPECT_NE(clean.find("X-Spam-Checker-Version: SpamAssassin"), std::string::npos) << clean;
    EXPECT_NE(clean.find("X-Spam-Status: No"), std::string::npos) << clean;
    milter.stop();
    spamd.stop();
}

// The protocol's corners, from a filter written by hand: progress replies
// keep a slow milter alive past its timeout, SKIP ends the body, the
// filter's own macro list replaces the configured one, and a bad reply
// code, too many edits or too large a body get the default action.
TEST(MtaMilter, ProgressSkipMacroListsAndLimits) {
    TempDir dir;
    FaultMilter fault(dir);
    MtaInstance mta(with_milters("{ " + fault.address() + ", command_timeout=2s, content_timeout=2s }",
                                 "message_size_limit = 100000\n"));
    auto c = hello(mta);
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(cmd(*c, "MAIL FROM:<slow@remote.example>"), "250 2.1.0 Ok");
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::seconds(3)) << "past the 2 s timeout";
    EXPECT_EQ(cmd(*c, "RSET"), "250 2.0.0 Ok");

    EXPECT_EQ(cmd(*c, "MAIL FROM:<macros@remote.example>"), "250 2.1.0 Ok");
    EXPECT_EQ(cmd(*c, "RCPT TO:<alice@example.org>"), "550 5.7.1 macros j,{mail_addr},{rcpt_addr}");
    EXPECT_EQ(cmd(*c, "RSET"), "250 2.0.0 Ok");

    std::string big_body;
    for (int i = 0; i < 1000; ++i) big_body += std::string(78, 'a' + i % 26) + "\r\n";  // 80,000 bytes: two chunks
    EXPECT_EQ(send_message(*c, "skip@remote.example", {"alice@example.org"}, "Subject: big\r\n\r\n" + big_body)
                  .substr(0, 24),
              "250 2.0.0 Ok: queued as ");

    // A multi-line reply (smfi_setmlreply) reaches the client as one.
    auto multi = hello(mta);
    ASSERT_EQ(cmd(*multi, "MAIL FROM:<multiline@remote.example>"), "250 2.1.0 Ok");
    multi->send("RCPT TO:<alice@example.org>\r\n");
    EXPECT_EQ(multi->line(), "550-5.7.1 first line");
    EXPECT_EQ(multi->line(), "550 5.7.1 second line");

    auto bad = hello(mta);
    ASSERT_EQ(cmd(*bad, "MAIL FROM:<badreply@remote.example>"), "250 2.1.0 Ok");
    EXPECT_EQ(cmd(*bad, "RCPT TO:<alice@example.org>"), "451 4.7.1 Service unavailable - try again later");

    auto edits = hello(mta);
    EXPECT_EQ(send_message(*edits, "edits@remote.example", {"alice@example.org"}, kMessage),
              "451 4.7.1 Service unavailable - try again later");
    EXPECT_TRUE(mta.maillog_has("too many message modifications (limit 1000)")) << mta.maillog();

    auto body = hello(mta);
    EXPECT_EQ(send_message(*body, "bigbody@remote.example", {"alice@example.org"}, kMessage),
              "451 4.7.1 Service unavailable - try again later");
    EXPECT_TRUE(mta.maillog_has("SMFIR_REPLBODY beyond message_size_limit")) << mta.maillog();
}

// Per-listener settings through master.cf -o, as Postfix users write them:
// the submission-style listener names itself ORIGINATING to the milter
// (OpenDKIM's signing cue), and a listener with an empty smtpd_milters
// skips the milter altogether.
TEST(MtaMilter, MasterCfOverridesPerListener) {
    TempDir dir;
    PyMilter filter(dir, {"--reject-rcpt", "bob@example.org"});
    int originating = free_port();
    int unfiltered = free_port();
    mtatest::Options o = with_milters(filter.address());
    o.master_cf = "127.0.0.1:" + std::to_string(originating) +
                  " inet n - n - - smtpd -o milter_macro_daemon_name=ORIGINATING\n"
                  "127.0.0.1:" + std::to_string(unfiltered) + " inet n - n - - smtpd -o smtpd_milters=\n";
    MtaInstance mta(o);
    wait_for_tcp("127.0.0.1", originating);
    wait_for_tcp("127.0.0.1", unfiltered);
    {
        LineClient c("127.0.0.1", originating);
        EXPECT_EQ(c.reply().substr(0, 4), "220 ");
        EXPECT_EQ(cmd(c, "QUIT"), "221 2.0.0 Bye");
    }
    {
        LineClient c("127.0.0.1", unfiltered);
        EXPECT_EQ(c.reply().substr(0, 4), "220 ");
        EXPECT_EQ(cmd(c, "EHLO client.example").substr(0, 4), "250 ");
        EXPECT_EQ(cmd(c, "MAIL FROM:<sender@remote.example>"), "250 2.1.0 Ok");
        EXPECT_EQ(cmd(c, "RCPT TO:<bob@example.org>"), "250 2.1.5 Ok") << "no milter on this listener";
    }
    EXPECT_TRUE(mta.maillog_has("connect from unknown[127.0.0.1]"));
    std::string seen = filter.record();
    EXPECT_NE(seen.find("daemon_name=ORIGINATING"), std::string::npos) << seen;
    EXPECT_EQ(seen.find("rcpt <bob@example.org>"), std::string::npos) << seen;
}

// SIGHUP: a new smtpd_milters applies to sessions that start afterwards; a
// bad milter setting is refused and the running configuration kept.
TEST(MtaMilter, ReloadAddsAMilterAndRefusesABadOne) {
    TempDir dir;
    PyMilter filter(dir, {"--reject-rcpt", "bob@example.org"});
    MtaInstance mta;
    {
        auto c = hello(mta);
        EXPECT_EQ(cmd(*c, "MAIL FROM:<sender@remote.example>"), "250 2.1.0 Ok");
        EXPECT_EQ(cmd(*c, "RCPT TO:<bob@example.org>"), "250 2.1.5 Ok");
    }
    auto wait_log = [&](const std::string& text) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            if (mta.log().find(text) != std::string::npos) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a log file, bounded
        }
        return false;
    };
    mta.rewrite_main_cf("smtpd_milters = " + filter.address() + "\n");
    mta.signal(SIGHUP);
    ASSERT_TRUE(wait_log("configuration reloaded")) << mta.log();
    {
        auto c = hello(mta);
        EXPECT_EQ(cmd(*c, "MAIL FROM:<sender@remote.example>"), "250 2.1.0 Ok");
        EXPECT_EQ(cmd(*c, "RCPT TO:<bob@example.org>"), "550 5.7.1 Command rejected");
    }
    mta.rewrite_main_cf("smtpd_milters = { " + filter.address() + ", default_action=later }\n");
    mta.signal(SIGHUP);
    ASSERT_TRUE(wait_log("reload refused")) << mta.log();
    EXPECT_NE(mta.log().find("bad default action \"later\""), std::string::npos) << mta.log();
    {
        auto c = hello(mta);
        EXPECT_EQ(cmd(*c, "MAIL FROM:<sender@remote.example>"), "250 2.1.0 Ok");
        EXPECT_EQ(cmd(*c, "RCPT TO:<bob@example.org>"), "550 5.7.1 Command rejected") << "the running one kept";
    }
}

// non_smtpd_milters: mail from the sendmail command meets its milters in
// pickup, as Postfix's local mail does: a header added reaches the mailbox;
// a milter's refusal of a recipient is ignored for local mail; a discard
// drops the message (not tested here); a reject at end of message bounces
// it to the sender.
TEST(MtaMilter, NonSmtpdMiltersSeeLocalMail) {
    TempDir fdir;
    PyMilter adds(fdir, {"--add-header", "X-Local-Milter:seen", "--reject-rcpt", "bob@example.org"});
    const std::string bin = std::filesystem::path(MTA_POSTDROP).parent_path().string();
    mtatest::Options o;
    o.main_cf = "myorigin = example.org\ncommand_directory = " + bin + "\nnon_smtpd_milters = " + adds.address() + "\n";
    MtaInstance mta(o);
    auto sent = run({SENDMAIL, "-C", mta.dir().path(), "-f", "alice", "bob"}, "Subject: local\n\nfrom cron\n");
    ASSERT_EQ(sent.exit_code, 0) << sent.output;
    auto files = mta.wait_for_mail("bob", 1);
    ASSERT_EQ(files.size(), 1u) << mta.maillog() << mta.log();
    std::string m = read_file(files[0]);
    EXPECT_NE(m.find("X-Local-Milter: seen"), std::string::npos) << m;
    EXPECT_TRUE(mta.maillog_has("ignoring a refusal of recipient <bob@example.org> of local mail"));
    EXPECT_NE(adds.record().find("helo localhost"), std::string::npos) << adds.record();
}

TEST(MtaMilter, NonSmtpdMilterRejectOfLocalMailBouncesIt) {
    TempDir fdir;
    PyMilter rejects(fdir, {"--reply", "550 5.7.1 no local mail today"});
    const std::string bin = std::filesystem::path(MTA_POSTDROP).parent_path().string();
    mtatest::Options o;
    o.main_cf = "myorigin = example.org\ncommand_directory = " + bin + "\nnon_smtpd_milters = " + rejects.address() + "\n";
    MtaInstance mta(o);
    auto sent = run({SENDMAIL, "-C", mta.dir().path(), "-f", "alice", "bob"}, "Subject: refused\n\nx\n");
    ASSERT_EQ(sent.exit_code, 0) << sent.output;
    ASSERT_TRUE(mta.maillog_has("milter-reject: END-OF-MESSAGE from local: 550 5.7.1 no local mail today"))
        << mta.maillog();
    auto bounce = mta.wait_for_mail("alice", 1);
    ASSERT_EQ(bounce.size(), 1u) << mta.maillog();
    EXPECT_NE(read_file(bounce[0]).find("no local mail today"), std::string::npos);
    EXPECT_TRUE(mta.mail_files("bob").empty());
    EXPECT_TRUE(std::filesystem::is_empty(mta.queue_dir() + "/maildrop"));
}

// A command mta-core does not know goes to the milters (SMFIC_UNKNOWN), as
// Postfix passes it; mta-core answers 500, or the milter's refusal.
TEST(MtaMilter, UnknownCommandsReachTheMilter) {
    TempDir dir;
    PyMilter filter(dir, {});
    MtaInstance mta(with_milters(filter.address()));
    auto c = hello(mta);
    EXPECT_EQ(cmd(*c, "XFOO some argument"), "500 5.5.2 Error: command not recognized");
    EXPECT_EQ(cmd(*c, "NOOP"), "250 2.0.0 Ok");
    EXPECT_NE(filter.record().find("unknown XFOO some argument"), std::string::npos) << filter.record();

    TempDir dir2;
    PyMilter refusing(dir2, {"--reject-unknown"});
    MtaInstance mta2(with_milters(refusing.address()));
    auto c2 = hello(mta2);
    std::string reply = cmd(*c2, "XBAR");
    EXPECT_EQ(reply.substr(0, 4), "550 ") << reply;
    EXPECT_TRUE(mta2.maillog_has("milter-reject: UNKNOWN from unknown[127.0.0.1]")) << mta2.maillog();
}
