// Local submission end to end: the built sendmail command and its setgid
// helper writing the maildrop of a running (or stopped) mta-core, pickup
// queueing what they wrote, delivery-maildir receiving it; mail(1) from
// mailutils as a real client; unprivileged users (setpriv) and hostile
// maildrop files.
#include <gtest/gtest.h>
#include <dirent.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "mta_instance.h"

using namespace testsupport;
using mtatest::MtaInstance;

namespace {

std::string build_bin_dir() { return std::filesystem::path(MTA_POSTDROP).parent_path().string(); }

mtatest::Options options(const std::string& extra = "") {
    mtatest::Options o;
    o.main_cf = "myorigin = example.org\ncommand_directory = " + build_bin_dir() + "\n" + extra;
    return o;
}

RunResult sendmail(const MtaInstance& mta, const std::vector<std::string>& args, const std::string& input) {
    std::vector<std::string> argv{SENDMAIL, "-C", mta.dir().path()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, input);
}

// The same as the user nobody (setpriv: real and effective ids, no groups).
RunResult as_nobody(std::vector<std::string> argv, const std::string& input = "") {
    std::vector<std::string> full{"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"};
    full.insert(full.end(), argv.begin(), argv.end());
    return run(full, input);
}

std::vector<std::string> entries(const std::string& dir) {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (auto* e = ::readdir(d))
            if (e->d_name[0] != '.') out.push_back(e->d_name);
        ::closedir(d);
    }
    return out;
}

std::string only_mail(const MtaInstance& mta, const std::string& user) {
    auto files = mta.wait_for_mail(user, 1);
    if (files.size() != 1) return "(" + std::to_string(files.size()) + " messages)\n" + mta.maillog();
    return read_file(files[0]);
}

}  // namespace

TEST(Sendmail, RecipientsOnTheCommandLineWithBareNamesQualifiedByMyorigin) {
    MtaInstance mta(options());
    auto r = sendmail(mta, {"-f", "alice", "-F", "Alice Liddell", "bob"}, "Subject: plain\n\nhello bob\n");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::string mail = only_mail(mta, "bob");
    EXPECT_NE(mail.find("From: Alice Liddell <alice@example.org>"), std::string::npos) << mail;
    EXPECT_NE(mail.find("(mta-core, from userid 0)"), std::string::npos) << mail;
    EXPECT_NE(mail.find("Subject: plain"), std::string::npos) << mail;
    EXPECT_NE(mail.find("hello bob"), std::string::npos) << mail;
    EXPECT_TRUE(mta.maillog_has(": uid=0 from=<alice>")) << mta.maillog();
    EXPECT_TRUE(mta.maillog_has("from=<alice@example.org>, size="));
    EXPECT_TRUE(entries(mta.queue_dir() + "/maildrop").empty());
}

TEST(Sendmail, DashTTakesToCcAndBccAndRemovesBcc) {
    MtaInstance mta(options());
    auto r = sendmail(mta, {"-t", "-f", "postmaster@example.org"},
                      "From: Post Master <postmaster@example.org>\n"
                      "To: Alice <alice@example.org>\n"
                      "Bcc: bob@example.org\n"
                      "Subject: extracted\n\nbody\n");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::string to_alice = only_mail(mta, "alice");
    std::string to_bob = only_mail(mta, "bob");
    for (const auto& m : {to_alice, to_bob}) {
        EXPECT_NE(m.find("Subject: extracted"), std::string::npos) << m;
        EXPECT_EQ(m.find("Bcc:"), std::string::npos) << m;
    }
    EXPECT_EQ(to_alice.find("bob@example.org"), std::string::npos) << "Bcc recipient disclosed: " << to_alice;
}

TEST(Sendmail, ALoneDotEndsInputUnlessDashI) {
    MtaInstance mta(options());
    std::string input = "Subject: dots\n\nbefore\n.\nafter\n";
    ASSERT_EQ(sendmail(mta, {"-f", "alice", "alice"}, input).exit_code, 0);
    std::string cut = only_mail(mta, "alice");
    EXPECT_NE(cut.find("before"), std::string::npos) << cut;
    EXPECT_EQ(cut.find("after"), std::string::npos) << cut;
    ASSERT_EQ(sendmail(mta, {"-oi", "-f", "alice", "bob"}, input).exit_code, 0);
    std::string whole = only_mail(mta, "bob");
    EXPECT_NE(whole.find("before\n.\nafter"), std::string::npos) << whole;
}

