// Differential tests against Debian's real Postfix: `postconf -c DIR -n`
// against Settings::print_non_default(), and every supported default against
// `postconf -d -h NAME`, except the rows of default_differences().
// Skipped where postconf is not installed.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>

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
    EXPECT_GT(compared, 100);
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

namespace {

// "name = value" lines into a map.
std::map<std::string, std::string, std::less<>> name_values(const std::string& out) {
    std::map<std::string, std::string, std::less<>> m;
    std::size_t pos = 0;
    while (pos < out.size()) {
        std::size_t end = out.find('\n', pos);
        std::string line = out.substr(pos, end - pos);
        pos = end == std::string::npos ? out.size() : end + 1;
        std::size_t eq = line.find(" =");
        if (eq == std::string::npos) continue;
        m[line.substr(0, eq)] = line.size() > eq + 3 ? line.substr(eq + 3) : "";
    }
    return m;
}

}  // namespace

// Every parameter of the table, expanded, as `postconf -x` expands it for the
// classic configuration at compatibility_level 3.6 (raw parameters such as
// default_rbl_reply stay unexpanded in both).
TEST(MtaConfigPostconf, ExpandedValuesEqualPostconfX) {
    if (!have_postconf()) GTEST_SKIP() << "postconf not installed";
    testsupport::TempDir dir;
    std::string main_cf = testsupport::read_file(data("classic/main.cf")) + "compatibility_level = 3.6\n";
    std::string master_cf = testsupport::read_file(data("classic/master.cf"));
    dir.write("main.cf", main_cf);
    dir.write("master.cf", master_cf);
    auto postfix = name_values(sh(std::string(postconf) + " -c " + dir.path() + " -x"));
    Settings s(parse_main_cf(main_cf, dir.file("main.cf")), parse_master_cf(master_cf, "master.cf"));
    for (auto name : {"mynetworks", "mail_version"}) s.set_computed_default(name, postfix.at(name));
    s.set_computed_default("config_directory", dir.path());
    std::map<std::string_view, std::string_view> ours_differ;
    for (const auto& d : default_differences())
        if (std::string_view(d.reason) != "compatibility_level 3.6 value") ours_differ[d.name] = d.reason;
    int compared = 0;
    for (const auto& p : parameter_table()) {
        auto it = postfix.find(p.name);
        ASSERT_NE(it, postfix.end()) << p.name;
        if (ours_differ.contains(p.name)) continue;
        EXPECT_EQ(s.str(p.name), it->second) << p.name;
        ++compared;
    }
    EXPECT_GT(compared, 250);
    EXPECT_EQ(s.str("policy-spf_time_limit"), postfix.at("policy-spf_time_limit"));
}

// master.cf -o overrides as `postconf -P` reads them.
TEST(MtaConfigPostconf, MasterOverridesEqualPostconfP) {
    if (!have_postconf()) GTEST_SKIP() << "postconf not installed";
    std::string tricky =
        "submission inet n - n - - smtpd\n"
        "  -o { smtpd_client_restrictions = permit_sasl_authenticated, reject }\n"
        "#  -o commented=out\n"
        "  -o syslog_name=postfix/submission\n"
        "  -o smtpd_tls_wrappermode=yes -o milter_macro_daemon_name=ORIGINATING\n"
        "127.0.0.1:2525 inet n - n - - smtpd -o smtpd_relay_restrictions=\n"
        "policy unix - n n - 0 spawn user=nobody argv=/bin/p { a b } -o not=override\n"
        "smtp inet n - n - - smtpd -v -o a_b=c -D -o { d = e f }\n"
        "x unix - n n - - pipe flags=F argv=/x -o y=z\n";
    for (const auto& master_cf : {testsupport::read_file(data("classic/master.cf")),
                                  testsupport::read_file(data("debian/master.cf")), tricky}) {
        testsupport::TempDir dir;
        dir.write("main.cf", "myhostname = h.example\n");
        dir.write("master.cf", master_cf);
        auto postfix = name_values(sh(std::string(postconf) + " -c " + dir.path() + " -P"));
        std::map<std::string, std::string, std::less<>> ours;
        for (const auto& e : parse_master_cf(master_cf, "master.cf"))
            for (const auto& [n, v] : e.overrides) ours[e.service + "/" + e.type + "/" + n] = v;
        EXPECT_EQ(ours, postfix);
    }
}

