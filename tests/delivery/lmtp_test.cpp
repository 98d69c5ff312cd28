// The built delivery-maildir over LMTP: the verbs and their per-recipient
// replies, PIPELINING, SIZE, virtual and system mailboxes, extension folders,
// unknown users and domains, path traversal, the Maildir files themselves,
// trace headers, quota, tmp/ cleanup, SIGHUP, a full disk (a tmpfs mounted
// by the test) and kill -9 in the middle of a stream of deliveries.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "helpers.h"

namespace {

using namespace std::chrono_literals;
using dtest::Daemon;
using dtest::LineClient;
using dtest::files_in;
using testsupport::TempDir;
using testsupport::read_file;
using json = nlohmann::json;

class DeliveryLmtp : public ::testing::Test {
protected:
    void SetUp() override {
        dir_.write("mailboxes", "# served addresses\nbob@example.org\nalice@example.org  extra words\n"
                                "carol@example.net\n");
        // virtual_base must exist: it is never created, so an unmounted
        // mail volume defers mail instead of filling the root file system.
        std::filesystem::create_directories(vmail());
    }
    std::string vmail() const { return dir_.file("vmail"); }
    std::string maildir(const std::string& user, const std::string& domain = "example.org") const {
        return vmail() + "/" + domain + "/" + user;
    }
    json config(json extra = json::object()) const {
        json c = {{"mailbox_mode", "virtual"},
                  {"virtual_base", vmail()},
                  {"virtual_mailboxes", dir_.file("mailboxes")},
                  {"hostname", "lmtp.test"}};
        for (auto& [k, v] : extra.items()) c[k] = v;
        return c;
    }
    Daemon& start(json extra = json::object()) {
        daemon_ = std::make_unique<Daemon>(dir_, config(std::move(extra)).dump());
        return *daemon_;
    }
    std::unique_ptr<LineClient> connect() {
        auto c = std::make_unique<LineClient>("127.0.0.1", daemon_->port());
        EXPECT_EQ(c->reply().substr(0, 4), "220 ");
        c->send("LHLO client.test\r\n");
        EXPECT_EQ(c->reply().substr(0, 4), "250 ");
        return c;
    }
    // A whole transaction, one command at a time; returns the replies after DATA.
    std::vector<std::string> transaction(LineClient& c, const std::string& from,
                                         const std::vector<std::string>& rcpts,
                                         const std::string& message_crlf,
                                         std::vector<std::string>* rcpt_replies = nullptr) {
        c.send("MAIL FROM:<" + from + ">\r\n");
        EXPECT_EQ(c.reply().substr(0, 3), "250");
        std::size_t accepted = 0;
        for (const auto& r : rcpts) {
            c.send("RCPT TO:<" + r + ">\r\n");
            std::string reply = c.reply();
            if (rcpt_replies) rcpt_replies->push_back(reply);
            if (reply.starts_with("250")) ++accepted;
        }
        std::vector<std::string> out;
        if (accepted == 0) {
            c.send("RSET\r\n");
            EXPECT_EQ(c.reply().substr(0, 3), "250");
            return out;
        }
        c.send("DATA\r\n");
        EXPECT_EQ(c.reply().substr(0, 3), "354");
        c.send(dtest::data_block(message_crlf));
        for (std::size_t i = 0; i < accepted; ++i) out.push_back(c.reply());
        return out;
    }
    std::string only_message(const std::string& md) const {
        auto f = files_in(md + "/new");
        EXPECT_EQ(f.size(), 1u) << md;
        return f.empty() ? "" : read_file(md + "/new/" + f[0]);
    }

