// delivery-maildir unit tests: the local-part and extension checks that stand
// between an address and the file system, maildirsize parsing, unique names,
// the Maildir write itself (into a temp dir), virtual mailbox mapping, the
// reply and exit-status tables, and the delivery command's input handling.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sysexits.h>

#include <filesystem>
#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>
#include <regex>
#include <set>

#include "delivery.h"
#include "lda.h"
#include "mailbox_list.h"
#include "maildir.h"
#include "recipient.h"
#include "support/process.h"

namespace {

using namespace maildir;
using namespace std::chrono_literals;
using testsupport::TempDir;

std::vector<std::string> list(const std::string& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator(dir, ec))
        if (e.is_regular_file()) out.push_back(e.path().filename().string());
    return out;
}

mode_t mode_of(const std::string& path) {
    struct stat st;
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
}

TEST(DeliveryRecipient, SafeComponentAcceptsOrdinaryNames) {
    EXPECT_TRUE(safe_component("bob"));
    EXPECT_TRUE(safe_component("first.last"));
    EXPECT_TRUE(safe_component("a-b_c=d"));
    EXPECT_TRUE(safe_component(std::string(64, 'x')));
}

TEST(DeliveryRecipient, SafeComponentRefusesPathTricks) {
    for (std::string_view bad :
         {"", ".", "..", "../etc", "a/b", "/abs", "a..b", ".hidden", "a\\b", "a b", "tab\there",
          "new\nline", "del\x7f"})
        EXPECT_FALSE(safe_component(bad)) << bad;
    EXPECT_FALSE(safe_component(std::string("a\0b", 3)));
    EXPECT_FALSE(safe_component(std::string(65, 'x')));
    EXPECT_FALSE(safe_component("caf\xc3\xa9"));
}

TEST(DeliveryRecipient, SafeFolder) {
    EXPECT_TRUE(safe_folder("work"));
    EXPECT_TRUE(safe_folder("lists.postfix"));
    EXPECT_FALSE(safe_folder("work."));
    EXPECT_FALSE(safe_folder("lists..x"));
    EXPECT_FALSE(safe_folder(".."));
    EXPECT_FALSE(safe_folder("../../etc"));
}

TEST(DeliveryRecipient, SplitExtensionUsesAnyDelimiterCharacter) {
    auto s = split_extension("bob+work", "+");
    EXPECT_EQ(s.user, "bob");
    EXPECT_EQ(s.extension, "work");
    EXPECT_TRUE(s.has_delimiter);
    s = split_extension("bob-x+y", "+-");
    EXPECT_EQ(s.user, "bob");
    EXPECT_EQ(s.extension, "x+y");
    s = split_extension("bob", "+");
    EXPECT_FALSE(s.has_delimiter);
    EXPECT_EQ(s.user, "bob");
    s = split_extension("bob+work", "");
    EXPECT_FALSE(s.has_delimiter);
    EXPECT_EQ(s.user, "bob+work");
}

TEST(DeliveryQuota, ParsesMaildirsize) {
    Quota q;
    ASSERT_TRUE(parse_maildirsize("1000000S,100C\n1200 3\n 300 1\n-200 -1\n", q));
    EXPECT_EQ(q.max_bytes, 1000000);
    EXPECT_EQ(q.max_count, 100);
    EXPECT_EQ(q.bytes, 1300);
    EXPECT_EQ(q.count, 3);
    ASSERT_TRUE(parse_maildirsize("5000S\n", q));
    EXPECT_EQ(q.max_bytes, 5000);
    EXPECT_EQ(q.max_count, 0);
    ASSERT_TRUE(parse_maildirsize("7C\n", q));
    EXPECT_EQ(q.max_count, 7);
}

TEST(DeliveryQuota, RefusesMalformedMaildirsize) {
    Quota q;
    for (std::string_view bad : {"", "1000S", "1000X\n", "S\n", "-5S\n",  "10S\nabc 1\n",
                                 "10S\n5\n", "99999999999999999999S\n",
                                 "10S\n9223372036854775807 1\n1 1\n"})  // totals overflow
        EXPECT_FALSE(parse_maildirsize(bad, q)) << bad;
}

TEST(DeliveryMailboxList, PostfixTableFormatCommentsAndCase) {
    auto list = parse_mailbox_list("# comment\nBob@Example.ORG   OK\n\n  alice@example.org\t# x\r\n"
                                   "\"odd,name\"@example.net\n",
                                   "list");
    EXPECT_EQ(list, (std::unordered_set<std::string>{"bob@example.org", "alice@example.org",
                                                     "odd,name@example.net"}));
}