TEST(Sendmail, MailFromMailutilsIsDelivered) {
    MtaInstance mta(options());
    auto r = run({"/usr/bin/env", "MAIL_CONFIG=" + mta.dir().path(), "/usr/bin/mail", "-E",
                  std::string("set sendmail=sendmail://") + SENDMAIL, "-s", "from mailutils", "-a",
                  "X-Test: mailutils", "alice@example.org"},
                 "written with mail(1)\n");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::string mail = only_mail(mta, "alice");
    EXPECT_NE(mail.find("Subject: from mailutils"), std::string::npos) << mail;
    EXPECT_NE(mail.find("X-Test: mailutils"), std::string::npos) << mail;
    EXPECT_NE(mail.find("written with mail(1)"), std::string::npos) << mail;
}

TEST(Sendmail, MailSubmittedWhileStoppedIsDeliveredAfterStart) {
    MtaInstance mta(options());
    mta.stop();
    auto r = sendmail(mta, {"-f", "alice", "bob"}, "Subject: while stopped\n\nqueued on disk\n");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_EQ(entries(mta.queue_dir() + "/maildrop").size(), 1u);
    mta.start();
    std::string mail = only_mail(mta, "bob");
    EXPECT_NE(mail.find("queued on disk"), std::string::npos) << mail;
}

TEST(Sendmail, MailqNewaliasesAndFlush) {
    TempDir bin;
    bin.write("aliases", "root: alice@example.org\n");
    bin.write("virtual", "root@example.org alice@example.org\n");
    // mailq and newaliases are the same program under other names.
    ASSERT_EQ(::symlink(SENDMAIL, bin.file("mailq").c_str()), 0);
    ASSERT_EQ(::symlink(SENDMAIL, bin.file("newaliases").c_str()), 0);
    MtaInstance other(options("alias_maps = texthash:" + bin.file("aliases") + "\nvirtual_alias_maps = texthash:" +
                              bin.file("virtual") + "\n"));
    auto q = run({bin.file("mailq"), "-C", other.dir().path()});
    EXPECT_EQ(q.exit_code, 0) << q.output;
    EXPECT_NE(q.output.find("Mail queue is empty"), std::string::npos) << q.output;
    auto n = run({bin.file("newaliases"), "-C", other.dir().path()});
    EXPECT_EQ(n.exit_code, 0) << n.output;
    EXPECT_NE(n.output.find("nothing to rebuild"), std::string::npos) << n.output;
    auto f = run({SENDMAIL, "-C", other.dir().path(), "-q"});
    EXPECT_EQ(f.exit_code, 0) << f.output;
    EXPECT_TRUE(other.maillog_has("flush requested"));
    // A virtual alias expands for local submissions as for SMTP mail.
    ASSERT_EQ(run({SENDMAIL, "-C", other.dir().path(), "-f", "bob", "root"}, "Subject: to root\n\nx\n").exit_code, 0);
    std::string mail = only_mail(other, "alice");
    EXPECT_NE(mail.find("Subject: to root"), std::string::npos) << mail;
    auto bad = run({SENDMAIL, "-C", other.dir().path(), "-Z", "bob"});
    EXPECT_EQ(bad.exit_code, 64) << bad.output;
    EXPECT_NE(bad.output.find("usage:"), std::string::npos) << bad.output;
}

// The helper as it is installed: setgid to setgid_group (Postfix's postdrop
// group here, which nobody is not in), in command_directory.
struct SetgidHelper {
    TempDir dir;
    SetgidHelper() {
        ::chmod(dir.path().c_str(), 0755);
        std::filesystem::copy_file(MTA_POSTDROP, dir.file("mta-core-postdrop"));
        struct group* gr = ::getgrnam("postdrop");
        if (!gr) throw std::runtime_error("no group postdrop (Debian's postfix package makes it)");
        if (::chown(dir.file("mta-core-postdrop").c_str(), 0, gr->gr_gid) != 0 ||
            ::chmod(dir.file("mta-core-postdrop").c_str(), 02755) != 0)
            throw std::runtime_error("cannot make the helper setgid");
    }
    mtatest::Options options(const std::string& extra = "") const {
        mtatest::Options o;
        o.main_cf = "myorigin = example.org\nsetgid_group = postdrop\ncommand_directory = " + dir.path() + "\n" + extra;
        return o;
    }
};

