// Interoperability with programs nobody here wrote: a real Postfix (private
// config, queue and ports on loopback) delivering to the LMTP server through
// virtual_transport and to the delivery command through mailbox_command,
// and Dovecot's IMAP server reading what was delivered, byte for byte below
// the headers delivery adds. Needs root and the postfix and dovecot-imapd
// packages; a missing program fails the test.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "helpers.h"
#include "support/postfix_instance.h"

namespace {

using namespace std::chrono_literals;
using dtest::LineClient;
using dtest::files_in;
using testsupport::TempDir;
using testsupport::read_file;
using json = nlohmann::json;

void must(const std::vector<std::string>& argv) {
    auto r = testsupport::run(argv);
    if (r.exit_code != 0) {
        std::string cmd;
        for (auto& a : argv) cmd += a + " ";
        throw std::runtime_error(cmd + "failed: " + r.output);
    }
}

void write(const std::string& path, const std::string& content) {
    std::ofstream(path) << content;
}

// A private Postfix instance: smtpd on a free loopback port, virtual domain
// example.org over LMTP to lmtp_port, local domain example.test through
// mailbox_command.
class Postfix {
public:
    Postfix(const TempDir& dir, int lmtp_port) : instance_(dir), smtp_port_(testsupport::free_port()) {
        write(dir.file("vmailbox"), "bob@example.org x\nghost@example.org x\n");
        instance_.write_config(
            instance_.base_main_cf() +
                "myhostname = mx.example.test\n"
                "mydomain = example.test\n"
                "mydestination = example.test\n"
                "mynetworks = 127.0.0.0/8\n"
                "virtual_mailbox_domains = example.org\n"
                "virtual_mailbox_maps = texthash:" + dir.file("vmailbox") + "\n"
                "virtual_transport = lmtp:inet:127.0.0.1:" + std::to_string(lmtp_port) + "\n"
                "mailbox_command = " DELIVERY_MAILDIR " deliver -f \"$SENDER\" -a \"$RECIPIENT\"\n"
                "recipient_delimiter = +\n"
                "bounce_queue_lifetime = 0\n",
            testsupport::PostfixInstance::master_cf(smtp_port_));
        must({"postfix", "-c", instance_.config_dir(), "check"});
        instance_.start(smtp_port_);
    }
    int smtp_port() const { return smtp_port_; }
    std::string maillog() const { return instance_.maillog(); }

