// The DSN extension's parameters (RFC 3461): xtext both ways, NOTIFY, RET,
// ENVID and ORCPT, with their limits.
#include <gtest/gtest.h>

#include "smtp/dsn.h"

namespace {

using namespace proto::smtp;

TEST(SmtpDsn, XtextDecodesHexPairsAndRefusesWhatIsNotXtext) {
    EXPECT_EQ(xtext_decode("alice+2Bsub@example.org"), "alice+sub@example.org");
    EXPECT_EQ(xtext_decode("a+3Db"), "a=b");
    EXPECT_EQ(xtext_decode(""), "");
    for (const char* bad : {"a=b", "a b", "a+2b", "a+2", "a+", "a+0D", "a+7F", "\x80"}) EXPECT_FALSE(xtext_decode(bad)) << bad;
}

TEST(SmtpDsn, XtextEncodingRoundTrips) {
    for (std::string text : {"plain@example.org", "a+b=c", "with space", "+++===", ""}) {
        std::string x = xtext_encode(text);
        for (char c : x) EXPECT_TRUE(c > 32 && c < 127 && c != '=') << x;
        EXPECT_EQ(xtext_decode(x), text);
    }
    EXPECT_EQ(xtext_encode("a+b c="), "a+2Bb+20c+3D");
}

TEST(SmtpDsn, NotifyIsNeverOrAListOfEachKindOnce) {
    EXPECT_EQ(parse_notify("never"), "NEVER");
    EXPECT_EQ(parse_notify("delay,Success"), "SUCCESS,DELAY");
    EXPECT_EQ(parse_notify("FAILURE"), "FAILURE");
    for (const char* bad : {"", "NEVER,FAILURE", "FAILURE,FAILURE", "FAILURE,", ",DELAY", "SOMETIMES", "SUCCESS;DELAY"})
        EXPECT_FALSE(parse_notify(bad)) << bad;
    Notify n = notify_of("SUCCESS,DELAY");
    EXPECT_TRUE(n.success);
    EXPECT_FALSE(n.failure);
    EXPECT_TRUE(n.delay);
    Notify none = notify_of("NEVER");
    EXPECT_FALSE(none.success || none.failure || none.delay);
    Notify defaults = notify_of("");
    EXPECT_TRUE(defaults.failure && defaults.delay && !defaults.success);
}

TEST(SmtpDsn, RetEnvidAndOrcptWithTheirLimits) {
    EXPECT_EQ(parse_ret("hdrs"), "HDRS");
    EXPECT_EQ(parse_ret("FULL"), "FULL");
    EXPECT_FALSE(parse_ret("BODY"));
    EXPECT_EQ(parse_envid("QQ314159+2Bx"), "QQ314159+x");
    EXPECT_TRUE(parse_envid(std::string(max_envid, 'e')));
    EXPECT_FALSE(parse_envid(std::string(max_envid + 1, 'e')));
    EXPECT_FALSE(parse_envid(""));
    EXPECT_EQ(parse_orcpt("rfc822;bob+2Bx@example.org"), "rfc822;bob+x@example.org");
    EXPECT_EQ(parse_orcpt("utf-8;bob@example.org"), "utf-8;bob@example.org");
    for (const char* bad : {"bob@example.org", ";bob@example.org", "rfc822;", "rf c822;bob@example.org", "rfc822;a=b"})
        EXPECT_FALSE(parse_orcpt(bad)) << bad;
    EXPECT_FALSE(parse_orcpt("rfc822;" + std::string(max_orcpt, 'a')));
    EXPECT_EQ(orcpt_parameter("rfc822;bob+x@example.org"), "rfc822;bob+2Bx@example.org");
}

}  // namespace
