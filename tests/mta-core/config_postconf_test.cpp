// Differential tests against Debian's real Postfix: `postconf -c DIR -n`
// against Settings::print_non_default(), and every supported default against
// `postconf -d -h NAME`, except the rows of default_differences().
// Skipped where postconf is not installed.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "config/config.h"
#include "support/process.h"

using namespace mta::config;

namespace {

const char* postconf = "/usr/sbin/postconf";

bool have_postconf() { return std::filesystem::exists(postconf); }

std::string data(const std::string& rel) { return std::string(MTA_TEST_DATA) + "/" + rel; }

// stdout of a shell command (postconf warns on stderr; that is ignored).
std::string sh(const std::string& cmd) {
    auto r = testsupport::run({"/bin/sh", "-c", cmd + " 2>/dev/null"});
    EXPECT_EQ(r.exit_code, 0) << cmd;
    return r.output;
}

// postconf -n, less the config_directory line that -c adds.
std::string postconf_n(const std::string& dir) {
    std::string out = sh(std::string(postconf) + " -c " + dir + " -n");
    std::string kept;
    std::size_t pos = 0;
    while (pos < out.size()) {
        std::size_t end = out.find('\n', pos);
        std::string line = out.substr(pos, end - pos + 1);
        pos = end == std::string::npos ? out.size() : end + 1;
        if (!line.starts_with("config_directory = ")) kept += line;
    }
    return kept;
}

void compare_n(const std::string& main_cf, const std::string& master_cf) {
    testsupport::TempDir dir;
    dir.write("main.cf", main_cf);
    if (!master_cf.empty()) dir.write("master.cf", master_cf);
    Settings s(parse_main_cf(main_cf, dir.file("main.cf")), parse_master_cf(master_cf, "master.cf"));
    EXPECT_EQ(s.print_non_default(), postconf_n(dir.path()));
}

}  // namespace

TEST(MtaConfigPostconf, ClassicConfiguration) {
    if (!have_postconf()) GTEST_SKIP() << "postconf not installed";
    compare_n(testsupport::read_file(data("classic/main.cf")),
              testsupport::read_file(data("classic/master.cf")));
}

TEST(MtaConfigPostconf, DebianStockConfiguration) {
    if (!have_postconf()) GTEST_SKIP() << "postconf not installed";
    compare_n(testsupport::read_file(data("debian/main.cf")),
              testsupport::read_file(data("debian/master.cf")));
}

TEST(MtaConfigPostconf, InstalledSampleFiles) {
    if (!have_postconf()) GTEST_SKIP() << "postconf not installed";
    for (auto f : {"/usr/share/postfix/main.cf.dist", "/usr/share/postfix/main.cf.debian",
                   "/usr/share/postfix/main.cf.tls"}) {
        if (!std::filesystem::exists(f)) continue;
        SCOPED_TRACE(f);
        compare_n(testsupport::read_file(f), "");
    }
}

TEST(MtaConfigPostconf, ContinuationsCommentsOverridesAndUnknowns) {
    if (!have_postconf()) GTEST_SKIP() << "postconf not installed";
    compare_n("myhostname =   a    b\t\tc  \nmydomain=x\n   \t\nmyorigin = one\n\ttwo\n"
              "# c\n  three\nrelay_domains = $mydomain  ,  {a b}\nfoo = bar\nempty =\n"
              "mydomain = y\nmua_x = permit\nsmtpd_client_restrictions = $mua_x\n"
              "smtpd_per_record_deadline = yes\nstress = yes\nrelayhost =\n"
              "spf_time_limit = 10\nspf_destination_recipient_limit = 1\nrelay_time_limit = 5\n"
              "relay_destination_recipient_limit = 2\nsubmission_time_limit = 1\nmua_y = z\n",
              "smtp inet n - n - - smtpd\nsubmission inet n - n - - smtpd -o x=$mua_y\n"
              "spf unix - n n - 0 spawn user=nobody argv=/x\nrelay unix - - n - - smtp\n");
}

TEST(MtaConfigPostconf, SupportedDefaultsEqualPostfixExceptDocumented) {
    if (!have_postconf()) GTEST_SKIP() << "postconf not installed";
    // One postconf run for all names.
    std::string names;
    std::map<std::string, const DefaultDifference*, std::less<>> diffs;
    for (const auto& d : default_differences()) diffs.emplace(std::string(d.name), &d);
    for (const auto& p : parameter_table()) names += " " + std::string(p.name);
    std::string out = sh(std::string(postconf) + " -d" + names);
    std::map<std::string, std::string, std::less<>> postfix;
    std::size_t pos = 0;
    while (pos < out.size()) {
        std::size_t end = out.find('\n', pos);
        std::string line = out.substr(pos, end - pos);
        pos = end == std::string::npos ? out.size() : end + 1;
        std::size_t eq = line.find(" =");
        ASSERT_NE(eq, std::string::npos) << line;
        std::string value = line.size() > eq + 3 ? line.substr(eq + 3) : "";
        postfix[line.substr(0, eq)] = value;
    }
    int compared = 0;
    for (const auto& p : parameter_table()) {
        auto it = postfix.find(p.name);
        ASSERT_NE(it, postfix.end()) << p.name << " is unknown to Postfix";
        if (p.computed || p.support != Support::supported) continue;
        if (auto d = diffs.find(p.name); d != diffs.end()) {
            EXPECT_EQ(it->second, d->second->postfix_37) << p.name;
            continue;
        }
        EXPECT_EQ(it->second, p.default_value) << p.name;
        ++compared;
    }
    EXPECT_GT(compared, 200);
}

TEST(MtaConfigPostconf, CompatibilityLevelDefaultsEvaluateLikePostfix36) {
    if (!have_postconf()) GTEST_SKIP() << "postconf not installed";
    testsupport::TempDir dir;
    dir.write("main.cf", "compatibility_level = 3.6\nmyhostname = h.example\nmydomain = example\n");
    Settings s(parse_main_cf("myhostname = h.example\nmydomain = example\n", "main.cf"),
               std::vector<std::string>{});
    for (const auto& d : default_differences()) {
        if (std::string_view(d.reason) != "compatibility_level 3.6 value") continue;
        std::string v = sh(std::string(postconf) + " -c " + dir.path() + " -x -h " + std::string(d.name));
        if (!v.empty() && v.back() == '\n') v.pop_back();
        EXPECT_EQ(s.str(d.name), v) << d.name;
    }
}