    // Submit one message over SMTP; returns the final reply after DATA.
    std::string submit(const std::string& from, const std::vector<std::string>& to,
                       const std::string& message_crlf) const {
        LineClient c("127.0.0.1", smtp_port_);
        c.reply();
        c.send("EHLO client.example.test\r\n");
        c.reply();
        c.send("MAIL FROM:<" + from + ">\r\n");
        std::string r = c.reply();
        if (!r.starts_with("250")) return r;
        for (auto& t : to) {
            c.send("RCPT TO:<" + t + ">\r\n");
            r = c.reply();
            if (!r.starts_with("250")) return r;
        }
        c.send("DATA\r\n");
        c.reply();
        c.send(dtest::data_block(message_crlf));
        r = c.reply();
        c.send("QUIT\r\n");
        return r;
    }

private:
    testsupport::PostfixInstance instance_;
    int smtp_port_;
};

// Dovecot's IMAP server on a free loopback port, one static user whose
// Maildir is given.
class Dovecot {
public:
    Dovecot(const TempDir& dir, const dtest::SystemUser& user, const std::string& maildir)
        : dir_(dir), port_(testsupport::free_port()) {
        std::string d = dir.path();
        ::chmod(d.c_str(), 0755);  // login processes run as dovenull
        write(d + "/dovecot.conf",
              "base_dir = " + d + "/dovecot-run\n"
              "state_dir = " + d + "/dovecot-state\n"
              "log_path = " + d + "/dovecot.log\n"
              "protocols = imap\n"
              "listen = 127.0.0.1\n"
              "ssl = no\n"
              "disable_plaintext_auth = no\n"
              "auth_mechanisms = plain\n"
              "default_internal_user = dovecot\n"
              "default_login_user = dovenull\n"
              "mail_location = maildir:" + maildir + "\n"
              "passdb {\n  driver = static\n  args = password=secret\n}\n"
              "userdb {\n  driver = static\n  args = uid=" + std::to_string(user.uid()) +
                  " gid=" + std::to_string(user.gid()) + " home=" + user.home() + "\n}\n"
              "service imap-login {\n  inet_listener imap {\n    address = 127.0.0.1\n    port = " +
                  std::to_string(port_) + "\n  }\n  inet_listener imaps {\n    port = 0\n  }\n}\n");
        process_ = testsupport::Process({"dovecot", "-F", "-c", d + "/dovecot.conf"}, d + "/dovecot.out");
        try {
            testsupport::wait_for_tcp("127.0.0.1", port_, 20s);
        } catch (const std::exception&) {
            throw std::runtime_error("dovecot did not start:\n" + read_file(d + "/dovecot.out") +
                                     read_file(d + "/dovecot.log"));
        }
    }
    ~Dovecot() { process_.stop(); }
    int port() const { return port_; }
    std::string log() const { return read_file(dir_.file("dovecot.log")); }

private:
    const TempDir& dir_;
    int port_;
    testsupport::Process process_;
};

class Imap {
public:
    explicit Imap(int port) : c_("127.0.0.1", port) {
        EXPECT_TRUE(c_.line().starts_with("* OK"));
        expect_ok("LOGIN user secret");
    }
    // Run a command; returns the untagged lines; fails the test unless tagged OK.
    std::vector<std::string> expect_ok(const std::string& command) {
        std::string tag = "a" + std::to_string(++n_);
        c_.send(tag + " " + command + "\r\n");
        std::vector<std::string> lines;
        while (true) {
            std::string l = c_.line();
            if (l.starts_with(tag + " ")) {
                EXPECT_TRUE(l.starts_with(tag + " OK")) << command << ": " << l;
                return lines;
            }
            lines.push_back(l);
        }
    }
    // Message `seq`'s RFC822.SIZE and full content (BODY.PEEK[]).
    std::pair<std::size_t, std::string> fetch(const std::string& mailbox, int seq) {
        expect_ok("SELECT \"" + mailbox + "\"");
        std::string tag = "a" + std::to_string(++n_);
        c_.send(tag + " FETCH " + std::to_string(seq) + " (RFC822.SIZE BODY.PEEK[])\r\n");
        std::string first = c_.line();
        std::smatch m;
        if (!std::regex_search(first, m, std::regex(R"(RFC822\.SIZE (\d+) BODY\[\] \{(\d+)\}$)")))
            throw std::runtime_error("unexpected FETCH reply: " + first);
        std::size_t size = std::stoul(m[1]);
        std::string body = c_.bytes(std::stoul(m[2]));
        while (!c_.line().starts_with(tag + " ")) {
        }
        return {size, body};
    }

private:
    LineClient c_;
    int n_ = 0;
};

class DeliveryInterop : public ::testing::Test {
protected:
    void SetUp() override {
        user_ = std::make_unique<dtest::SystemUser>(dir_.file("homes"));
        std::filesystem::create_directories(dir_.file("vmail"));
        must({"chown", user_->name() + ":", dir_.file("vmail")});
        dir_.write("mailboxes", "bob@example.org\n");
        json c = {{"mailbox_mode", "virtual"},
                  {"virtual_base", dir_.file("vmail")},
                  {"virtual_mailboxes", dir_.file("mailboxes")},
                  {"virtual_user", user_->name()}};
        daemon_ = std::make_unique<dtest::Daemon>(dir_, c.dump());
    }
    std::string bob() const { return dir_.file("vmail/example.org/bob"); }