TEST(SendmailUnprivileged, NobodySubmitsThroughTheSetgidHelperAndCannotReadTheMaildrop) {
    SetgidHelper helper;
    MtaInstance mta(helper.options());
    struct stat st;
    ASSERT_EQ(::stat((mta.queue_dir() + "/maildrop").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 01730u);
    EXPECT_EQ(st.st_gid, ::getgrnam("postdrop")->gr_gid);
    auto r = as_nobody({SENDMAIL, "-C", mta.dir().path(), "alice@example.org"}, "Subject: from nobody\n\nhi\n");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::string mail = only_mail(mta, "alice");
    EXPECT_NE(mail.find("Subject: from nobody"), std::string::npos) << mail;
    EXPECT_NE(mail.find("From: "), std::string::npos) << mail;
    EXPECT_TRUE(mta.maillog_has(": uid=65534 from=<nobody>")) << mta.maillog();
    // The queue is mail_owner's: mailq says so rather than "empty".
    auto q = as_nobody({SENDMAIL, "-C", mta.dir().path(), "-bp"});
    EXPECT_EQ(q.exit_code, 69) << q.output;
    EXPECT_NE(q.output.find("run as root or mail_owner"), std::string::npos) << q.output;
    auto flush = as_nobody({SENDMAIL, "-C", mta.dir().path(), "-q"});
    EXPECT_EQ(flush.exit_code, 77) << flush.output;
    EXPECT_NE(flush.output.find("only root and mail_owner can flush"), std::string::npos) << flush.output;
    // Another user's file waiting in the maildrop: nobody can neither list
    // the directory nor open the file by its name.
    mta.stop();
    ASSERT_EQ(sendmail(mta, {"-f", "alice", "bob"}, "Subject: secret\n\nroot's mail\n").exit_code, 0);
    auto names = entries(mta.queue_dir() + "/maildrop");
    ASSERT_EQ(names.size(), 1u);
    auto ls = as_nobody({"/bin/ls", mta.queue_dir() + "/maildrop"});
    EXPECT_NE(ls.exit_code, 0) << ls.output;
    auto cat = as_nobody({"/bin/cat", mta.queue_dir() + "/maildrop/" + names[0]});
    EXPECT_NE(cat.exit_code, 0) << cat.output;
    EXPECT_EQ(cat.output.find("root's mail"), std::string::npos) << cat.output;
}

TEST(SendmailUnprivileged, AuthorizedSubmitUsersRefusesOthers) {
    SetgidHelper helper;
    MtaInstance mta(helper.options("authorized_submit_users = root\n"));
    auto r = as_nobody({SENDMAIL, "-C", mta.dir().path(), "alice@example.org"}, "Subject: refused\n\nno\n");
    EXPECT_EQ(r.exit_code, 77) << r.output;
    EXPECT_NE(r.output.find("User nobody(65534) is not allowed to submit mail"), std::string::npos) << r.output;
    // The helper refuses too when run directly, whatever sendmail says.
    auto direct = as_nobody({helper.dir.file("mta-core-postdrop"), "-c", mta.dir().path()},
                            "MTAD 1\nsender=nobody\nfullname=\nrcpt=alice@example.org\nsize=0\n\nMTAD END\n");
    EXPECT_EQ(direct.exit_code, 77) << direct.output;
    EXPECT_TRUE(entries(mta.queue_dir() + "/maildrop").empty());
    // root still may.
    ASSERT_EQ(sendmail(mta, {"-f", "bob", "alice"}, "Subject: allowed\n\nyes\n").exit_code, 0);
    EXPECT_NE(only_mail(mta, "alice").find("Subject: allowed"), std::string::npos);
}

TEST(SendmailUnprivileged, AConfigurationTheUserWroteIsRefused) {
    SetgidHelper helper;
    MtaInstance mta(helper.options());
    TempDir own;
    ::chmod(own.path().c_str(), 0755);
    own.write("main.cf", read_file(mta.main_cf_path()));
    ASSERT_EQ(::chown(own.path().c_str(), 65534, 65534), 0);
    ASSERT_EQ(::chown(own.file("main.cf").c_str(), 65534, 65534), 0);
    auto r = as_nobody({SENDMAIL, "-C", own.path(), "alice@example.org"}, "Subject: x\n\ny\n");
    EXPECT_EQ(r.exit_code, 72) << r.output;
    EXPECT_NE(r.output.find("alternate_config_directories"), std::string::npos) << r.output;
    auto direct = as_nobody({helper.dir.file("mta-core-postdrop"), "-c", own.path()}, "");
    EXPECT_EQ(direct.exit_code, 72) << direct.output;
}

TEST(Pickup, HostileMaildropFilesAreMovedAsideAndOtherMailIsDelivered) {
    MtaInstance mta(options("message_size_limit = 100000\n"));
    mta.stop();
    std::string drop = mta.queue_dir() + "/maildrop/";
    auto put = [&](const std::string& name, const std::string& bytes) {
        std::FILE* f = std::fopen((drop + name).c_str(), "wb");
        ASSERT_TRUE(f);
        std::fwrite(bytes.data(), 1, bytes.size(), f);
        std::fclose(f);
    };
    put("01garbage", "this is not a maildrop file\n");
    put("02nul", std::string("MTAD 1\nsender=a\nfullname=\nrcpt=alice@example.org\nsize=4\n\nx\0\r\nMTAD END\n", 69));
    put("03noend", "MTAD 1\nsender=a\nfullname=\nrcpt=alice@example.org\nsize=3\n\nx\r\n");
    std::string many = "MTAD 1\nsender=a\nfullname=\n";
    for (int i = 0; i < 10001; ++i) many += "rcpt=alice@example.org\n";
    put("04recipients", many + "size=3\n\nx\r\nMTAD END\n");
    put("05toobig", "MTAD 1\nsender=a\nfullname=\nrcpt=alice@example.org\nsize=200000\n\n" +
                        std::string(199998, 'x') + "\r\nMTAD END\n");
    put("06huge", std::string(9 << 20, 'x'));
    ASSERT_EQ(::symlink("/etc/passwd", (drop + "07symlink").c_str()), 0);
    // Two names that make the same name under corrupt/: neither is lost.
    put("09dup\n", "garbage one\n");
    put("09dup_", "garbage two\n");
    put("08badrcpt", "MTAD 1\nsender=a\nfullname=\nrcpt=alice@@example.org\nsize=3\n\nx\r\nMTAD END\n");
    // One good file among them.
    ASSERT_EQ(sendmail(mta, {"-f", "alice", "bob"}, "Subject: survivor\n\nstill delivered\n").exit_code, 0);
    mta.start();
    std::string mail = only_mail(mta, "bob");
    EXPECT_NE(mail.find("still delivered"), std::string::npos) << mail;
    for (const auto& [name, reason] : std::vector<std::pair<std::string, std::string>>{
             {"01garbage", "bad first line"},
             {"02nul", "NUL byte"},
             {"03noend", "missing end marker"},
             {"04recipients", "too many recipients"},
             {"05toobig", "message too big"},
             {"06huge", "file too big"},
             {"07symlink", "symbolic link refused"},
             {"08badrcpt", "malformed: bad recipient address syntax"}}) {
        EXPECT_TRUE(mta.maillog_has("maildrop/" + name + ": ")) << name << "\n" << mta.maillog();
        EXPECT_NE(mta.maillog().find(reason), std::string::npos) << name << ": " << reason;
        struct stat st;
        EXPECT_EQ(::lstat((mta.queue_dir() + "/corrupt/maildrop." + name).c_str(), &st), 0) << name;
    }
    std::string kept = read_file(mta.queue_dir() + "/corrupt/maildrop.09dup_") +
                       read_file(mta.queue_dir() + "/corrupt/maildrop.09dup_.1");
    EXPECT_NE(kept.find("garbage one"), std::string::npos) << kept;
    EXPECT_NE(kept.find("garbage two"), std::string::npos) << kept;
    EXPECT_TRUE(mta.maillog_has("maildrop/09dup?: ")) << "a newline in a name is logged as ?";
    EXPECT_TRUE(entries(mta.queue_dir() + "/maildrop").empty());
    // The symbolic link itself was moved, its target untouched.
    struct stat st;
    ASSERT_EQ(::lstat((mta.queue_dir() + "/corrupt/maildrop.07symlink").c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode));
    EXPECT_EQ(mta.command({"queue", "list"}).output.find("alice@example.org"), std::string::npos);
}

TEST(Sendmail, AMessageOverMessageSizeLimitIsRefusedAndNothingIsQueued) {
    MtaInstance mta(options("message_size_limit = 2000\n"));
    auto r = sendmail(mta, {"-f", "alice", "bob"}, "Subject: big\n\n" + std::string(3000, 'x') + "\n");
    EXPECT_EQ(r.exit_code, 65) << r.output;
    EXPECT_NE(r.output.find("message file too big"), std::string::npos) << r.output;
    EXPECT_TRUE(entries(mta.queue_dir() + "/maildrop").empty());
    // A bad address is refused by the command, not lost in corrupt/ later.
    auto bad = sendmail(mta, {"-f", "alice", "bob@@example.org"}, "Subject: x\n\ny\n");
    EXPECT_EQ(bad.exit_code, 65) << bad.output;
    EXPECT_NE(bad.output.find("bad recipient address syntax: bob@@example.org"), std::string::npos) << bad.output;
    // Just under the limit (CRLF line ends counted) still goes.
    ASSERT_EQ(sendmail(mta, {"-f", "alice", "bob"}, "Subject: fits\n\n" + std::string(1900, 'x') + "\n").exit_code, 0);
    EXPECT_NE(only_mail(mta, "bob").find("Subject: fits"), std::string::npos);
}

TEST(Sendmail, SmtpOnStandardInputWithDashBs) {
    MtaInstance mta(options());
    // swaks speaks SMTP to the command's standard input and output.
    std::string command = std::string(SENDMAIL) + " -C " + mta.dir().path() + " -bs";
    auto r = run({"swaks", "--pipe", command, "--from", "alice@example.org", "--to", "bob@example.org", "--header",
                  "Subject: over -bs"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("250 2.0.0 Ok: queued"), std::string::npos) << r.output;
    std::string mail = only_mail(mta, "bob");
    EXPECT_NE(mail.find("Subject: over -bs"), std::string::npos) << mail;
    EXPECT_TRUE(mta.maillog_has(": uid=0 from=<alice@example.org>"));
    // Errors are answered, not fatal; the dialogue goes on.
    auto bad = run({SENDMAIL, "-C", mta.dir().path(), "-bs"}, "EHLO x\r\nRCPT TO:<bob@example.org>\r\nBOGUS\r\nQUIT\r\n");
    EXPECT_EQ(bad.exit_code, 0) << bad.output;
    EXPECT_NE(bad.output.find("503 5.5.1 Error: need MAIL command"), std::string::npos) << bad.output;
    EXPECT_NE(bad.output.find("500 5.5.2 Error: command not recognized"), std::string::npos) << bad.output;
    EXPECT_NE(bad.output.find("221 2.0.0 Bye"), std::string::npos) << bad.output;
}

TEST(Pickup, AMessageThatCannotBeQueuedStaysInTheMaildropUntilItCan) {
    MtaInstance mta(options());
    mta.stop();
    ASSERT_EQ(sendmail(mta, {"-f", "alice", "bob"}, "Subject: first\n\nwaits\n").exit_code, 0);
    // The queue cannot take it (active/, where queue files are named, is
    // not writable by mail_owner).
    std::string active = mta.queue_dir() + "/active";
    ASSERT_EQ(::chmod(active.c_str(), 0500), 0);
    mta.start();
    EXPECT_TRUE(mta.maillog_has("warning: queue file write error")) << mta.maillog();
    EXPECT_EQ(entries(mta.queue_dir() + "/maildrop").size(), 1u) << "the message must not be lost";
    ASSERT_EQ(::chmod(active.c_str(), 0700), 0);
    // The next submission wakes pickup, which takes both.
    ASSERT_EQ(sendmail(mta, {"-f", "alice", "bob"}, "Subject: second\n\nwakes pickup\n").exit_code, 0);
    auto files = mta.wait_for_mail("bob", 2);
    ASSERT_EQ(files.size(), 2u) << mta.maillog();
    std::string both = read_file(files[0]) + read_file(files[1]);
    EXPECT_NE(both.find("Subject: first"), std::string::npos);
    EXPECT_NE(both.find("Subject: second"), std::string::npos);
    EXPECT_TRUE(entries(mta.queue_dir() + "/maildrop").empty());
}

TEST(SendmailUnprivileged, WorksUnderTheSystemdUnitsUmaskAndCapabilities) {
    // The unit runs mta-core with UMask=0077 and only the capabilities of
    // its CapabilityBoundingSet= (no CAP_FOWNER, no CAP_DAC_OVERRIDE).
    SetgidHelper helper;
    mtatest::Options o = helper.options();
    o.wrapper = {"/usr/bin/setpriv", "--bounding-set=-all,+net_bind_service,+setuid,+setgid,+chown", "--", "/bin/sh", "-c", "umask 077; exec \"$0\" \"$@\""};
    MtaInstance mta(o);
    struct stat st;
    ASSERT_EQ(::stat(mta.queue_dir().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0011, 0011u) << "queue_directory must be searchable by submitters";
    auto r = as_nobody({SENDMAIL, "-C", mta.dir().path(), "alice@example.org"}, "Subject: under the unit\n\nhi\n");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(only_mail(mta, "alice").find("Subject: under the unit"), std::string::npos);
    // A second start finds everything in place, with nothing to warn about.
    mta.stop();
    mta.start();
    EXPECT_EQ(mta.log().find("chmod"), std::string::npos) << mta.log();
}
