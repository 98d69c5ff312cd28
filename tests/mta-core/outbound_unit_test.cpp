// The parts of outbound delivery that do no I/O: Postfix's nexthop
// notation, smtp_tls_policy_maps values, the choice of an AUTH mechanism
// under smtp_sasl_*_security_options, and what a message needs from the
// receiving server (8BITMIME, SMTPUTF8).
#include <gtest/gtest.h>

#include "delivery/destination.h"
#include "delivery/sasl_client.h"
#include "delivery/smtp_auth.h"
#include "delivery/smtp_client.h"
#include "delivery/smtp_tls.h"
#include "sasl/sasl.h"

using namespace mta::delivery;

TEST(OutboundDestination, PostfixNexthopNotation) {
    std::string error;
    auto d = parse_destination("example.org", &error);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->host, "example.org");
    EXPECT_EQ(d->port, 25);
    EXPECT_TRUE(d->mx_lookup);
    EXPECT_EQ(d->text(), "example.org");

    d = parse_destination("example.org:2525", &error);  // MX lookup, another port
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->mx_lookup);
    EXPECT_EQ(d->port, 2525);
    EXPECT_EQ(d->text(), "example.org:2525");

    d = parse_destination("[mail.example.org]", &error);  // no MX lookup
    ASSERT_TRUE(d);
    EXPECT_FALSE(d->mx_lookup);
    EXPECT_EQ(d->text(), "[mail.example.org]");

    d = parse_destination("[192.0.2.1]:587", &error);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->host, "192.0.2.1");
    EXPECT_EQ(d->port, 587);
    EXPECT_EQ(d->text(), "[192.0.2.1]:587");

    d = parse_destination("[2001:db8::1]:25", &error);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->host, "2001:db8::1");
    EXPECT_EQ(d->text(), "[2001:db8::1]:25");

    d = parse_destination("relay.example:smtp", &error);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->port, 25);

    EXPECT_FALSE(parse_destination("[unclosed.example", &error));
    EXPECT_NE(error.find("missing ]"), std::string::npos);
    EXPECT_FALSE(parse_destination("example.org:99999", &error));
    EXPECT_FALSE(parse_destination("example.org:0", &error));
    EXPECT_FALSE(parse_destination("[mail.example]junk", &error));
    EXPECT_FALSE(parse_destination("", &error));
}

TEST(OutboundTls, LevelsAndPolicyValues) {
    EXPECT_EQ(parse_tls_level("may"), TlsLevel::may);
    EXPECT_EQ(parse_tls_level("secure"), TlsLevel::secure);
    EXPECT_FALSE(parse_tls_level("dane"));  // not implemented: refused, never weakened
    EXPECT_FALSE(parse_tls_level("fingerprint"));

    TlsPolicy base;
    base.level = TlsLevel::may;
    std::vector<std::string> verify{"hostname"}, secure{"nexthop", "dot-nexthop"};
    std::string error;
    auto p = parse_tls_policy("secure", base, verify, secure, &error);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->level, TlsLevel::secure);
    EXPECT_EQ(p->match, secure);
    p = parse_tls_policy("verify match=mx.example.org:.example.net", base, verify, secure, &error);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->level, TlsLevel::verify);
    EXPECT_EQ(p->match, (std::vector<std::string>{"mx.example.org", ".example.net"}));
    p = parse_tls_policy("encrypt protocols=>=TLSv1.3", base, verify, secure, &error);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->level, TlsLevel::encrypt);
    EXPECT_FALSE(parse_tls_policy("dane-only", base, verify, secure, &error));
    EXPECT_NE(error.find("dane-only"), std::string::npos);
}