    TempDir dir_;
    std::unique_ptr<dtest::SystemUser> user_;
    std::unique_ptr<dtest::Daemon> daemon_;
};

// Content that Maildir and IMAP handling could get wrong: leading dots,
// "From " lines, 8-bit bytes, a long line, trailing spaces, an empty last line.
std::string tricky_message(const std::string& marker) {
    std::string m = "From: Sender <s@sender.example>\r\nTo: bob@example.org\r\nSubject: " + marker +
                    "\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\nMessage-ID: <" + marker +
                    "@sender.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: 8bit\r\n\r\n"
                    ".leading dot\r\n..two dots\r\n.\r\nFrom the start of a line\r\n"
                    ">From quoted\r\n8bit: \xc3\xa9\xc3\xa8 \xe2\x82\xac\r\ntrailing spaces   \r\n" +
                    std::string(990, 'L') + "\r\n\tTab\r\n\r\n";
    return m;
}

TEST_F(DeliveryInterop, PostfixDeliversOverLmtpAndBouncesUnknownMailboxes) {
    Postfix postfix(dir_, daemon_->port());
    std::string body = tricky_message("via-postfix-lmtp");
    EXPECT_EQ(postfix.submit("s@sender.example", {"bob@example.org"}, body).substr(0, 3), "250");
    ASSERT_TRUE(dtest::eventually([&] { return files_in(bob() + "/new").size() == 1; }, 30s))
        << postfix.maillog() << daemon_->log();
    std::string file = read_file(bob() + "/new/" + files_in(bob() + "/new")[0]);
    EXPECT_TRUE(file.starts_with("Return-Path: <s@sender.example>\nDelivered-To: bob@example.org\n"))
        << file.substr(0, 300);
    // Below Postfix's Received: header, the message exactly as sent (with
    // Date and Message-ID present, Postfix adds nothing else; LF line ends).
    std::string lf;
    for (std::size_t i = 0; i < body.size(); ++i)
        if (!(body[i] == '\r' && body[i + 1] == '\n')) lf += body[i];
    EXPECT_TRUE(file.ends_with("\n" + lf)) << file;
    EXPECT_NE(file.find("\nReceived: from client.example.test"), std::string::npos) << file;
    EXPECT_TRUE(dtest::eventually([&] {
        return postfix.maillog().find("relay=127.0.0.1[127.0.0.1]:" + std::to_string(daemon_->port())) !=
               std::string::npos;
    }));

    // Listed in Postfix's table but not served by delivery-maildir: the LMTP
    // 550 5.1.1 makes Postfix bounce, not retry.
    EXPECT_EQ(postfix.submit("s@sender.example", {"ghost@example.org"}, body).substr(0, 3), "250");
    EXPECT_TRUE(dtest::eventually([&] {
        auto log = postfix.maillog();
        return log.find("to=<ghost@example.org>") != std::string::npos &&
               log.find("status=bounced") != std::string::npos;
    }, 30s)) << postfix.maillog();
    EXPECT_NE(postfix.maillog().find("550 5.1.1"), std::string::npos);
}

TEST_F(DeliveryInterop, PostfixMailboxCommandDeliversToTheSystemUser) {
    Postfix postfix(dir_, daemon_->port());
    std::string rcpt = user_->name() + "@example.test";
    std::string ext_rcpt = user_->name() + "+lists@example.test";
    std::filesystem::create_directories(user_->home() + "/Maildir/.lists");
    must({"chown", "-R", user_->name() + ":", user_->home() + "/Maildir"});
    std::string body = "Subject: via-mailbox-command\r\n\r\nHello through local(8).\r\n";
    EXPECT_EQ(postfix.submit("s@sender.example", {rcpt}, body).substr(0, 3), "250");
    EXPECT_EQ(postfix.submit("", {ext_rcpt}, body).substr(0, 3), "250");
    std::string md = user_->home() + "/Maildir";
    ASSERT_TRUE(dtest::eventually([&] {
        return files_in(md + "/new").size() == 1 && files_in(md + "/.lists/new").size() == 1;
    }, 30s)) << postfix.maillog();
    std::string file = read_file(md + "/new/" + files_in(md + "/new")[0]);
    auto count = [&](const std::string& f, const std::string& what) {
        std::size_t n = 0;
        for (auto at = f.find(what); at != std::string::npos; at = f.find(what, at + 1)) ++n;
        return n;
    };
    EXPECT_TRUE(file.starts_with("Return-Path: <s@sender.example>\n")) << file;
    EXPECT_EQ(count(file, "Return-Path:"), 1u) << file;
    EXPECT_EQ(count(file, "Delivered-To: " + rcpt + "\n"), 1u) << file;
    EXPECT_FALSE(file.starts_with("From ")) << file;
    EXPECT_TRUE(file.ends_with("\nHello through local(8).\n")) << file;
    struct stat st;
    ASSERT_EQ(::stat((md + "/new/" + files_in(md + "/new")[0]).c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, user_->uid());
    std::string ext = read_file(md + "/.lists/new/" + files_in(md + "/.lists/new")[0]);
    EXPECT_TRUE(ext.starts_with("Return-Path: <>\n")) << ext;
    EXPECT_TRUE(dtest::eventually([&] { return postfix.maillog().find("status=sent (delivered to command") != std::string::npos; }));
}

TEST_F(DeliveryInterop, DovecotReadsTheMessageByteForByteBelowTheAddedHeaders) {
    std::string body = tricky_message("via-lmtp-to-imap");
    std::string body2 = "Subject: to a folder\r\n\r\nIn the Work folder.\r\n";
    {
        Dovecot dovecot(dir_, *user_, bob());
        {
            // An IMAP client creates the folder; delivery finds it by its Maildir++ name.
            Imap imap(dovecot.port());
            imap.expect_ok("CREATE Work");
        }
        LineClient c("127.0.0.1", daemon_->port());
        c.reply();
        c.send("LHLO client.test\r\n");
        c.reply();
        for (auto [rcpt, m] : {std::pair{std::string("bob@example.org"), body},
                               std::pair{std::string("bob+Work@example.org"), body2}}) {
            c.send("MAIL FROM:<s@sender.example>\r\nRCPT TO:<" + rcpt + ">\r\nDATA\r\n");
            EXPECT_EQ(c.reply().substr(0, 3), "250");
            EXPECT_EQ(c.reply().substr(0, 3), "250");
            EXPECT_EQ(c.reply().substr(0, 3), "354");
            c.send(dtest::data_block(m));
            EXPECT_EQ(c.reply().substr(0, 9), "250 2.0.0");
        }
        Imap imap(dovecot.port());
        auto [size, content] = imap.fetch("INBOX", 1);
        EXPECT_EQ(content, "Return-Path: <s@sender.example>\r\nDelivered-To: bob@example.org\r\n" + body);
        EXPECT_EQ(size, content.size());  // the ,W= in the file name is right
        auto [size2, content2] = imap.fetch("Work", 1);
        EXPECT_EQ(content2,
                  "Return-Path: <s@sender.example>\r\nDelivered-To: bob+Work@example.org\r\n" + body2);
        EXPECT_EQ(size2, content2.size());
        EXPECT_EQ(dovecot.log().find("Error"), std::string::npos) << dovecot.log();
    }
}

}  // namespace