    TempDir dir_;
    std::unique_ptr<Daemon> daemon_;
};

const std::string kMessage = "From: a@sender.example\r\nSubject: test\r\n\r\nHello.\r\n";

TEST_F(DeliveryLmtp, LhloAdvertisesTheExtensionsAndHeloIsRefused) {
    start({{"message_size_limit", 50000}});
    LineClient c("127.0.0.1", daemon_->port());
    EXPECT_EQ(c.reply(), "220 lmtp.test LMTP ready");
    c.send("EHLO client.test\r\n");
    EXPECT_EQ(c.reply().substr(0, 9), "500 5.5.1");
    c.send("LHLO client.test\r\n");
    std::vector<std::string> lines;
    while (true) {
        lines.push_back(c.line());
        if (lines.back()[3] == ' ') break;
    }
    std::set<std::string> ext;
    for (auto& l : lines) ext.insert(l.substr(4));
    EXPECT_TRUE(ext.contains("PIPELINING"));
    EXPECT_TRUE(ext.contains("8BITMIME"));
    EXPECT_TRUE(ext.contains("ENHANCEDSTATUSCODES"));
    EXPECT_TRUE(ext.contains("SIZE 50000"));
}

TEST_F(DeliveryLmtp, OneReplyPerAcceptedRecipientAfterData) {
    start();
    auto c = connect();
    std::vector<std::string> rcpt_replies;
    auto replies = transaction(*c, "a@sender.example",
                               {"bob@example.org", "nobody@example.org", "alice@example.org",
                                "bob@not-served.example", "carol@example.net"},
                               kMessage, &rcpt_replies);
    ASSERT_EQ(rcpt_replies.size(), 5u);
    EXPECT_EQ(rcpt_replies[0].substr(0, 9), "250 2.1.5");
    EXPECT_EQ(rcpt_replies[1].substr(0, 9), "550 5.1.1");
    EXPECT_EQ(rcpt_replies[2].substr(0, 9), "250 2.1.5");
    EXPECT_EQ(rcpt_replies[3].substr(0, 9), "550 5.1.2");
    EXPECT_EQ(rcpt_replies[4].substr(0, 9), "250 2.1.5");
    ASSERT_EQ(replies.size(), 3u);
    for (auto& r : replies) EXPECT_EQ(r.substr(0, 9), "250 2.0.0") << r;
    EXPECT_EQ(files_in(maildir("bob") + "/new").size(), 1u);
    EXPECT_EQ(files_in(maildir("alice") + "/new").size(), 1u);
    EXPECT_EQ(files_in(maildir("carol", "example.net") + "/new").size(), 1u);
    EXPECT_FALSE(std::filesystem::exists(maildir("nobody")));
    // Each 250 names the file it wrote (Postfix logs it with status=sent).
    auto bob_file = files_in(maildir("bob") + "/new").at(0);
    EXPECT_EQ(replies[0], "250 2.0.0 Delivered as " + bob_file.substr(0, bob_file.find(',')));
    auto alice_file = files_in(maildir("alice") + "/new").at(0);
    EXPECT_EQ(replies[1], "250 2.0.0 Delivered as " + alice_file.substr(0, alice_file.find(',')));
    c->send("QUIT\r\n");
    EXPECT_EQ(c->reply().substr(0, 3), "221");
    EXPECT_TRUE(c->closed());
}

TEST_F(DeliveryLmtp, PipelinedCommandsGetTheirRepliesInOrder) {
    start();
    auto c = connect();
    // Two transactions: everything up to DATA in one write (RFC 2920).
    c->send("MAIL FROM:<x@sender.example> BODY=8BITMIME SIZE=100\r\nRCPT TO:<bob@example.org>\r\n"
            "RCPT TO:<ghost@example.org>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n");
    EXPECT_EQ(c->reply().substr(0, 3), "250");
    EXPECT_EQ(c->reply().substr(0, 9), "250 2.1.5");
    EXPECT_EQ(c->reply().substr(0, 9), "550 5.1.1");
    EXPECT_EQ(c->reply().substr(0, 9), "250 2.1.5");
    EXPECT_EQ(c->reply().substr(0, 3), "354");
    // The message, the next transaction and NOOP in one write as well.
    c->send(dtest::data_block(kMessage) + "MAIL FROM:<>\r\nRCPT TO:<carol@example.net>\r\nDATA\r\n");
    EXPECT_EQ(c->reply().substr(0, 9), "250 2.0.0");
    EXPECT_EQ(c->reply().substr(0, 9), "250 2.0.0");
    EXPECT_EQ(c->reply().substr(0, 3), "250");
    EXPECT_EQ(c->reply().substr(0, 9), "250 2.1.5");
    EXPECT_EQ(c->reply().substr(0, 3), "354");
    c->send(dtest::data_block(kMessage) + "NOOP\r\nQUIT\r\n");
    EXPECT_EQ(c->reply().substr(0, 9), "250 2.0.0");
    EXPECT_EQ(c->reply().substr(0, 3), "250");
    EXPECT_EQ(c->reply().substr(0, 3), "221");
    EXPECT_EQ(files_in(maildir("bob") + "/new").size(), 1u);
    EXPECT_EQ(files_in(maildir("carol", "example.net") + "/new").size(), 1u);
    EXPECT_TRUE(only_message(maildir("carol", "example.net")).starts_with("Return-Path: <>\n"));
}

TEST_F(DeliveryLmtp, SizeLimitAtMailAndAfterData) {
    start({{"message_size_limit", 2048}});
    auto c = connect();
    c->send("MAIL FROM:<a@sender.example> SIZE=5000\r\n");
    EXPECT_EQ(c->reply().substr(0, 9), "552 5.3.4");
    c->send("MAIL FROM:<a@sender.example> SIZE=abc\r\n");
    EXPECT_EQ(c->reply().substr(0, 9), "501 5.5.4");
    std::string big = "Subject: big\r\n\r\n";
    for (int i = 0; i < 60; ++i) big += std::string(70, 'x') + "\r\n";
    auto replies = transaction(*c, "a@sender.example", {"bob@example.org", "alice@example.org"}, big);
    ASSERT_EQ(replies.size(), 2u);
    for (auto& r : replies) EXPECT_EQ(r.substr(0, 9), "552 5.3.4") << r;
    EXPECT_TRUE(files_in(maildir("bob") + "/new").empty());
    // The session goes on normally afterwards.
    replies = transaction(*c, "a@sender.example", {"bob@example.org"}, kMessage);
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0].substr(0, 9), "250 2.0.0");
}