// libsasl2 chooses among what the filter lets through, under the security
// options: Postfix's default (noplaintext) leaves PLAIN and LOGIN out.
TEST(OutboundSasl, MechanismFollowsSecurityOptionsAndFilter) {
    std::vector<std::string> offered{"CRAM-MD5", "login", "PLAIN"};
    EXPECT_EQ(filter_mechanisms(offered, {}), "CRAM-MD5 LOGIN PLAIN");
    EXPECT_EQ(filter_mechanisms(offered, {"plain", "login"}), "LOGIN PLAIN");
    SaslCredentials tim{"tim", "tanstaaftanstaaf"};
    auto strict = parse_sasl_security("noplaintext, noanonymous");
    EXPECT_TRUE(strict.noplaintext && strict.noanonymous);
    SaslClient refused("mx.example.org", tim, strict);
    EXPECT_TRUE(refused.start("LOGIN PLAIN").mechanism.empty());
    auto open = parse_sasl_security("noanonymous");
    EXPECT_FALSE(open.noplaintext);
    SaslClient plain("mx.example.org", tim, open);
    auto start = plain.start("PLAIN");
    ASSERT_EQ(start.mechanism, "PLAIN") << start.error;
    ASSERT_TRUE(start.response);
    // RFC 4616: empty authzid, NUL, authcid, NUL, password.
    auto raw = mta::sasl::base64_decode(*start.response);
    ASSERT_TRUE(raw);
    EXPECT_EQ(*raw, std::string("tim\0tim\0tanstaaftanstaaf", 24).substr(raw->size() == 21 ? 3 : 0))
        << "authzid may be the user or empty";
    // CRAM-MD5 answers a challenge with the user and an HMAC, never the password.
    SaslClient cram("mx.example.org", tim, strict);
    auto c = cram.start("CRAM-MD5");
    ASSERT_EQ(c.mechanism, "CRAM-MD5") << c.error;
    std::string error;
    auto answer = cram.step(mta::sasl::base64_encode("<1896.697170952@postoffice.reston.mci.net>"), error);
    ASSERT_TRUE(answer) << error;
    auto decoded = mta::sasl::base64_decode(*answer);
    ASSERT_TRUE(decoded);
    // RFC 2195's own example: user tim, password tanstaaftanstaaf.
    EXPECT_EQ(*decoded, "tim b913a602c7eda7a495b4e6e7334d3890");
}

TEST(OutboundSasl, Credentials) {
    auto c = parse_credentials("user@example.org:pa:ss");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->user, "user@example.org");
    EXPECT_EQ(c->password, "pa:ss");  // only the first colon separates
    EXPECT_FALSE(parse_credentials("no-password"));
    EXPECT_FALSE(parse_credentials(":password"));
}

TEST(OutboundMessage, WhatAMessageNeedsFromTheServer) {
    auto ascii = traits_of("a@example.org", {"b@example.org"}, "Subject: hi\r\n\r\nbody\r\n");
    EXPECT_FALSE(ascii.eight_bit);
    EXPECT_FALSE(ascii.smtputf8);
    // 8-bit body only: 8BITMIME, not SMTPUTF8 (RFC 6531 3.2).
    auto body = traits_of("a@example.org", {"b@example.org"}, "Subject: hi\r\n\r\nGr\xc3\xbc\xc3\x9f" "e\r\n");
    EXPECT_TRUE(body.eight_bit);
    EXPECT_FALSE(body.smtputf8);
    auto header = traits_of("a@example.org", {"b@example.org"}, "Subject: Gr\xc3\xbc\xc3\x9f" "e\r\n\r\nx\r\n");
    EXPECT_TRUE(header.smtputf8);
    auto address = traits_of("a@example.org", {"j\xc3\xb6rg@example.org"}, "Subject: hi\r\n\r\nx\r\n");
    EXPECT_TRUE(address.smtputf8);
    EXPECT_EQ(address.size, std::string("Subject: hi\r\n\r\nx\r\n").size());
}

// RFC 5321 4.5.2 dot-stuffing, and smtp_line_length_limit: a longer line is
// broken with <CR><LF><SPACE>, never a dot-stuffing mistake or a bare line end.
TEST(OutboundData, DotStuffingAndLongLinesBrokenAsPostfixDoes) {
    using mta::delivery::dot_stuff;
    EXPECT_EQ(dot_stuff("a\r\n.b\r\n..\r\n"), "a\r\n..b\r\n...\r\n.\r\n");
    EXPECT_EQ(dot_stuff("no end"), "no end\r\n.\r\n");
    EXPECT_EQ(dot_stuff("abcdefgh\r\n", 3), "abc\r\n de\r\n fg\r\n h\r\n.\r\n");
    EXPECT_EQ(dot_stuff(".abcd\r\n", 3), "..a\r\n bc\r\n d\r\n.\r\n");
    EXPECT_EQ(dot_stuff("abc\r\n", 3), "abc\r\n.\r\n") << "a line of exactly the limit stays whole";
    const std::string long_line(3000, 'x');
    const std::string out = dot_stuff("Subject: s\r\n\r\n" + long_line + "\r\n", 998);
    std::size_t start = 0;
    for (auto end = out.find("\r\n"); end != std::string::npos; start = end + 2, end = out.find("\r\n", start))
        EXPECT_LE(end - start, 998u);
    std::string joined;
    for (std::size_t p = 0; p < out.size(); ++p)
        if (!(out.compare(p, 3, "\r\n ") == 0 && (p += 2))) joined += out[p];
    EXPECT_NE(joined.find(long_line), std::string::npos) << "nothing lost";
}