TEST(DeliveryMailboxList, ErrorsNameTheLine) {
    for (std::string bad : {"bob@example.org\nnot-an-address\n", "ok@example.org\n\"\"@example.org\n",
                            "ok@example.org\nbob@-bad-.example\n"}) {
        try {
            parse_mailbox_list(bad, "list");
            ADD_FAILURE() << bad;
        } catch (const std::invalid_argument& e) {
            EXPECT_TRUE(std::string(e.what()).starts_with("list:2: ")) << e.what();
        }
    }
}

TEST(DeliveryMaildirWrite, UniqueNamesFollowTheMaildirSpecAndNeverRepeat) {
    std::regex shape(R"(\d+\.M\d{6}P\d+Q\d+\.mx\\057a\\072b,S=10,W=12)");
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        auto n = unique_name("mx/a:b", 10, 12);
        EXPECT_TRUE(std::regex_match(n, shape)) << n;
        EXPECT_TRUE(seen.insert(n).second) << n;
    }
}

// Both ways of writing: an unnamed O_TMPFILE linked into new/, and the
// classic named tmp/ file renamed into new/ (the fallback where the file
// system or /proc does not allow the first).
class DeliveryMaildirBothWays : public ::testing::TestWithParam<bool> {
protected:
    WriteOptions options() const {
        WriteOptions o;
        o.hostname = "host";
        o.unnamed_tmp = GetParam();
        return o;
    }
};