TEST_F(DeliveryLmtp, SequenceErrorsRsetNoopVrfyAndTooManyErrors) {
    start({{"max_errors", 4}});
    auto c = connect();
    c->send("DATA\r\n");
    EXPECT_EQ(c->reply().substr(0, 9), "503 5.5.1");
    c->send("RCPT TO:<bob@example.org>\r\n");
    EXPECT_EQ(c->reply().substr(0, 9), "503 5.5.1");
    c->send("NOOP\r\n");
    EXPECT_EQ(c->reply().substr(0, 3), "250");
    c->send("VRFY bob\r\n");
    EXPECT_EQ(c->reply().substr(0, 3), "252");
    c->send("MAIL FROM:<a@sender.example>\r\nRCPT TO:<bob@example.org>\r\nRSET\r\nDATA\r\n");
    EXPECT_EQ(c->reply().substr(0, 3), "250");
    EXPECT_EQ(c->reply().substr(0, 3), "250");
    EXPECT_EQ(c->reply().substr(0, 3), "250");
    EXPECT_EQ(c->reply().substr(0, 9), "503 5.5.1");  // RSET dropped the transaction
    c->send("BOGUS\r\n");
    auto last = c->reply();
    EXPECT_TRUE(last.starts_with("5")) << last;
    EXPECT_EQ(c->reply().substr(0, 9), "421 4.7.0");
    EXPECT_TRUE(c->closed());
    EXPECT_TRUE(files_in(maildir("bob") + "/new").empty());
}

TEST_F(DeliveryLmtp, UnixSocketListener) {
    std::string sock = dir_.file("lmtp.sock");
    dir_.write("u.json", config().dump());
    testsupport::Process p({DELIVERY_MAILDIR, "--config", dir_.file("u.json"), "--listen",
                            "unix:" + sock},
                           dir_.file("u.log"));
    testsupport::wait_for_unix(sock);
    LineClient c(sock);
    EXPECT_EQ(c.reply().substr(0, 3), "220");
    c.send("LHLO x\r\n");
    c.reply();
    auto replies = transaction(c, "a@sender.example", {"bob@example.org"}, kMessage);
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0].substr(0, 9), "250 2.0.0");
    int st = p.stop();
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

TEST_F(DeliveryLmtp, TraceHeadersAndContentBelowThemUnchanged) {
    start();
    auto c = connect();
    std::string m = "From: a@sender.example\r\nSubject: dots\r\n\r\n.leading dot\r\n..two\r\n"
                    "From the start\r\n8bit: \xc3\xa9\xff\r\n.\r\n \r\nend";
    auto replies = transaction(*c, "a@sender.example", {"Bob@Example.ORG"}, m);
    ASSERT_EQ(replies.size(), 1u);
    ASSERT_EQ(replies[0].substr(0, 9), "250 2.0.0");
    std::string lf;
    for (std::size_t i = 0; i < m.size(); ++i)
        if (!(m[i] == '\r' && i + 1 < m.size() && m[i + 1] == '\n')) lf += m[i];
    EXPECT_EQ(only_message(maildir("bob")),
              "Return-Path: <a@sender.example>\nDelivered-To: Bob@Example.ORG\n" + lf + "\n");
}

