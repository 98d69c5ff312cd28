// `delivery-maildir deliver`, the delivery command for Postfix's
// mailbox_command and pipe(8): sysexits.h exit codes for every outcome,
// sender and recipient from flags, arguments or the environment, input
// normalisation, system users, and a full disk.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sysexits.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "helpers.h"

namespace {

using dtest::deliver;
using dtest::files_in;
using testsupport::TempDir;
using testsupport::read_file;
using json = nlohmann::json;

class DeliveryLda : public ::testing::Test {
protected:
    void SetUp() override {
        dir_.write("mailboxes", "bob@example.org\nalice@example.org\n");
        std::filesystem::create_directories(dir_.file("vmail"));
        write_config();
    }
    void write_config(json extra = json::object()) {
        json c = {{"mailbox_mode", "virtual"},
                  {"virtual_base", dir_.file("vmail")},
                  {"virtual_mailboxes", dir_.file("mailboxes")},
                  // The daemon's keys are accepted in the shared file.
                  {"listen", "inet:127.0.0.1:24"},
                  {"log_format", "text"}};
        for (auto& [k, v] : extra.items()) c[k] = v;
        dir_.write("c.json", c.dump());
    }
    std::string conf() const { return dir_.file("c.json"); }
    std::string md(const std::string& user) const { return dir_.file("vmail/example.org/" + user); }
    std::string only_message(const std::string& maildir) const {
        auto f = files_in(maildir + "/new");
        EXPECT_EQ(f.size(), 1u) << maildir;
        return f.empty() ? "" : read_file(maildir + "/new/" + f[0]);
    }
    TempDir dir_;
};

const std::string kMessage = "Subject: lda\n\nbody\n";

TEST_F(DeliveryLda, DeliversWithDovecotLdaFlags) {
    auto r = deliver({"--config", conf(), "-f", "s@sender.example", "-a", "bob@example.org"}, kMessage);
    EXPECT_EQ(r.exit_code, EX_OK) << r.output;
    EXPECT_EQ(only_message(md("bob")),
              "Return-Path: <s@sender.example>\nDelivered-To: bob@example.org\n" + kMessage);
    EXPECT_TRUE(files_in(md("bob") + "/tmp").empty());
}

TEST_F(DeliveryLda, PipeStyleRecipientsAfterDoubleDash) {
    auto r = deliver({"--config", conf(), "-f", "", "--", "bob@example.org", "alice@example.org"}, kMessage);
    EXPECT_EQ(r.exit_code, EX_OK) << r.output;
    EXPECT_TRUE(only_message(md("bob")).starts_with("Return-Path: <>\nDelivered-To: bob@example.org\n"));
    EXPECT_TRUE(only_message(md("alice")).starts_with("Return-Path: <>\nDelivered-To: alice@example.org\n"));
}

TEST_F(DeliveryLda, SenderAndRecipientFromTheEnvironmentAsLocalSetsThem) {
    auto r = deliver({"--config", conf()}, kMessage,
                     {"SENDER=env@sender.example", "RECIPIENT=alice@example.org"});
    EXPECT_EQ(r.exit_code, EX_OK) << r.output;
    EXPECT_TRUE(only_message(md("alice")).starts_with(
        "Return-Path: <env@sender.example>\nDelivered-To: alice@example.org\n"));
}

TEST_F(DeliveryLda, FromLineCrlfAndPostfixTraceHeadersAreNormalised) {
    std::string in = "From s@sender.example Sun Nov 29 10:00:00 2026\r\n"
                     "Return-Path: <s@sender.example>\r\nDelivered-To: bob@example.org\r\n"
                     "Subject: x\r\n\r\nbody\r\n";
    auto r = deliver({"--config", conf(), "-f", "s@sender.example", "-a", "bob@example.org"}, in);
    EXPECT_EQ(r.exit_code, EX_OK) << r.output;
    EXPECT_EQ(only_message(md("bob")),
              "Return-Path: <s@sender.example>\nDelivered-To: bob@example.org\nSubject: x\n\nbody\n");
}

TEST_F(DeliveryLda, ExitCodesForPermanentFailures) {
    auto r = deliver({"--config", conf(), "-f", "s@x.example", "-a", "nobody@example.org"}, kMessage);
    EXPECT_EQ(r.exit_code, EX_NOUSER) << r.output;
    EXPECT_NE(r.output.find("5.1.1"), std::string::npos) << r.output;
    r = deliver({"--config", conf(), "-a", "bob@elsewhere.example"}, kMessage);
    EXPECT_EQ(r.exit_code, EX_NOHOST) << r.output;
    EXPECT_NE(r.output.find("5.1.2"), std::string::npos) << r.output;
    for (std::string bad : {"bob+../../x@example.org", "\"../x\"@example.org", "bob+.x@example.org", "../x"}) {
        r = deliver({"--config", conf(), "-a", bad}, kMessage);
        EXPECT_EQ(r.exit_code, EX_DATAERR) << bad << ": " << r.output;
    }
    EXPECT_TRUE(std::filesystem::is_empty(dir_.file("vmail")));
    r = deliver({"--config", conf(), "--bogus"}, kMessage);
    EXPECT_EQ(r.exit_code, EX_USAGE) << r.output;
    r = deliver({"--config", conf()}, kMessage);  // no recipient anywhere
    EXPECT_EQ(r.exit_code, EX_USAGE) << r.output;
}

TEST_F(DeliveryLda, ARefusalSaysEachThingOnce) {
    auto count = [](const std::string& s, const std::string& what) {
        std::size_t n = 0;
        for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
        return n;
    };
    auto r = deliver({"--config", conf(), "-a", "../x@example.org"}, kMessage);
    EXPECT_EQ(r.exit_code, EX_DATAERR) << r.output;
    EXPECT_EQ(r.output, "delivery-maildir: 5.1.3 ../x@example.org: Recipient address refused: "
                        "bad local part\n");
    r = deliver({"--config", conf(), "-a", "\"../x\"@example.org"}, kMessage);
    EXPECT_EQ(count(r.output, "unsafe local part"), 1u) << r.output;
    r = deliver({"--config", conf(), "-a", "nobody@example.org"}, kMessage);
    EXPECT_EQ(r.output, "delivery-maildir: 5.1.1 nobody@example.org: No such user here (no such mailbox)\n");
}

TEST_F(DeliveryLda, TooBigAndOverQuota) {
    write_config({{"message_size_limit", 1024}});
    auto r = deliver({"--config", conf(), "-a", "bob@example.org"}, "Subject: big\n\n" + std::string(8000, 'x'));
    EXPECT_EQ(r.exit_code, EX_DATAERR) << r.output;
    EXPECT_NE(r.output.find("5.3.4"), std::string::npos) << r.output;
    write_config();
    ASSERT_EQ(deliver({"--config", conf(), "-a", "bob@example.org"}, kMessage).exit_code, EX_OK);
    dir_.write("vmail/example.org/bob/maildirsize", "100S\n0 0\n");
    r = deliver({"--config", conf(), "-a", "bob@example.org"}, "Subject: q\n\n" + std::string(300, 'q'));
    EXPECT_EQ(r.exit_code, EX_CANTCREAT) << r.output;
    EXPECT_NE(r.output.find("5.2.2"), std::string::npos) << r.output;
    EXPECT_EQ(files_in(md("bob") + "/new").size(), 1u);
}

TEST_F(DeliveryLda, TemporaryFailuresExit75) {
    // A broken configuration defers mail instead of bouncing it.
    dir_.write("broken.json", R"({"mailbox_mode": "virtual", "virtual_mailboxes": "/nonexistent/list"})");
    auto r = deliver({"--config", dir_.file("broken.json"), "-a", "bob@example.org"}, kMessage);
    EXPECT_EQ(r.exit_code, EX_TEMPFAIL) << r.output;
    // A missing virtual_base (an unmounted volume) is temporary, and the
    // worst status wins: temporary over permanent over success.
    write_config({{"virtual_base", dir_.file("not-mounted")}});
    r = deliver({"--config", conf(), "-a", "nobody@example.org", "-a", "bob@example.org"}, kMessage);
    EXPECT_EQ(r.exit_code, EX_TEMPFAIL) << r.output;
}

TEST_F(DeliveryLda, FullDiskExits75AndLeavesNothing) {
    dtest::SmallFs fs(dir_.file("small"), 128 * 1024);
    write_config({{"virtual_base", dir_.file("small")}});
    std::string big = "Subject: big\n\n";
    while (big.size() < 400 * 1024) big += std::string(900, 'z') + "\n";
    auto r = deliver({"--config", conf(), "-a", "bob@example.org"}, big);
    EXPECT_EQ(r.exit_code, EX_TEMPFAIL) << r.output;
    EXPECT_NE(r.output.find("4.3.1"), std::string::npos) << r.output;
    EXPECT_TRUE(files_in(dir_.file("small/example.org/bob/new")).empty());
    EXPECT_TRUE(files_in(dir_.file("small/example.org/bob/tmp")).empty());
    r = deliver({"--config", conf(), "-a", "bob@example.org"}, kMessage);
    EXPECT_EQ(r.exit_code, EX_OK) << r.output;
}

TEST_F(DeliveryLda, SystemUserByNameWithDashD) {
    dtest::SystemUser user(dir_.file("homes"));
    auto r = deliver({"-f", "s@x.example", "-d", user.name()}, kMessage);
    EXPECT_EQ(r.exit_code, EX_OK) << r.output;
    auto files = files_in(user.home() + "/Maildir/new");
    ASSERT_EQ(files.size(), 1u);
    struct stat st;
    ASSERT_EQ(::stat((user.home() + "/Maildir/new/" + files[0]).c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, user.uid());
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    r = deliver({"-d", "no-such-user-xyz"}, kMessage);
    EXPECT_EQ(r.exit_code, EX_NOUSER) << r.output;
}

TEST_F(DeliveryLda, WithoutProcTheNamedTmpFileIsUsed) {
    // An unnamed O_TMPFILE gets its name through /proc/self/fd. Where /proc
    // is missing (here: covered by an empty tmpfs in a private mount
    // namespace) the named tmp/ file is used, and the mail still lands.
    ASSERT_EQ(deliver({"--config", conf(), "-f", "", "bob@example.org"}, kMessage).exit_code, EX_OK);
    struct timespec old_times[2] = {{1000000000, 0}, {1000000000, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (md("bob") + "/tmp").c_str(), old_times, 0), 0);
    auto r = testsupport::run({"unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                               "mount -t tmpfs none /proc && exec \"$0\" \"$@\"", DELIVERY_MAILDIR,
                               "deliver", "--config", conf(), "-f", "", "bob@example.org"},
                              kMessage);
    EXPECT_EQ(r.exit_code, EX_OK) << r.output;
    EXPECT_EQ(files_in(md("bob") + "/new").size(), 2u);
    EXPECT_TRUE(files_in(md("bob") + "/tmp").empty());
    struct stat st {};
    ASSERT_EQ(::stat((md("bob") + "/tmp").c_str(), &st), 0);
    EXPECT_NE(st.st_mtim.tv_sec, 1000000000) << "tmp/ untouched: the named file was not used";
}

}  // namespace