INSTANTIATE_TEST_SUITE_P(TmpFile, DeliveryMaildirBothWays, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Unnamed" : "Named"; });

TEST_P(DeliveryMaildirBothWays, CreatesTheMaildirAndWritesThroughTmpIntoNew) {
    TempDir dir;
    std::string root = dir.file("Maildir");
    auto r = deliver(root, "", "Return-Path: <a@b>\n", "Subject: x\n\nbody\n", options());
    ASSERT_EQ(r.status, WriteResult::Status::ok) << r.error;
    for (auto sub : {"", "/tmp", "/new", "/cur"}) EXPECT_EQ(mode_of(root + sub), 0700u) << sub;
    auto files = list(root + "/new");
    ASSERT_EQ(files.size(), 1u);
    EXPECT_EQ(r.file, root + "/new/" + files[0]);
    EXPECT_EQ(mode_of(r.file), 0600u);
    EXPECT_EQ(testsupport::read_file(r.file), "Return-Path: <a@b>\nSubject: x\n\nbody\n");
    // S= is the size on disk; W= the size with CRLF line ends (4 lines).
    std::string expected_size = ",S=36,W=40";
    EXPECT_TRUE(files[0].ends_with(expected_size)) << files[0];
    EXPECT_TRUE(list(root + "/tmp").empty());
    EXPECT_TRUE(list(root + "/cur").empty());
}

TEST_P(DeliveryMaildirBothWays, TmpIsTouchedOnlyByNamedFiles) {
    // An unnamed file adds and removes no tmp/ entry, so tmp/'s mtime stays;
    // a named one changes it. Set to an old time first: the clock is coarse.
    TempDir dir;
    std::string root = dir.file("Maildir");
    ASSERT_EQ(deliver(root, "", "", "first\n", options()).status, WriteResult::Status::ok);
    struct timespec old_times[2] = {{1000000000, 0}, {1000000000, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (root + "/tmp").c_str(), old_times, 0), 0);
    ASSERT_EQ(deliver(root, "", "", "second\n", options()).status, WriteResult::Status::ok);
    struct stat st {};
    ASSERT_EQ(::stat((root + "/tmp").c_str(), &st), 0);
    EXPECT_EQ(st.st_mtim.tv_sec == 1000000000, GetParam()) << "mtime " << st.st_mtim.tv_sec;
    EXPECT_EQ(list(root + "/new").size(), 2u);
}

TEST_P(DeliveryMaildirBothWays, CompletesAMaildirMadeWithoutNewOrCur) {
    // Made by hand or by another tool: tmp/ is there, new/ and cur/ are not.
    // The delivery completes it instead of deferring mail until someone does.
    TempDir dir;
    std::string root = dir.file("Maildir");
    std::filesystem::create_directories(root + "/tmp");
    auto r = deliver(root, "", "", "x\n", options());
    ASSERT_EQ(r.status, WriteResult::Status::ok) << r.error;
    EXPECT_EQ(list(root + "/new").size(), 1u);
    EXPECT_EQ(mode_of(root + "/new"), 0700u);
    EXPECT_EQ(mode_of(root + "/cur"), 0700u);
    EXPECT_TRUE(list(root + "/tmp").empty());
    // The same for a folder that has only tmp/.
    std::filesystem::create_directories(root + "/.work/tmp");
    r = deliver(root, ".work", "", "y\n", options());
    ASSERT_EQ(r.status, WriteResult::Status::ok) << r.error;
    EXPECT_EQ(list(root + "/.work/new").size(), 1u);
}

TEST(DeliveryMaildirWrite, FolderWhenItExistsElseInbox) {
    TempDir dir;
    std::string root = dir.file("Maildir");
    WriteOptions o;
    ASSERT_EQ(deliver(root, ".work", "", "one\n", o).status, WriteResult::Status::ok);
    EXPECT_EQ(list(root + "/new").size(), 1u);  // .work did not exist: INBOX
    EXPECT_FALSE(std::filesystem::exists(root + "/.work"));
    std::filesystem::create_directories(root + "/.work");  // folder made by the IMAP client
    auto r = deliver(root, ".work", "", "two\n", o);
    ASSERT_EQ(r.status, WriteResult::Status::ok);
    EXPECT_EQ(list(root + "/.work/new").size(), 1u);
    EXPECT_EQ(list(root + "/new").size(), 1u);
    EXPECT_TRUE(r.file.starts_with(root + "/.work/new/"));
}

TEST(DeliveryMaildirWrite, CreatesParentsOnlyBelowCreateBelow) {
    TempDir dir;
    WriteOptions o;
    o.create_below = dir.file("vmail");
    std::filesystem::create_directories(o.create_below);
    auto r = deliver(dir.file("vmail/example.org/bob"), "", "", "x\n", o);
    ASSERT_EQ(r.status, WriteResult::Status::ok) << r.error;
    EXPECT_EQ(mode_of(dir.file("vmail/example.org")), 0700u);
    // Without create_below, a missing parent is a failure, not a mkdir -p.
    WriteOptions plain;
    auto f = deliver(dir.file("nowhere/deep/Maildir"), "", "", "x\n", plain);
    EXPECT_EQ(f.status, WriteResult::Status::failed);
    EXPECT_EQ(f.error_number, ENOENT);
    EXPECT_FALSE(std::filesystem::exists(dir.file("nowhere")));
}

TEST_P(DeliveryMaildirBothWays, QuotaRefusesWhatWouldNotFitAndCountsWhatWasDelivered) {
    TempDir dir;
    std::string root = dir.file("Maildir");
    WriteOptions o = options();
    ASSERT_EQ(deliver(root, "", "", "first\n", o).status, WriteResult::Status::ok);
    dir.write("Maildir/maildirsize", "100S,5C\n0 0\n");
    auto big = deliver(root, "", "", std::string(200, 'x'), o);
    EXPECT_EQ(big.status, WriteResult::Status::over_quota);
    EXPECT_EQ(list(root + "/new").size(), 1u);
    EXPECT_TRUE(list(root + "/tmp").empty());
    auto small = deliver(root, "", "", std::string(40, 'y'), o);
    ASSERT_EQ(small.status, WriteResult::Status::ok);
    EXPECT_EQ(testsupport::read_file(root + "/maildirsize"), "100S,5C\n0 0\n40 1\n");
    auto second = deliver(root, "", "", std::string(70, 'z'), o);  // 40 + 70 > 100
    EXPECT_EQ(second.status, WriteResult::Status::over_quota);
    o.quota = false;
    EXPECT_EQ(deliver(root, "", "", std::string(70, 'z'), o).status, WriteResult::Status::ok);
}

TEST(DeliveryMaildirWrite, CountLimitInMaildirsize) {
    TempDir dir;
    std::string root = dir.file("Maildir");
    WriteOptions o;
    ASSERT_EQ(deliver(root, "", "", "a\n", o).status, WriteResult::Status::ok);
    dir.write("Maildir/maildirsize", "0S,1C\n2 1\n");
    EXPECT_EQ(deliver(root, "", "", "b\n", o).status, WriteResult::Status::over_quota);
}

TEST_P(DeliveryMaildirBothWays, ConcurrentDeliveriesIntoOneMaildirAllLand) {
    // Eight threads share new/'s fsyncs (group commit); every message must land.
    TempDir dir;
    std::string root = dir.file("Maildir");
    WriteOptions o = options();
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 50; ++i) {
                auto r = deliver(root, "", "", "message " + std::to_string(t * 100 + i) + "\n", o);
                if (r.status != WriteResult::Status::ok) ++failures;
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(list(root + "/new").size(), 400u);
    EXPECT_TRUE(list(root + "/tmp").empty());
}

TEST_P(DeliveryMaildirBothWays, FirstDeliveriesRacingIntoANewMaildirAllLand) {
    // Eight threads deliver at once into a Maildir that does not exist yet,
    // round after round: none may find tmp/ made but not new/ (a new Maildir
    // appears whole), and no staging directory may be left beside them.
    TempDir dir;
    std::atomic<int> failures{0};
    std::string first_error;
    std::mutex error_mutex;
    for (int round = 0; round < 100; ++round) {
        std::string root = dir.file("m" + std::to_string(round));
        std::vector<std::thread> threads;
        for (int t = 0; t < 8; ++t)
            threads.emplace_back([&] {
                auto r = deliver(root, "", "", "x\n", options());
                if (r.status == WriteResult::Status::ok) return;
                std::lock_guard lock(error_mutex);
                if (failures++ == 0) first_error = r.error;
            });
        for (auto& t : threads) t.join();
        ASSERT_EQ(list(root + "/new").size(), 8u) << root;
    }
    EXPECT_EQ(failures.load(), 0) << first_error;
    std::size_t entries = 0;
    for (auto& e : std::filesystem::directory_iterator(dir.file("."))) {
        ++entries;
        EXPECT_EQ(e.path().filename().string().find(".creating."), std::string::npos) << e.path();
    }
    EXPECT_EQ(entries, 100u);  // the Maildirs only
}

TEST(DeliveryMaildirWrite, CleanTmpRemovesOnlyOldFiles) {
    TempDir dir;
    std::string tmp = dir.file("tmp");
    std::filesystem::create_directories(tmp);
    dir.write("tmp/old", "partial");
    dir.write("tmp/fresh", "in progress");
    auto old = std::filesystem::file_time_type::clock::now() - 37h;
    std::filesystem::last_write_time(tmp + "/old", old);
    EXPECT_EQ(clean_tmp(tmp, 36h, true), 1);
    EXPECT_EQ(list(tmp), std::vector<std::string>{"fresh"});
    // Not forced: a scan just happened (tmp/'s atime), so no second scan.
    std::filesystem::last_write_time(tmp + "/fresh", old);
    EXPECT_EQ(clean_tmp(tmp, 36h, false), 0);
    EXPECT_EQ(list(tmp).size(), 1u);
}

State virtual_state(const std::string& base) {
    State s;
    s.settings.mode = Mode::virtual_mailbox;
    s.settings.virtual_base = base;
    s.virtual_mailboxes = {"bob@example.org", "alice@example.org", "bob+special@example.org"};
    s.virtual_domain_set = {"example.org"};
    return s;
}

proto::smtp::Address addr(std::string local, std::string domain) {
    return proto::smtp::Address{std::move(local), std::move(domain)};
}

TEST(DeliveryMapping, VirtualMailboxes) {
    State s = virtual_state("/var/vmail");
    auto r = resolve(s, addr("Bob", "Example.ORG"));
    ASSERT_EQ(r.status, Status::delivered);
    EXPECT_EQ(r.target.maildir, "/var/vmail/example.org/bob");
    EXPECT_EQ(r.target.folder, "");
    EXPECT_EQ(r.target.create_below, "/var/vmail");
    EXPECT_EQ(resolve(s, addr("carol", "example.org")).status, Status::unknown_user);
    EXPECT_EQ(resolve(s, addr("bob", "example.net")).status, Status::unknown_domain);
}

TEST(DeliveryMapping, ExtensionsSelectAFolderAndKeepTheirCase) {
    State s = virtual_state("/v");
    auto r = resolve(s, addr("bob+Work", "example.org"));
    ASSERT_EQ(r.status, Status::delivered);
    EXPECT_EQ(r.target.maildir, "/v/example.org/bob");
    EXPECT_EQ(r.target.folder, ".Work");
    // The whole local part is looked up first.
    r = resolve(s, addr("bob+special", "example.org"));
    ASSERT_EQ(r.status, Status::delivered);
    EXPECT_EQ(r.target.maildir, "/v/example.org/bob+special");
    EXPECT_EQ(r.target.folder, "");
    EXPECT_EQ(resolve(s, addr("carol+x", "example.org")).status, Status::unknown_user);
}

TEST(DeliveryMapping, TraversalInLocalPartsAndExtensionsIsRefused) {
    State s = virtual_state("/v");
    s.virtual_mailboxes.insert("../escape@example.org");
    for (auto local : {"bob+..", "bob+../../etc", "bob+.hidden", "bob+a/b", "bob+x.", "../escape",
                       "a/b", ".."})
        EXPECT_EQ(resolve(s, addr(local, "example.org")).status, Status::bad_address) << local;
    s.settings.mode = Mode::system;
    for (auto local : {"../root", "a/b", ".ssh", "bob+../x"})
        EXPECT_EQ(resolve(s, addr(local, "localhost")).status, Status::bad_address) << local;
}

TEST(DeliveryMapping, SystemUsersAndLocalDomains) {
    State s;
    s.settings.mode = Mode::system;
    s.settings.local_domains = {"example.test"};
    auto r = resolve(s, addr("root", "Example.Test"));
    ASSERT_EQ(r.status, Status::delivered);
    EXPECT_EQ(r.target.uid, 0u);
    EXPECT_TRUE(r.target.switch_ids);
    EXPECT_TRUE(r.target.maildir.ends_with("/Maildir"));
    EXPECT_EQ(resolve(s, addr("root", "elsewhere.test")).status, Status::unknown_domain);
    EXPECT_EQ(resolve(s, addr("no-such-user-here", "example.test")).status, Status::unknown_user);
    r = resolve(s, addr("root+box", "example.test"));
    ASSERT_EQ(r.status, Status::delivered);
    EXPECT_EQ(r.target.folder, ".box");
}

TEST(DeliveryOutcomes, RepliesAndExitStatuses) {
    auto reply = [](Status st, int err = 0) {
        Outcome o;
        o.status = st;
        o.error_number = err;
        auto r = to_reply(o);
        return std::to_string(r.code) + " " + std::string(r.enhanced);
    };
    EXPECT_EQ(reply(Status::delivered), "250 2.0.0");
    EXPECT_EQ(reply(Status::unknown_user), "550 5.1.1");
    EXPECT_EQ(reply(Status::unknown_domain), "550 5.1.2");
    EXPECT_EQ(reply(Status::bad_address), "550 5.1.3");
    EXPECT_EQ(reply(Status::over_quota), "552 5.2.2");
    EXPECT_EQ(reply(Status::too_big), "552 5.3.4");
    EXPECT_EQ(reply(Status::temp_fail, ENOSPC), "452 4.3.1");
    EXPECT_EQ(reply(Status::temp_fail, EIO), "451 4.3.0");
    EXPECT_EQ(to_exit_code(Status::delivered), EX_OK);
    EXPECT_EQ(to_exit_code(Status::unknown_user), EX_NOUSER);
    EXPECT_EQ(to_exit_code(Status::unknown_domain), EX_NOHOST);
    EXPECT_EQ(to_exit_code(Status::over_quota), EX_CANTCREAT);
    EXPECT_EQ(to_exit_code(Status::temp_fail), EX_TEMPFAIL);
}

TEST(DeliveryTraceHeaders, ReturnPathAndDeliveredTo) {
    EXPECT_EQ(trace_headers({"a@b.example", "bob@example.org"}),
              "Return-Path: <a@b.example>\nDelivered-To: bob@example.org\n");
    EXPECT_EQ(trace_headers({"", "bob@example.org"}),
              "Return-Path: <>\nDelivered-To: bob@example.org\n");
}

TEST(DeliveryLdaInput, StripsFromLineConvertsCrlfAndDoesNotDuplicateTraceHeaders) {
    std::string m =
        "From a@b.example  Sun Nov 29 10:00:00 2026\r\n"
        "Return-Path: <old@x.example>\r\n"
        "Delivered-To: bob@example.org\r\n"
        "Subject: hi\r\n\r\nbody\r\n";
    auto prefix = prepare_lda_message(m, {"a@b.example", "bob@example.org"});
    EXPECT_EQ(prefix, "Return-Path: <a@b.example>\n");
    EXPECT_EQ(m, "Delivered-To: bob@example.org\nSubject: hi\n\nbody\n");
    std::string other = "Delivered-To: someone@else.example\nSubject: x\n\n";
    prefix = prepare_lda_message(other, {"", "bob@example.org"});
    EXPECT_EQ(prefix, "Return-Path: <>\nDelivered-To: bob@example.org\n");
    EXPECT_EQ(other, "Delivered-To: someone@else.example\nSubject: x\n\n");
}

}  // namespace