TEST_F(DeliveryLmtp, MaildirFilesFollowTheAlgorithm) {
    start();
    auto c = connect();
    ASSERT_EQ(transaction(*c, "a@sender.example", {"bob@example.org"}, kMessage)[0].substr(0, 3), "250");
    auto md = maildir("bob");
    for (auto sub : {"", "/tmp", "/new", "/cur"}) {
        struct stat st;
        ASSERT_EQ(::stat((md + sub).c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0700u) << sub;
    }
    auto files = files_in(md + "/new");
    ASSERT_EQ(files.size(), 1u);
    std::smatch m;
    ASSERT_TRUE(std::regex_match(files[0], m,
                                 std::regex(R"(\d{10}\.M\d{6}P(\d+)Q\d+\.lmtp\.test,S=(\d+),W=(\d+))")))
        << files[0];
    std::string content = read_file(md + "/new/" + files[0]);
    EXPECT_EQ(std::stoul(m[2]), content.size());
    EXPECT_EQ(std::stoul(m[3]), content.size() + std::count(content.begin(), content.end(), '\n'));
    struct stat st;
    ASSERT_EQ(::stat((md + "/new/" + files[0]).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(st.st_nlink, 1u);  // the tmp/ link is gone
    EXPECT_TRUE(files_in(md + "/tmp").empty());
}

TEST_F(DeliveryLmtp, ExtensionFoldersWhenTheyExist) {
    start();
    std::filesystem::create_directories(maildir("bob") + "/.Work/cur");
    auto c = connect();
    auto replies = transaction(*c, "a@sender.example",
                               {"bob+Work@example.org", "bob+nofolder@example.org", "alice+x@example.org"},
                               kMessage);
    ASSERT_EQ(replies.size(), 3u);
    for (auto& r : replies) EXPECT_EQ(r.substr(0, 9), "250 2.0.0");
    EXPECT_EQ(files_in(maildir("bob") + "/.Work/new").size(), 1u);
    EXPECT_EQ(files_in(maildir("bob") + "/new").size(), 1u);
    EXPECT_EQ(files_in(maildir("alice") + "/new").size(), 1u);
    EXPECT_TRUE(read_file(maildir("bob") + "/.Work/new/" + files_in(maildir("bob") + "/.Work/new")[0])
                    .find("Delivered-To: bob+Work@example.org\n") != std::string::npos);
}

TEST_F(DeliveryLmtp, PathTraversalIsRefusedAndWritesNothing) {
    // Even listed, an unsafe local part never becomes a path.
    dir_.write("mailboxes", "bob@example.org\n\"../escape\"@example.org\n");
    start();
    auto c = connect();
    for (std::string rcpt : {"\"../escape\"@example.org", "bob+..@example.org",
                             "bob+../../../tmp/x@example.org", "bob+.hidden@example.org",
                             "\"bob/../alice\"@example.org", "\"..\"@example.org", "bob+a/b@example.org",
                             "bob@../example.org", "\"bob\\\\x\"@example.org"}) {
        c->send("MAIL FROM:<a@sender.example>\r\nRCPT TO:<" + rcpt + ">\r\n");
        EXPECT_EQ(c->reply().substr(0, 3), "250");
        auto reply = c->reply();
        EXPECT_TRUE(reply.starts_with("5")) << rcpt << " -> " << reply;
        c->send("RSET\r\n");
        EXPECT_EQ(c->reply().substr(0, 3), "250");
    }
    // Nothing was created anywhere: vmail is still empty.
    EXPECT_TRUE(std::filesystem::is_empty(vmail()));
    std::size_t entries = 0;
    for (auto& e : std::filesystem::recursive_directory_iterator(dir_.path())) {
        (void)e;
        ++entries;
    }
    EXPECT_EQ(entries, 4u);  // mailboxes, config, log, vmail
}

TEST_F(DeliveryLmtp, QuotaInMaildirsizeGives552AfterData) {
    start();
    std::filesystem::create_directories(maildir("bob") + "/new");
    std::filesystem::create_directories(maildir("bob") + "/cur");
    std::filesystem::create_directories(maildir("bob") + "/tmp");
    dir_.write("vmail/example.org/bob/maildirsize", "1000S\n0 0\n");
    auto c = connect();
    std::string big = "Subject: big\r\n\r\n" + std::string(1500, 'x') + "\r\n";
    auto replies = transaction(*c, "a@sender.example", {"bob@example.org", "alice@example.org"}, big);
    ASSERT_EQ(replies.size(), 2u);
    EXPECT_EQ(replies[0].substr(0, 9), "552 5.2.2");
    EXPECT_EQ(replies[1].substr(0, 9), "250 2.0.0");  // alice has no quota
    EXPECT_TRUE(files_in(maildir("bob") + "/new").empty());
    EXPECT_TRUE(files_in(maildir("bob") + "/tmp").empty());
    replies = transaction(*c, "a@sender.example", {"bob@example.org"}, kMessage);
    EXPECT_EQ(replies.at(0).substr(0, 9), "250 2.0.0");
    auto content = read_file(maildir("bob") + "/maildirsize");
    EXPECT_TRUE(content.starts_with("1000S\n0 0\n")) << content;
    EXPECT_EQ(std::count(content.begin(), content.end(), '\n'), 3);
}

TEST_F(DeliveryLmtp, StaleTmpFilesAreRemovedOnDelivery) {
    start();
    auto md = maildir("bob");
    for (auto sub : {"/new", "/cur", "/tmp"}) std::filesystem::create_directories(md + sub);
    dir_.write("vmail/example.org/bob/tmp/1.M1P1.crashed", "partial message");
    dir_.write("vmail/example.org/bob/tmp/2.M2P2.recent", "being written");
    auto old = std::filesystem::file_time_type::clock::now() - 37h;
    std::filesystem::last_write_time(md + "/tmp/1.M1P1.crashed", old);
    // tmp/'s access time says when it was last scanned: long ago.
    struct timespec times[2] = {{::time(nullptr) - 9 * 3600, 0}, {0, UTIME_OMIT}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (md + "/tmp").c_str(), times, 0), 0);
    auto c = connect();
    EXPECT_EQ(transaction(*c, "a@sender.example", {"bob@example.org"}, kMessage).at(0).substr(0, 3), "250");
    EXPECT_EQ(files_in(md + "/tmp"), std::vector<std::string>{"2.M2P2.recent"});
}

TEST_F(DeliveryLmtp, SighupReloadsTheMailboxList) {
    start();
    auto c = connect();
    c->send("MAIL FROM:<a@sender.example>\r\nRCPT TO:<dave@example.org>\r\nRSET\r\n");
    c->reply();
    EXPECT_EQ(c->reply().substr(0, 9), "550 5.1.1");
    c->reply();
    dir_.write("mailboxes", "bob@example.org\ndave@example.org\n");
    daemon_->signal(SIGHUP);
    bool ok = dtest::eventually([&] {
        auto c2 = connect();
        c2->send("MAIL FROM:<a@sender.example>\r\nRCPT TO:<dave@example.org>\r\n");
        c2->reply();
        return c2->reply().starts_with("250");
    });
    EXPECT_TRUE(ok) << daemon_->log();
    // alice was removed from the list.
    auto c3 = connect();
    c3->send("MAIL FROM:<a@sender.example>\r\nRCPT TO:<alice@example.org>\r\n");
    c3->reply();
    EXPECT_EQ(c3->reply().substr(0, 9), "550 5.1.1");
    // A broken list is refused and the running one kept.
    dir_.write("mailboxes", "not an address at all@@\n");
    daemon_->signal(SIGHUP);
    EXPECT_TRUE(dtest::eventually([&] { return daemon_->log().find("reload refused") != std::string::npos; }));
    auto c4 = connect();
    c4->send("MAIL FROM:<a@sender.example>\r\nRCPT TO:<dave@example.org>\r\n");
    c4->reply();
    EXPECT_EQ(c4->reply().substr(0, 3), "250");
}

TEST_F(DeliveryLmtp, FullDiskIsATemporaryErrorAndLeavesNoPartialFile) {
    dtest::SmallFs fs(dir_.file("small"), 256 * 1024);
    dir_.write("mailboxes", "bob@example.org\n");
    daemon_ = std::make_unique<Daemon>(
        dir_, config({{"virtual_base", dir_.file("small")}, {"message_size_limit", 4000000}}).dump());
    auto md = dir_.file("small/example.org/bob");
    auto c = connect();
    EXPECT_EQ(transaction(*c, "a@sender.example", {"bob@example.org"}, kMessage).at(0).substr(0, 3), "250");
    std::string big = "Subject: big\r\n\r\n";
    while (big.size() < 600 * 1024) big += std::string(998, 'y') + "\r\n";
    auto replies = transaction(*c, "a@sender.example", {"bob@example.org"}, big);
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0].substr(0, 9), "452 4.3.1") << replies[0];
    EXPECT_EQ(files_in(md + "/new").size(), 1u);  // only the first message
    EXPECT_TRUE(files_in(md + "/tmp").empty());
    // Space is back once the partial file is gone: the next small one fits.
    replies = transaction(*c, "a@sender.example", {"bob@example.org"}, kMessage);
    EXPECT_EQ(replies.at(0).substr(0, 9), "250 2.0.0");
    EXPECT_EQ(files_in(md + "/new").size(), 2u);
    c.reset();
    daemon_.reset();  // stop it before the tmpfs is unmounted
}