namespace {

std::string collapse(std::string_view s) {
    std::string out;
    bool space = false;
    for (char c : s) {
        if (c == ' ' || c == '\t' || c == '\n') {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

// A random main.cf (fixed seed): known and user-defined names whose values
// reference only names defined later in the pool (no loops), in every macro
// form, laid out with continuation lines, comments, blank lines, odd spacing
// and repeated definitions.
std::string random_main_cf(unsigned seed, std::vector<std::string>& known) {
    std::mt19937 rng(seed);
    auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
    // Pool order is the reference order: each name references later ones.
    std::vector<std::string> pool{"smtpd_banner", "u_first", "mydestination", "myorigin", "relay_domains",
                                  "u_second", "mail_name", "mydomain", "u_third", "myhostname"};
    known = {"smtpd_banner", "mydestination", "myorigin", "relay_domains", "mail_name", "mydomain", "myhostname"};
    const char* words[] = {"alpha", "b.example", "c,", "{x y}", "3600s", "-", "a=b", "#not", "x.y.z"};
    auto ref = [&](std::size_t from) -> std::string {
        if (from + 1 >= pool.size()) return words[pick(9)];
        const std::string& n = pool[from + 1 + pick(pool.size() - from - 1)];
        switch (pick(8)) {
            case 0: return "$" + n;
            case 1: return "${" + n + "}";
            case 2: return "$(" + n + ")";
            case 3: return "${" + n + "?" + words[pick(9)] + "}";
            case 4: return "${" + n + ":" + words[pick(9)] + "}";
            case 5: return "${" + n + "?{" + words[pick(9)] + "}:{" + words[pick(9)] + "}}";
            case 6: return "$$";
            default: return "${{$" + n + "} == {alpha} ? {same} : {other}}";
        }
    };
    std::string text = "# generated\n";
    for (std::size_t i = 0; i < pool.size(); ++i) {
        for (int rep = 0; rep < (pick(5) == 0 ? 2 : 1); ++rep) {
            text += pool[i] + std::string(pick(3), ' ') + "=" + std::string(pick(3), pick(2) ? ' ' : '\t');
            int tokens = static_cast<int>(pick(5));
            for (int t = 0; t < tokens; ++t) {
                std::string tok = pick(2) ? ref(i) : words[pick(9)];
                switch (pick(6)) {
                    case 0: text += "\n" + std::string(1 + pick(3), pick(2) ? ' ' : '\t'); break;
                    case 1: text += "\n# comment inside\n\n   \n  "; break;
                    default: text += std::string(1 + pick(2), ' ');
                }
                text += tok;
            }
            text += std::string(pick(3), ' ') + "\n";
            if (pick(4) == 0) text += "\n# between\n";
        }
    }
    if (pick(2)) text += "unknown_thing = 1\n";
    return text;
}

}  // namespace

// Random configurations read by Postfix and by mta-core: postconf -n and
// every known parameter expanded (postconf -x) agree.
TEST(MtaConfigPostconf, RandomConfigurationsAgree) {
    if (!have_postconf()) GTEST_SKIP() << "postconf not installed";
    // MTA_RANDOM_CONFIGS=N runs more (each costs two postconf runs).
    unsigned count = 6;
    if (const char* n = std::getenv("MTA_RANDOM_CONFIGS")) count = static_cast<unsigned>(std::atoi(n));
    for (unsigned seed = 1; seed <= count; ++seed) {
        SCOPED_TRACE("seed " + std::to_string(seed));
        std::vector<std::string> known;
        std::string main_cf = random_main_cf(seed, known);
        SCOPED_TRACE(main_cf);
        testsupport::TempDir dir;
        dir.write("main.cf", main_cf);
        Settings s(parse_main_cf(main_cf, dir.file("main.cf")), std::vector<std::string>{});
        EXPECT_EQ(s.print_non_default(), postconf_n(dir.path()));
        std::string names;
        for (const auto& n : known) names += " " + n;
        std::string expanded = sh(std::string(postconf) + " -c " + dir.path() + " -x" + names);
        std::string ours;
        for (const auto& n : known) {
            std::string v = collapse(s.str(n));
            ours += n + (v.empty() ? " =" : " = " + v) + "\n";
        }
        EXPECT_EQ(ours, expanded);
        if (ours != expanded) dir.write("../mta-fail-" + std::to_string(seed) + ".cf", main_cf);
    }
}
