// The message header helpers: field lookups and header_size_limit.
#include <gtest/gtest.h>

#include "message_header.h"

namespace {

using mta::count_fields;
using mta::field_value;
using mta::truncate_long_fields;

TEST(MtaMessageHeader, FieldsAreFoundCaseInsensitivelyInTheHeaderOnly) {
    const std::string m = "Received: a\r\nreceived: b\r\nSubject:  hi\r\n\r\nReceived: in the body\r\n";
    EXPECT_EQ(count_fields(m, "Received"), 2u);
    EXPECT_EQ(field_value(m, "subject"), "hi");
    EXPECT_FALSE(field_value(m, "Date"));
}

TEST(MtaMessageHeader, AFoldedFieldOverTheLimitKeepsWholeLinesUpToIt) {
    std::string m = "Subject: x\r\nX-Long: 0123456789\r\n 0123456789\r\n 0123456789\r\nTo: a@b\r\n\r\nbody\r\n";
    EXPECT_EQ(truncate_long_fields(m, 35), 1u);
    EXPECT_EQ(m, "Subject: x\r\nX-Long: 0123456789\r\n 0123456789\r\nTo: a@b\r\n\r\nbody\r\n");
}

TEST(MtaMessageHeader, ALongFirstLineIsCutAndKeepsItsLineEnd) {
    std::string m = "X-Long: " + std::string(100, 'a') + "\r\n more\r\n\r\n" + std::string(200, 'b') + "\r\n";
    EXPECT_EQ(truncate_long_fields(m, 40), 1u);
    EXPECT_EQ(m, "X-Long: " + std::string(30, 'a') + "\r\n\r\n" + std::string(200, 'b') + "\r\n");
}

TEST(MtaMessageHeader, FieldsWithinTheLimitAndTheBodyAreUntouched) {
    const std::string original = "A: 1\r\nB: 2\r\n\r\n" + std::string(5000, 'x') + "\r\n";
    std::string m = original;
    EXPECT_EQ(truncate_long_fields(m, 64), 0u);
    EXPECT_EQ(m, original);
    std::string no_body = "A: " + std::string(100, 'y') + "\r\n";  // no empty line at all
    EXPECT_EQ(truncate_long_fields(no_body, 20), 1u);
    EXPECT_EQ(no_body, "A: " + std::string(15, 'y') + "\r\n");
}

}  // namespace