TEST_F(DeliveryLmtp, DeliversIntoAFileSystemWithoutOTmpfile) {
    // FUSE (here bindfs) has no O_TMPFILE: the classic named tmp/ file and
    // rename() are used instead, with the same guarantees.
    std::filesystem::create_directories(dir_.file("backing"));
    dtest::BindFs fs(dir_.file("backing"), dir_.file("fuse"));
    errno = 0;
    int probe = ::open(dir_.file("fuse").c_str(), O_TMPFILE | O_WRONLY, 0600);
    if (probe >= 0) ::close(probe);
    ASSERT_LT(probe, 0) << "this file system has O_TMPFILE: the test would not test the fallback";
    ASSERT_EQ(errno, EOPNOTSUPP);
    dir_.write("mailboxes", "bob@example.org\n");
    daemon_ = std::make_unique<Daemon>(dir_, config({{"virtual_base", dir_.file("fuse")}}).dump());
    auto c = connect();
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(transaction(*c, "a@sender.example", {"bob@example.org"}, kMessage).at(0).substr(0, 9),
                  "250 2.0.0");
    // Seen on the backing directory, not through the mount.
    auto md = dir_.file("backing/example.org/bob");
    auto delivered = files_in(md + "/new");
    ASSERT_EQ(delivered.size(), 3u);
    EXPECT_NE(read_file(md + "/new/" + delivered[0]).find("\n\nHello.\n"), std::string::npos);
    EXPECT_TRUE(files_in(md + "/tmp").empty());
    c.reset();
    daemon_.reset();  // stop it before the file system is unmounted
}

