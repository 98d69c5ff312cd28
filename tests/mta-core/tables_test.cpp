// mta_tables unit tests: every table type from real files written by the
// test, aliases(5) sources, and access(5) search orders.
#include <gtest/gtest.h>

#include <unistd.h>

#include "support/process.h"
#include "tables/tables.h"

using namespace mta::tables;
using mta::config::ConfigError;

namespace {

std::string data(const std::string& rel) { return std::string(MTA_TEST_DATA) + "/" + rel; }

std::string error_of(auto&& f) {
    try {
        f();
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "(no error)";
}

// A table of type from text, written to a file in a temp dir.
class MtaTables : public ::testing::Test {
protected:
    std::shared_ptr<Table> open(const std::string& type, const std::string& text,
                                Flavour flavour = Flavour::access) {
        dir_.write("t." + type, text);
        return open_table(type + ":" + dir_.file("t." + type), flavour, dir_.path());
    }
    std::string error(const std::string& type, const std::string& text) {
        return error_of([&] { open(type, text); });
    }
    testsupport::TempDir dir_;
};

std::string get(const std::shared_ptr<Table>& t, std::string_view key) {
    auto v = t->lookup(key);
    return v ? *v : "(none)";
}

}  // namespace

// ------------------------------------------------------------------ types

TEST_F(MtaTables, InlineAndStatic) {
    auto t = open_table("inline:{ Key1=value1, { key2 = value with spaces }, k3=a=b }", Flavour::access, "/");
    EXPECT_EQ(get(t, "key1"), "value1");
    EXPECT_EQ(get(t, "KEY1"), "value1");
    EXPECT_EQ(get(t, "key2"), "value with spaces");
    EXPECT_EQ(get(t, "k3"), "a=b");
    EXPECT_EQ(get(t, "nokey"), "(none)");
    EXPECT_FALSE(t->is_pattern());
    EXPECT_EQ(t->spec(), "inline:{ Key1=value1, { key2 = value with spaces }, k3=a=b }");
    auto s = open_table("static:OK", Flavour::access, "/");
    EXPECT_EQ(get(s, "anything"), "OK");
    EXPECT_EQ(get(open_table("static:{ REJECT go away }", Flavour::access, "/"), "x"), "REJECT go away");
    EXPECT_NE(error_of([] { open_table("inline:{ a }", Flavour::access, "/"); }).find("name=value"), std::string::npos);
    EXPECT_NE(error_of([] { open_table("inline:a=b", Flavour::access, "/"); }).find("inline:{"), std::string::npos);
}

TEST_F(MtaTables, HashTexthashLmdbReadTheSourceFile) {
    std::string src = "# access table\nUser@Example.COM   REJECT go away\n\nexample.net OK\n"
                      "multi  line\n  continued\nexample.net DUPLICATE\n";
    for (auto type : {"hash", "texthash", "lmdb"}) {
        SCOPED_TRACE(type);
        auto t = open(type, src);
        EXPECT_EQ(get(t, "user@example.com"), "REJECT go away");
        EXPECT_EQ(get(t, "USER@example.com"), "REJECT go away");
        EXPECT_EQ(get(t, "example.net"), "OK");  // first definition wins, as postmap
        EXPECT_EQ(get(t, "multi"), "line  continued");
        EXPECT_EQ(get(t, "missing"), "(none)");
        ASSERT_EQ(t->warnings().size(), 1u);
        EXPECT_NE(t->warnings()[0].find("line 7: duplicate entry: \"example.net\""), std::string::npos);
        EXPECT_EQ(t->spec(), std::string(type) + ":" + dir_.file(std::string("t.") + type));
    }
    EXPECT_NE(error("hash", "a b\nkeyonly\n").find("t.hash, line 2: expected format: key whitespace value"),
              std::string::npos);
}

TEST_F(MtaTables, RelativePathsUnderConfigDirAndErrors) {
    dir_.write("access", "1.2.3.4 REJECT\n");
    auto t = open_table("hash:access", Flavour::access, dir_.path());
    EXPECT_EQ(get(t, "1.2.3.4"), "REJECT");
    EXPECT_EQ(get(open_table("proxy:hash:access", Flavour::access, dir_.path()), "1.2.3.4"), "REJECT");
    EXPECT_NE(error_of([&] { open_table("hash:missing", Flavour::access, dir_.path()); }).find("hash:missing: open"),
              std::string::npos);
    EXPECT_NE(error_of([] { open_table("btree:/x", Flavour::access, "/"); }).find("unsupported table type"),
              std::string::npos);
    EXPECT_NE(error_of([] { open_table("nis:mail.aliases", Flavour::aliases, "/"); }).find("unsupported"),
              std::string::npos);
    EXPECT_NE(error_of([] { open_table("noColon", Flavour::access, "/"); }).find("type:name"), std::string::npos);
    EXPECT_NE(error_of([] { open_table("hash:", Flavour::access, "/"); }).find("missing file name"), std::string::npos);
}

TEST_F(MtaTables, AliasesWithContinuationLines) {
    auto t = open("hash",
                  "# /etc/aliases\npostmaster:    root\nMAILER-DAEMON: postmaster\n"
                  "team: alice,\n  bob,\n\tcarol@example.org\n"
                  "\"quoted name\": dave\nroot: admin # not a comment\n",
                  Flavour::aliases);
    EXPECT_EQ(get(t, "postmaster"), "root");
    EXPECT_EQ(get(t, "mailer-daemon"), "postmaster");
    EXPECT_EQ(get(t, "team"), "alice,  bob,\tcarol@example.org");
    EXPECT_EQ(get(t, "quoted name"), "dave");
    EXPECT_EQ(get(t, "root"), "admin # not a comment");
    std::string e = error_of([&] { open("hash", "ok: x\nno colon here\n", Flavour::aliases); });
    EXPECT_NE(e.find("line 2: expected format: name: value"), std::string::npos) << e;
    EXPECT_NE(error_of([&] { open("hash", "empty:\n", Flavour::aliases); }).find("line 1"), std::string::npos);
}

TEST_F(MtaTables, LoginMapsPcreMapsAnAddressToItself) {
    auto t = open_table("pcre:login_maps.pcre", Flavour::access, data("classic"));
    EXPECT_TRUE(t->is_pattern());
    EXPECT_EQ(get(t, "alice@example.org"), "alice@example.org");
    EXPECT_EQ(get(t, "Bob+Tag@Example.ORG"), "Bob+Tag@Example.ORG");
    EXPECT_EQ(get(t, ""), "");  // /^(.*)$/ matches the empty string too
}

TEST_F(MtaTables, PcreFlagsIfEndifNegationAndSubstitution) {
    auto t = open("pcre",
                  "# comment\n"
                  "/^admin@/            REJECT admins do not send mail\n"
                  "/^CaseSensitive$/i   OK exact case\n"
                  "if /@example\\.com$/\n"
                  "/^(.+)\\+(.+)@/       ${1} with ext $2 and $$5\n"
                  "!/^info@/            PERMIT not info\n"
                  "endif\n"
                  "/^(a)|(b)$/          [$1][$2]\n"
                  "%slash%              delimiter $$\n");
    EXPECT_EQ(get(t, "ADMIN@x"), "REJECT admins do not send mail");
    EXPECT_EQ(get(t, "CaseSensitive"), "OK exact case");
    EXPECT_EQ(get(t, "casesensitive"), "(none)");
    EXPECT_EQ(get(t, "joe+list@example.com"), "joe with ext list and $5");
    EXPECT_EQ(get(t, "joe@example.com"), "PERMIT not info");
    EXPECT_EQ(get(t, "info@example.com"), "(none)");
    EXPECT_EQ(get(t, "joe+list@example.org"), "(none)");  // outside the if
    EXPECT_EQ(get(t, "b"), "[][b]");                       // unmatched group is empty
    EXPECT_EQ(get(t, "has slash in it"), "delimiter $");
}

TEST_F(MtaTables, PcreErrorsNameFileAndLine) {
    EXPECT_NE(error("pcre", "/ok/ x\n/(unclosed/ x\n").find("t.pcre, line 2: error in pattern"), std::string::npos);
    EXPECT_NE(error("pcre", "/a/\n").find("line 1: no result"), std::string::npos);
    EXPECT_NE(error("pcre", "/a/ $1\n").find("out-of-range replacement index $1"), std::string::npos);
    EXPECT_NE(error("pcre", "/(a)/ $x\n").find("non-numeric"), std::string::npos);
    EXPECT_NE(error("pcre", "!/(a)/ $1\n").find("negated"), std::string::npos);
    EXPECT_NE(error("pcre", "/a/q x\n").find("unknown pcre flag"), std::string::npos);
    EXPECT_NE(error("pcre", "/a x\n").find("no closing pattern delimiter"), std::string::npos);
    EXPECT_NE(error("pcre", "if /a/\n/b/ c\n").find("no matching \"endif\""), std::string::npos);
    EXPECT_NE(error("pcre", "endif\n").find("line 1: \"endif\" without \"if\""), std::string::npos);
    EXPECT_NE(error("pcre", "a b\n").find("bad pattern delimiter"), std::string::npos);
}

TEST_F(MtaTables, RegexpPosix) {
    auto t = open("regexp",
                  "/^([^@]+)@example\\.com$/   local $1\n"
                  "/^postmaster@/!/example\\.net$/ not net\n"
                  "if !/^x/\n"
                  "/y/ has y\n"
                  "endif\n"
                  "/^CAPS$/i exact\n");
    EXPECT_TRUE(t->is_pattern());
    EXPECT_EQ(get(t, "Joe@EXAMPLE.com"), "local Joe");
    EXPECT_EQ(get(t, "postmaster@example.org"), "not net");
    EXPECT_EQ(get(t, "postmaster@example.net"), "(none)");
    EXPECT_EQ(get(t, "ay"), "has y");
    EXPECT_EQ(get(t, "xy"), "(none)");
    EXPECT_EQ(get(t, "CAPS"), "exact");
    EXPECT_EQ(get(t, "caps"), "(none)");
    EXPECT_EQ(get(t, std::string_view("a\0y", 3)), "(none)");
    EXPECT_NE(error("regexp", "/a[/ x\n").find("t.regexp, line 1: error in pattern"), std::string::npos);
    EXPECT_NE(error("regexp", "/(a)/ $2\n").find("out-of-range"), std::string::npos);
}

TEST_F(MtaTables, CidrIPv4AndIPv6) {
    auto t = open("cidr",
                  "# cidr table\n"
                  "192.0.2.0/24       REJECT test net\n"
                  "198.51.100.7       OK one host\n"
                  "[2001:db8::]/32    REJECT v6 doc\n"
                  "::1                OK loopback6\n"
                  "if 10.0.0.0/8\n"
                  "!10.1.0.0/16       inside ten not ten-one\n"
                  "endif\n"
                  "0.0.0.0/0          DUNNO any v4\n");
    EXPECT_TRUE(t->is_pattern());
    EXPECT_EQ(get(t, "192.0.2.55"), "REJECT test net");
    EXPECT_EQ(get(t, "198.51.100.7"), "OK one host");
    EXPECT_EQ(get(t, "198.51.100.8"), "DUNNO any v4");
    EXPECT_EQ(get(t, "2001:db8:1::5"), "REJECT v6 doc");
    EXPECT_EQ(get(t, "::1"), "OK loopback6");
    EXPECT_EQ(get(t, "2001:db9::1"), "(none)");  // 0.0.0.0/0 is IPv4 only
    EXPECT_EQ(get(t, "10.2.3.4"), "inside ten not ten-one");
    EXPECT_EQ(get(t, "10.1.3.4"), "DUNNO any v4");
    EXPECT_EQ(get(t, "not-an-ip"), "(none)");
    EXPECT_NE(error("cidr", "192.0.2.1/24 x\n").find("non-null host address bits"), std::string::npos);
    EXPECT_NE(error("cidr", "192.0.2.0/33 x\n").find("line 1: bad net/mask"), std::string::npos);
    EXPECT_NE(error("cidr", "192.0.2.0/24\n").find("no result"), std::string::npos);
    EXPECT_NE(error("cidr", "if 10.0.0.0/8\n").find("endif"), std::string::npos);
}

TEST_F(MtaTables, UnixPasswd) {
    auto t = open_table("proxy:unix:passwd.byname", Flavour::access, "/");
    auto root = t->lookup("root");
    ASSERT_TRUE(root);
    EXPECT_TRUE(root->starts_with("root:"));
    EXPECT_EQ(get(t, "no-such-user-here-xyz"), "(none)");
    EXPECT_THROW(open_table("unix:group.byname", Flavour::access, "/"), ConfigError);
}

// --------------------------------------------------------- search orders

TEST_F(MtaTables, AddressSearchOrder) {
    // Each key answers with its own name, so the first key tried wins.
    auto all = open("hash",
                    "user+ext@sub.example.com a1\nuser@sub.example.com a2\nsub.example.com a3\n"
                    "example.com a4\n.example.com a5\nuser+ext@ a6\nuser@ a7\n");
    EXPECT_EQ(lookup_address(*all, "user+ext@sub.example.com", "+", true), "a1");
    EXPECT_EQ(lookup_address(*all, "USER+EXT@SUB.EXAMPLE.COM", "+", true), "a1");
    EXPECT_EQ(lookup_address(*all, "user+other@sub.example.com", "+", true), "a2");
    EXPECT_EQ(lookup_address(*all, "other@sub.example.com", "+", true), "a3");
    EXPECT_EQ(lookup_address(*all, "other@deep.example.com", "+", true), "a4");
    EXPECT_EQ(lookup_address(*all, "other@deep.example.com", "+", false), "a5");
    EXPECT_EQ(lookup_address(*all, "user+ext@elsewhere.org", "+", true), "a6");
    EXPECT_EQ(lookup_address(*all, "user+zz@elsewhere.org", "+", true), "a7");
    EXPECT_EQ(lookup_address(*all, "user+zz@elsewhere.org", "", true), std::nullopt);
    EXPECT_EQ(lookup_address(*all, "nobody@elsewhere.org", "+", true), std::nullopt);
    // Several delimiter characters (Postfix 2.11).
    EXPECT_EQ(lookup_address(*all, "user-x@elsewhere.org", "+-", true), "a7");
    // A leading delimiter is not an extension.
    auto plus = open("texthash", "+user@example.org p\n");
    EXPECT_EQ(lookup_address(*plus, "+user@example.org", "+", true), "p");
    // The null sender as smtpd_null_access_lookup_key.
    auto nul = open("texthash", "<> REJECT\n");
    EXPECT_EQ(lookup_address(*nul, "<>", "+", true), "REJECT");
}

TEST_F(MtaTables, AddressSearchOrderTopLevelAndPatterns) {
    auto tld = open("texthash", "com top\n");
    EXPECT_EQ(lookup_address(*tld, "a@b.example.com", "+", true), "top");
    EXPECT_EQ(lookup_address(*tld, "a@b.example.com", "+", false), std::nullopt);
    auto dot = open("texthash", ".com dottop\n");
    EXPECT_EQ(lookup_address(*dot, "a@b.example.com", "+", false), "dottop");
    // Pattern tables get the whole address, once.
    auto re = open("pcre", "/^user@example\\.com$/ whole\n/^example\\.com$/ domain-only\n");
    EXPECT_EQ(lookup_address(*re, "user@example.com", "+", true), "whole");
    EXPECT_EQ(lookup_address(*re, "other@example.com", "+", true), std::nullopt);
}

TEST_F(MtaTables, DomainSearchOrder) {
    auto t = open("texthash", "mail.example.com m\nexample.org o\n.example.net n\n");
    EXPECT_EQ(lookup_domain(*t, "mail.example.com", true), "m");
    EXPECT_EQ(lookup_domain(*t, "a.b.example.org", true), "o");
    EXPECT_EQ(lookup_domain(*t, "a.b.example.org", false), std::nullopt);
    EXPECT_EQ(lookup_domain(*t, "x.example.net", false), "n");
    EXPECT_EQ(lookup_domain(*t, "example.net", false), std::nullopt);
    EXPECT_EQ(lookup_domain(*t, "", true), std::nullopt);
    auto re = open("regexp", "/\\.example\\.com$/ sub\n");
    EXPECT_EQ(lookup_domain(*re, "a.example.com", true), "sub");
}

TEST_F(MtaTables, ClientAddressSearchOrder) {
    auto t = open("texthash", "192.0.2.1 host\n192.0.2 net24\n198.51 net16\n10 net8\n"
                              "2001:db8:0:1 v6net\n2001:db8: v6colon\n");
    EXPECT_EQ(lookup_client_address(*t, "192.0.2.1"), "host");
    EXPECT_EQ(lookup_client_address(*t, "192.0.2.9"), "net24");
    EXPECT_EQ(lookup_client_address(*t, "198.51.100.1"), "net16");
    EXPECT_EQ(lookup_client_address(*t, "10.9.9.9"), "net8");
    EXPECT_EQ(lookup_client_address(*t, "11.9.9.9"), std::nullopt);
    EXPECT_EQ(lookup_client_address(*t, "2001:db8:0:1:2:3:4:5"), "v6net");
    EXPECT_EQ(lookup_client_address(*t, "2001:db8::1"), "v6colon");
    auto cidr = open("cidr", "192.0.2.0/24 REJECT\n");
    EXPECT_EQ(lookup_client_address(*cidr, "192.0.2.200"), "REJECT");
}

TEST_F(MtaTables, ParseTableWithoutFiles) {
    auto t = parse_table("texthash", "a b\n", Flavour::access, "mem");
    EXPECT_EQ(get(t, "a"), "b");
    EXPECT_EQ(t->spec(), "texthash:mem");
    EXPECT_THROW(parse_table("ldap", "", Flavour::access, "mem"), ConfigError);
}
