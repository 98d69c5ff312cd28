// The message as milters see and edit it (mta-core/milter/message_edit.h):
// header values as sent, each SMFIR_* header edit, body replacement, and
// that no edit can start a new header field.
#include <gtest/gtest.h>

#include "milter/message_edit.h"

using mta::milter::EditableMessage;

namespace {

const std::string kStored =
    "Received: from a\r\n\tby b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    "Subject: hello\r\n"
    "X-Tag: one\r\n"
    "x-tag: two\r\n"
    "\r\n"
    "body line\r\n";

}  // namespace

TEST(MtaMilterMessage, UneditedMessageIsWrittenBackByteForByte) {
    EditableMessage m(kStored);
    ASSERT_EQ(m.headers().size(), 4u);
    EXPECT_EQ(m.serialize(), kStored);
    // As Postfix sends them: first space dropped, folded lines joined by LF.
    EXPECT_EQ(EditableMessage::value_for_milter(m.headers()[0], false), "from a\n\tby b; Mon, 1 Jan 2024 00:00:00 +0000");
    EXPECT_EQ(EditableMessage::value_for_milter(m.headers()[1], true), " hello");
    EXPECT_EQ(m.body(), "body line\r\n");
}

TEST(MtaMilterMessage, AddInsertChangeAndDeleteHeaders) {
    EditableMessage m(kStored);
    m.add_header("X-Added", "last", false);
    m.insert_header(0, "X-First", "top", false);
    m.insert_header(99, "X-Far", "end", false);  // past the end: at the end
    m.change_header(2, "X-TAG", "second", false);  // any case, 1-based
    m.change_header(1, "Subject", "", false);      // empty: deleted
    m.change_header(1, "X-Missing", "added", false);  // missing: added
    EXPECT_EQ(m.serialize(),
              "X-First: top\r\n"
              "Received: from a\r\n\tby b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
              "X-Tag: one\r\n"
              "x-tag: second\r\n"
              "X-Added: last\r\n"
              "X-Far: end\r\n"
              "X-Missing: added\r\n"
              "\r\n"
              "body line\r\n");
}

TEST(MtaMilterMessage, AnEditCannotStartANewHeaderField) {
    EditableMessage m(kStored);
    m.add_header("X-Evil", "a\nBcc: victim@example.org\r\n", false);
    m.add_header("X-Folded", "a\n\tb", false);
    std::string out = m.serialize();
    EXPECT_NE(out.find("X-Evil: a\r\n\tBcc: victim@example.org\r\n"), std::string::npos) << out;
    EXPECT_EQ(out.find("\r\nBcc:"), std::string::npos) << out;
    EXPECT_NE(out.find("X-Folded: a\r\n\tb\r\n"), std::string::npos) << out;
    EXPECT_FALSE(EditableMessage::valid_name("Bad Name"));
    EXPECT_FALSE(EditableMessage::valid_name("Bad:Name"));
    EXPECT_FALSE(EditableMessage::valid_name(""));
    EXPECT_TRUE(EditableMessage::valid_name("DKIM-Signature"));
}

TEST(MtaMilterMessage, ReplacedBodyGetsCrlfLineEnds) {
    EditableMessage m(kStored);
    m.replace_body("one\ntwo\r\nthree");
    EXPECT_EQ(m.body(), "one\r\ntwo\r\nthree");
    EXPECT_TRUE(m.serialize().ends_with("\r\n\r\none\r\ntwo\r\nthree"));
}

TEST(MtaMilterMessage, ALeadingSpaceFilterGivesTheWholeValue) {
    EditableMessage m("A: b\r\n\r\n");
    m.add_header("X-Lead", "  two spaces", true);
    m.add_header("X-Plain", "one", false);
    EXPECT_EQ(m.serialize(), "A: b\r\nX-Lead:  two spaces\r\nX-Plain: one\r\n\r\n");
}