TEST_F(DeliveryLmtp, Kill9MidStreamLosesNoAcknowledgedMessageAndLeavesNoPartialOne) {
    dir_.write("mailboxes", "bob@example.org\n");
    start();
    // Four connections stream at once, so the kill lands while several
    // deliveries are between open() and the fsync of new/.
    constexpr int kStreams = 4;
    std::atomic<int> acked{0};
    std::mutex mutex;
    std::vector<int> acknowledged;
    std::string client_error;
    std::vector<std::thread> clients;
    for (int s = 0; s < kStreams; ++s)
        clients.emplace_back([&, s] {
            try {
                auto c = connect();
                for (int n = s; n < 100000; n += kStreams) {
                    std::string m = "Subject: message " + std::to_string(n) + "\r\n\r\n";
                    for (int i = 0; i < 1500; ++i)
                        m += "line " + std::to_string(i) + " of " + std::to_string(n) + "\r\n";
                    m += "END " + std::to_string(n) + "\r\n";
                    auto r = transaction(*c, "a@sender.example", {"bob@example.org"}, m);
                    if (r.empty() || !r[0].starts_with("250")) break;
                    std::lock_guard lock(mutex);
                    acknowledged.push_back(n);
                    ++acked;
                }
            } catch (const std::exception& e) {
                std::lock_guard lock(mutex);
                client_error = e.what();  // expected: the connection dies with the daemon
            }
        });
    bool streamed = dtest::eventually([&] { return acked.load() >= 40; }, 60s);
    daemon_->kill9();
    for (auto& t : clients) t.join();
    ASSERT_TRUE(streamed) << client_error << daemon_->log();
    auto md = maildir("bob");
    std::set<int> on_disk;
    for (auto& f : files_in(md + "/new")) {
        std::string content = read_file(md + "/new/" + f);
        std::smatch m;
        ASSERT_TRUE(std::regex_search(content, m, std::regex("Subject: message (\\d+)\n"))) << f;
        int n = std::stoi(m[1]);
        // Complete: it ends with its own last line and has the size its name says.
        EXPECT_TRUE(content.ends_with("END " + std::to_string(n) + "\n")) << f;
        EXPECT_TRUE(f.find(",S=" + std::to_string(content.size()) + ",") != std::string::npos) << f;
        on_disk.insert(n);
    }
    ASSERT_GE(acknowledged.size(), 40u);
    for (int n : acknowledged) EXPECT_TRUE(on_disk.contains(n)) << "acknowledged message " << n << " lost";
    // At most the deliveries in flight were written but not acknowledged.
    EXPECT_LE(on_disk.size(), acknowledged.size() + kStreams);
    EXPECT_LE(files_in(md + "/tmp").size(), static_cast<std::size_t>(kStreams));
}

