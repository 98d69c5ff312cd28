// Unit tests of policyd-spf's pure parts: the RFC 7208 record pre-check and
// rewrite, explanation macros, the option -> reply mapping of verdict()
// (outcomes given directly, no DNS), headers, and the DNS answer cache.

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "dns.h"
#include "spf_policy.h"
#include "spf_record.h"

namespace {

using spf::Identity;
using spf::Outcome;
using spf::Result;

// --- record syntax ------------------------------------------------------------

TEST(SpfRecord, AcceptsValidRecords) {
    for (const char* r : {"v=spf1", "v=spf1 -all", "V=SPF1 +a mx/24 ~all", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all",
                          "v=spf1 a:%{d}.example.com/24//64 -all", "v=spf1 include:_spf.example.com ?all",
                          "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all", "v=spf1 redirect=_spf.example.com",
                          "v=spf1 -all exp=explain.%{d}", "v=spf1 ip4:0.0.0.0/0", "v=spf1 foo-bar=baz -all",
                          "v=spf1 exp=x.example.com a -all"}) {
        auto p = spf::parse_record(r);
        EXPECT_TRUE(p.record) << r << ": " << p.error;
    }
}

TEST(SpfRecord, RejectsWhatRfc7208CallsPermerror) {
    for (const char* r : {"v=spf1 a:foo.123", "v=spf1 redirect=a.example.com redirect=b.example.com",
                          "v=spf1 -all exp=a.example.com exp=b.example.com", "v=spf1 a:%{c}.example.com",
                          "v=spf1 ip4:192.0.2.1/032", "v=spf1 ip4:192.0.2.1/33", "v=spf1 ip6:::1/129",
                          "v=spf1 frobnicate", "v=spf1 all:foo", "v=spf1 a:example.com\x80",
                          "v=spf1 include", "v=spf1 mx//129", "v=spf1 ip4:1.2.3", "v=spf1 -all exp=",
                          "v=spf1 a:%{x}.example.com", "v=spf1 a:%{d0}.example.com", "v=spf1 a:foo..example.com"}) {
        auto p = spf::parse_record(r);
        EXPECT_FALSE(p.record) << r;
        EXPECT_FALSE(p.error.empty()) << r;
    }
}

TEST(SpfRecord, OnlyVersionOneRecordsAreSpf) {
    EXPECT_TRUE(spf::is_spf_record("v=spf1"));
    EXPECT_TRUE(spf::is_spf_record("v=SPF1 -all"));
    EXPECT_FALSE(spf::is_spf_record("v=spf10 -all"));
    EXPECT_FALSE(spf::is_spf_record("v=spf1-all"));
    EXPECT_FALSE(spf::is_spf_record("spf2.0/pra -all"));
}

TEST(SpfRecord, DomainNames) {
    EXPECT_TRUE(spf::valid_domain_name("example.com"));
    EXPECT_TRUE(spf::valid_domain_name("example.com."));
    EXPECT_FALSE(spf::valid_domain_name("museum"));
    EXPECT_FALSE(spf::valid_domain_name("a..example.com"));
    EXPECT_FALSE(spf::valid_domain_name(std::string(64, 'a') + ".example.com"));
    EXPECT_FALSE(spf::valid_domain_name(""));
}

TEST(SpfRecord, RewriteForLibspf2) {
    auto p = spf::parse_record("v=spf1 exp=e.example.com redirect=r.example.com ip4:192.0.2.1/0 "
                               "a/24//64 mx:m.example.com//0 unknown=x -all");
    ASSERT_TRUE(p.record) << p.error;
    EXPECT_EQ(spf::to_libspf2(*p.record, false),
              "v=spf1 +ip4:0.0.0.0/1 +ip4:128.0.0.0/1 +a/24 +mx:m.example.com -all exp=e.example.com");
    EXPECT_EQ(spf::to_libspf2(*p.record, true),
              "v=spf1 +ip4:0.0.0.0/1 +ip4:128.0.0.0/1 +a//64 +exists:m.example.com.mx6.spf-probe.invalid "
              "-all exp=e.example.com");
    auto r = spf::parse_record("v=spf1 a redirect=r.example.com");
    ASSERT_TRUE(r.record);
    EXPECT_EQ(spf::to_libspf2(*r.record, false), "v=spf1 +a redirect=r.example.com");
}

// --- explanation macros (RFC 7208 section 7) ------------------------------------

spf::MacroContext context(bool v6) {
    spf::MacroContext c;
    c.sender = "strong-bad@email.example.com";
    c.domain = "email.example.com";
    c.helo = "mx.example.org";
    c.receiver = "mx.receiver.example";
    c.now = 1700000000;
    c.v6 = v6;
    if (v6)
        ::inet_pton(AF_INET6, "2001:db8::cb01", c.ip.data());
    else
        ::inet_pton(AF_INET, "192.0.2.3", c.ip.data());
    return c;
}

std::string expand(std::string_view text, bool v6 = false) {
    auto out = spf::expand_explanation(text, context(v6), 1000);
    return out ? *out : "<invalid>";
}

TEST(SpfMacro, Rfc7208Examples) {
    // Section 7.4's examples.
    EXPECT_EQ(expand("%{s}"), "strong-bad@email.example.com");
    EXPECT_EQ(expand("%{o}"), "email.example.com");
    EXPECT_EQ(expand("%{d}"), "email.example.com");
    EXPECT_EQ(expand("%{d4}"), "email.example.com");
    EXPECT_EQ(expand("%{d3}"), "email.example.com");
    EXPECT_EQ(expand("%{d2}"), "example.com");
    EXPECT_EQ(expand("%{d1}"), "com");
    EXPECT_EQ(expand("%{dr}"), "com.example.email");
    EXPECT_EQ(expand("%{d2r}"), "example.email");
    EXPECT_EQ(expand("%{l}"), "strong-bad");
    EXPECT_EQ(expand("%{l-}"), "strong.bad");
    EXPECT_EQ(expand("%{lr}"), "strong-bad");
    EXPECT_EQ(expand("%{lr-}"), "bad.strong");
    EXPECT_EQ(expand("%{l1r-}"), "strong");
    EXPECT_EQ(expand("%{ir}.%{v}._spf.%{d2}"), "3.2.0.192.in-addr._spf.example.com");
    EXPECT_EQ(expand("%{lr-}.lp._spf.%{d2}"), "bad.strong.lp._spf.example.com");
    EXPECT_EQ(expand("%{ir}.%{v}._spf.%{d2}", true),
              "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
}

TEST(SpfMacro, ExplanationOnlyLettersEscapesAndUrlEncoding) {
    EXPECT_EQ(expand("%{c} %{r} %{t} %{h} %{p}"), "192.0.2.3 mx.receiver.example 1700000000 mx.example.org unknown");
    EXPECT_EQ(expand("%{c}", true), "2001:db8::cb01");
    EXPECT_EQ(expand("100%% sure%_really%-"), "100% sure really%20");
    EXPECT_EQ(expand("%{S}"), "strong-bad%40email.example.com");
    EXPECT_EQ(expand("%{s} is not allowed from %{i}"), "strong-bad@email.example.com is not allowed from 192.0.2.3");
    EXPECT_EQ(expand("bad %{x}"), "<invalid>");
    EXPECT_EQ(expand("bad %"), "<invalid>");
    EXPECT_EQ(expand("bad %{s"), "<invalid>");
    auto cut = spf::expand_explanation("%{s}%{s}%{s}", context(false), 10);
    ASSERT_TRUE(cut);
    EXPECT_EQ(cut->size(), 10u);
}

// --- verdict: options -> reply ----------------------------------------------------

spf::Options options() {
    spf::Options o;
    o.authserv_id = "mx.test.example";
    return o;
}

spf::Facts facts(std::string sender = "alice@example.com") {
    return spf::Facts{"192.0.2.99", "mail.example.org", std::move(sender)};
}

Outcome out(Result r, std::string explanation = {}) { return Outcome{r, std::move(explanation), "why"}; }

std::string reply(const spf::Options& o, const spf::Facts& f, std::optional<Outcome> helo,
                  std::optional<Outcome> mailfrom) {
    return spf::verdict(o, f, helo, mailfrom).action.to_string();
}

bool refused(const spf::Options& o, const spf::Facts& f, std::optional<Outcome> helo,
             std::optional<Outcome> mailfrom) {
    return spf::verdict(o, f, helo, mailfrom).action.refuses();
}

TEST(SpfVerdict, HeloRejectTable) {
    using H = spf::HeloReject;
    const Result results[] = {Result::pass, Result::fail, Result::softfail, Result::neutral, Result::none,
                              Result::permerror};
    // Which HELO results each setting refuses (non-null sender, MAIL FROM pass).
    struct Row {
        H setting;
        std::vector<Result> refused;
    } rows[] = {
        {H::spf_not_pass, {Result::fail, Result::softfail, Result::neutral, Result::permerror}},
        {H::softfail, {Result::fail, Result::softfail}},
        {H::fail, {Result::fail}},
        {H::null, {}},
        {H::never, {}},
    };
    for (const auto& row : rows) {
        auto o = options();
        o.helo_reject = row.setting;
        for (Result r : results) {
            bool expect = std::find(row.refused.begin(), row.refused.end(), r) != row.refused.end();
            EXPECT_EQ(refused(o, facts(), out(r), out(Result::pass)), expect)
                << "helo_reject " << static_cast<int>(row.setting) << " result " << spf::result_word(r);
        }
    }
}

TEST(SpfVerdict, MailFromRejectTable) {
    using M = spf::MailFromReject;
    auto o = options();
    o.helo_reject = spf::HeloReject::never;
    o.mail_from_reject = M::fail;
    EXPECT_TRUE(refused(o, facts(), out(Result::pass), out(Result::fail)));
    EXPECT_FALSE(refused(o, facts(), out(Result::pass), out(Result::softfail)));
    o.mail_from_reject = M::softfail;
    EXPECT_TRUE(refused(o, facts(), out(Result::pass), out(Result::softfail)));
    EXPECT_FALSE(refused(o, facts(), out(Result::pass), out(Result::neutral)));
    o.mail_from_reject = M::never;
    EXPECT_FALSE(refused(o, facts(), out(Result::pass), out(Result::fail)));
}

TEST(SpfVerdict, ReplyFormats) {
    auto o = options();
    o.helo_reject = spf::HeloReject::never;
    EXPECT_EQ(reply(o, facts(), out(Result::none), out(Result::fail, "go away")), "550 5.7.23 go away");
    std::string def = reply(o, facts(), out(Result::none), out(Result::fail));
    EXPECT_EQ(def.rfind("550 5.7.23 Message rejected due to: SPF fail - not authorized.", 0), 0u) << def;

    o.temperror_defer = true;
    std::string t = reply(o, facts(), out(Result::none), out(Result::temperror));
    EXPECT_EQ(t.rfind("DEFER_IF_PERMIT 4.4.3 SPF temporary error for mailfrom alice@example.com", 0), 0u) << t;

    o.permerror_reject = true;
    std::string p = reply(o, facts(), out(Result::none), out(Result::permerror));
    EXPECT_EQ(p.rfind("550 5.7.24 ", 0), 0u) << p;

    o.permerror_reject = false;
    o.temperror_defer = false;
    o.hide_receiver = true;
    EXPECT_EQ(reply(o, facts(), out(Result::none), out(Result::pass)),
              "PREPEND Received-SPF: Pass (domain of alice@example.com designates 192.0.2.99 as "
              "permitted sender) identity=mailfrom; client-ip=192.0.2.99; helo=mail.example.org; "
              "envelope-from=\"alice@example.com\";");
}

TEST(SpfVerdict, NullSenderUsesTheHeloResultAndIdentity) {
    auto o = options();
    auto f = facts("");
    // A null sender: the HELO evaluation is the MAIL FROM one (postmaster@HELO).
    std::string a = reply(o, f, out(Result::pass), out(Result::pass));
    EXPECT_NE(a.find("identity=helo;"), std::string::npos) << a;
    EXPECT_NE(a.find("envelope-from=\"\";"), std::string::npos) << a;
    o.helo_reject = spf::HeloReject::null;
    o.mail_from_reject = spf::MailFromReject::never;
    EXPECT_TRUE(refused(o, f, out(Result::fail), out(Result::fail)));
}

TEST(SpfVerdict, RejectNotPassDomainsJudgesListedDomainsAsSpfNotPass) {
    auto o = options();
    o.helo_reject = spf::HeloReject::never;
    o.mail_from_reject = spf::MailFromReject::never;
    o.reject_not_pass_domains = {"example.com"};
    for (Result r : {Result::fail, Result::softfail, Result::neutral})
        EXPECT_TRUE(refused(o, facts("a@mail.example.com"), out(Result::none), out(r))) << spf::result_word(r);
    for (Result r : {Result::pass, Result::none, Result::temperror})
        EXPECT_FALSE(refused(o, facts("a@example.com"), out(Result::none), out(r))) << spf::result_word(r);
    EXPECT_FALSE(refused(o, facts("a@notexample.com"), out(Result::none), out(Result::softfail)));
    // The HELO name too.
    spf::Facts f{"192.0.2.99", "mx.example.com", "a@other.example"};
    EXPECT_TRUE(refused(o, f, out(Result::neutral), out(Result::pass)));
}

TEST(SpfVerdict, DryRunAndHeaderNone) {
    auto o = options();
    o.dry_run = true;
    auto d = spf::verdict(o, facts(), out(Result::none), out(Result::fail));
    EXPECT_EQ(d.action.to_string().rfind("PREPEND Received-SPF: Fail", 0), 0u);
    EXPECT_NE(d.reason.find("would refuse"), std::string::npos) << d.reason;
    o.dry_run = false;
    o.header_type = spf::HeaderType::none;
    EXPECT_EQ(reply(o, facts(), out(Result::none), out(Result::pass)), "DUNNO");
}

TEST(SpfHeaders, HostileValuesAreQuotedAndPrintable) {
    auto o = options();
    o.hide_receiver = false;
    spf::Facts f{"192.0.2.99", "a\r\nX-Injected: yes; (", "\"evil\"@x"};
    std::string h = spf::received_spf(o, f, Identity::mailfrom, out(Result::pass));
    EXPECT_EQ(h.find('\r'), std::string::npos);
    EXPECT_EQ(h.find('\n'), std::string::npos);
    EXPECT_NE(h.find("helo=\"a??X-Injected: yes; (\";"), std::string::npos) << h;
    EXPECT_NE(h.find("envelope-from=\"\\\"evil\\\"@x\";"), std::string::npos) << h;
    EXPECT_NE(h.find("receiver=mx.test.example;"), std::string::npos) << h;
    std::string ar = spf::authentication_results(o, f, Identity::helo, out(Result::fail));
    EXPECT_EQ(ar, "Authentication-Results: mx.test.example; spf=fail smtp.helo=\"a??X-Injected: yes; (\"");
}

// --- DNS cache --------------------------------------------------------------------

TEST(SpfDnsCache, BoundedAndNeverKeepsTemporaryFailures) {
    spf::dns::Cache cache(2, std::chrono::seconds(3600), std::chrono::seconds(60));
    spf::dns::Answer ok{spf::dns::Status::ok, {"v=spf1 -all"}, 300};
    cache.put("a.example", 16, ok);
    cache.put("B.Example.", 16, ok);
    ASSERT_TRUE(cache.get("b.example", 16)) << "names are case-insensitive, trailing dot ignored";
    cache.put("c.example", 16, ok);
    EXPECT_EQ(cache.size(), 2u);
    EXPECT_FALSE(cache.get("a.example", 16)) << "the oldest entry is evicted";
    cache.put("t.example", 16, spf::dns::Answer{spf::dns::Status::temporary, {}, 300});
    EXPECT_FALSE(cache.get("t.example", 16));
    cache.put("z.example", 16, spf::dns::Answer{spf::dns::Status::ok, {"x"}, 0});
    EXPECT_FALSE(cache.get("z.example", 16)) << "TTL 0 is not cached";
    auto hit = cache.get("c.example", 16);
    ASSERT_TRUE(hit);
    EXPECT_LE(hit->ttl, 300u);
}

}  // namespace