TEST_F(DeliveryLmtp, SystemMailboxesWrittenAsTheUser) {
    dtest::SystemUser user(dir_.file("homes"));
    start({{"mailbox_mode", "system"}, {"local_domains", {"example.test"}}});
    auto c = connect();
    std::vector<std::string> rr;
    auto replies = transaction(*c, "a@sender.example",
                               {user.name() + "@example.test", "no-such-user-xyz@example.test",
                                user.name() + "@other.test", user.name() + "+lists@Example.Test"},
                               kMessage, &rr);
    ASSERT_EQ(rr.size(), 4u);
    EXPECT_EQ(rr[1].substr(0, 9), "550 5.1.1");
    EXPECT_EQ(rr[2].substr(0, 9), "550 5.1.2");
    ASSERT_EQ(replies.size(), 2u);
    for (auto& r : replies) EXPECT_EQ(r.substr(0, 9), "250 2.0.0") << r << daemon_->log();
    std::string md = user.home() + "/Maildir";
    auto files = files_in(md + "/new");
    ASSERT_EQ(files.size(), 2u);
    for (std::string p : {md, md + "/new", md + "/new/" + files[0], md + "/tmp"}) {
        struct stat st;
        ASSERT_EQ(::stat(p.c_str(), &st), 0) << p;
        EXPECT_EQ(st.st_uid, user.uid()) << p;
        EXPECT_EQ(st.st_gid, user.gid()) << p;
    }
    // A home the user cannot write to is a temporary failure, not a root write.
    ASSERT_EQ(::chown(user.home().c_str(), 0, 0), 0);
    std::filesystem::remove_all(md);
    replies = transaction(*c, "a@sender.example", {user.name() + "@example.test"}, kMessage);
    EXPECT_EQ(replies.at(0).substr(0, 9), "451 4.3.0");
    EXPECT_FALSE(std::filesystem::exists(md));
}

TEST_F(DeliveryLmtp, SigtermFinishesAndExitsZero) {
    start();
    auto c = connect();
    EXPECT_EQ(transaction(*c, "a@sender.example", {"bob@example.org"}, kMessage).at(0).substr(0, 3), "250");
    int st = daemon_->stop();
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

TEST_F(DeliveryLmtp, AMessageStreamingAcrossSigtermIsFinishedAnsweredAndDelivered) {
    start({{"drain_timeout_ms", 20000}});
    auto c = connect();
    auto idle = connect();
    c->send("MAIL FROM:<a@sender.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    EXPECT_EQ(c->reply().substr(0, 3), "250");
    EXPECT_EQ(c->reply().substr(0, 3), "250");
    EXPECT_EQ(c->reply().substr(0, 3), "354");
    c->send("From: a@sender.example\r\nSubject: streamed\r\n\r\n");
    for (int i = 0; i < 100; ++i) c->send("line " + std::to_string(i) + " before SIGTERM\r\n");
    daemon_->signal(SIGTERM);
    // A connection outside a transaction is told and closed at once.
    EXPECT_EQ(idle->reply().substr(0, 9), "421 4.3.2");
    EXPECT_TRUE(idle->closed());
    ASSERT_TRUE(dtest::eventually([&] { return daemon_->log().find("draining") != std::string::npos; }));
    // The message goes on arriving after the drain began, and is delivered.
    for (int i = 0; i < 100; ++i) c->send("line " + std::to_string(i) + " after SIGTERM\r\n");
    c->send(".\r\n");
    EXPECT_EQ(c->reply().substr(0, 9), "250 2.0.0");
    EXPECT_EQ(c->reply().substr(0, 9), "421 4.3.2");
    EXPECT_TRUE(c->closed());
    int st = daemon_->wait(10s);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
    std::string m = only_message(maildir("bob"));
    EXPECT_NE(m.find("line 99 before SIGTERM\n"), std::string::npos);
    EXPECT_NE(m.find("line 99 after SIGTERM\n"), std::string::npos);
}

TEST_F(DeliveryLmtp, TheFinalDotSentJustBeforeSigtermIsAnswered) {
    for (int run = 0; run < 5; ++run) {
        start({{"drain_timeout_ms", 20000}});
        auto c = connect();
        c->send("MAIL FROM:<a@sender.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
        for (int i = 0; i < 3; ++i) c->reply();
        // Megabytes, so the end of the message is still in the socket
        // buffers, unread, when the signal arrives.
        std::string body = "Subject: big\r\n\r\n";
        while (body.size() < 4 * 1024 * 1024) body += std::string(998, 'x') + "\r\n";
        c->send(dtest::data_block(body));
        daemon_->signal(SIGTERM);
        EXPECT_EQ(c->reply().substr(0, 9), "250 2.0.0") << run;
        EXPECT_EQ(c->reply().substr(0, 9), "421 4.3.2") << run;
        int st = daemon_->wait(10s);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
        EXPECT_EQ(files_in(maildir("bob") + "/new").size(), static_cast<std::size_t>(run + 1));
    }
}

TEST_F(DeliveryLmtp, ATransactionUnfinishedAtTheDrainTimeoutGets421BeforeTheClose) {
    start({{"drain_timeout_ms", 300}});
    auto c = connect();
    c->send("MAIL FROM:<a@sender.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    for (int i = 0; i < 3; ++i) c->reply();
    c->send("Subject: never finished\r\n\r\nsome of the body\r\n");
    auto signalled = std::chrono::steady_clock::now();
    daemon_->signal(SIGTERM);
    EXPECT_EQ(c->reply(5s).substr(0, 9), "421 4.3.2");
    EXPECT_GE(std::chrono::steady_clock::now() - signalled, 300ms);
    EXPECT_TRUE(c->closed());
    int st = daemon_->wait(10s);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
    EXPECT_TRUE(files_in(maildir("bob") + "/new").empty());
}

TEST_F(DeliveryLmtp, AFullTableClosesTheIdleConnectionNeverATransaction) {
    start({{"max_connections", 2}});
    auto idle = connect();
    auto busy = connect();
    busy->send("MAIL FROM:<a@sender.example>\r\n");
    EXPECT_EQ(busy->reply().substr(0, 3), "250");
    // Full: the idle connection is told and closed; the new one is greeted.
    auto fresh = connect();
    EXPECT_EQ(idle->reply().substr(0, 9), "421 4.3.2");
    EXPECT_TRUE(idle->closed());
    fresh->send("MAIL FROM:<b@sender.example>\r\n");
    EXPECT_EQ(fresh->reply().substr(0, 3), "250");
    // Both in a transaction: a new connection is refused, neither is closed.
    LineClient refused("127.0.0.1", daemon_->port());
    EXPECT_EQ(refused.reply().substr(0, 9), "421 4.3.2");
    EXPECT_TRUE(refused.closed());
    for (auto* c : {busy.get(), fresh.get()}) {
        c->send("RCPT TO:<bob@example.org>\r\nDATA\r\n");
        EXPECT_EQ(c->reply().substr(0, 3), "250");
        EXPECT_EQ(c->reply().substr(0, 3), "354");
        c->send(dtest::data_block(kMessage));
        EXPECT_EQ(c->reply().substr(0, 9), "250 2.0.0");
    }
    EXPECT_EQ(files_in(maildir("bob") + "/new").size(), 2u);
}

TEST_F(DeliveryLmtp, CheckConfigNamesTheBadKey) {
    dir_.write("bad.json", R"({"mailbox_mode": "virtual", "virtual_base": "relative"})");
    auto r = testsupport::run({DELIVERY_MAILDIR, "--config", dir_.file("bad.json"), "--check-config"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("virtual_base"), std::string::npos) << r.output;
    dir_.write("good.json", config().dump());
    r = testsupport::run({DELIVERY_MAILDIR, "--config", dir_.file("good.json"), "--check-config"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
