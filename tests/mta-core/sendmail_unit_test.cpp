// Local submission's pure parts: the sendmail command line, its input
// handling (fed split at every byte offset), -t's address lists, the
// maildrop file codec and its refusals, and what pickup makes of a message.
#include <gtest/gtest.h>

#include "pickup/pickup_message.h"
#include "queue/maildrop_file.h"
#include "sendmail/options.h"
#include "sendmail/submission.h"

using namespace mta;
using sendmail::Mode;

namespace {

sendmail::ParsedOptions opts(std::vector<std::string> args, const std::string& argv0 = "sendmail") {
    return sendmail::parse_options(argv0, args);
}

std::string read_all(std::string_view input, bool dot_ends, std::size_t limit = 0) {
    sendmail::MessageReader r(limit, dot_ends);
    r.feed(input);
    r.finish();
    return r.too_big() ? "(too big)" : r.take();
}

}  // namespace

TEST(SendmailOptions, EnvelopeFlagsAsPostfixReadsThem) {
    auto p = opts({"-oi", "-t", "-fbounce@example.org", "-F", "Full Name", "-oem", "-B", "8BITMIME", "-N",
                   "never", "-v", "extra@example.org"});
    ASSERT_TRUE(p.options) << p.error;
    EXPECT_FALSE(p.options->dot_ends_input);
    EXPECT_TRUE(p.options->extract_recipients);
    EXPECT_EQ(p.options->sender, "bounce@example.org");
    EXPECT_EQ(p.options->fullname, "Full Name");
    EXPECT_EQ(p.options->recipients, std::vector<std::string>{"extra@example.org"});
    EXPECT_TRUE(p.options->verbose);
    EXPECT_EQ(p.options->mode, Mode::deliver);
    auto nullsender = opts({"-f", "<>", "-i", "a"});
    ASSERT_TRUE(nullsender.options);
    EXPECT_EQ(nullsender.options->sender, "");
    auto dashdash = opts({"-i", "--", "-odd"});
    ASSERT_TRUE(dashdash.options);
    EXPECT_EQ(dashdash.options->recipients, std::vector<std::string>{"-odd"});
}

TEST(SendmailOptions, WhatCronAndPhpRun) {
    // Debian's cron (and cronie) and PHP's default sendmail_path.
    auto cron = opts({"-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"});
    ASSERT_TRUE(cron.options) << cron.error;
    EXPECT_EQ(cron.options->fullname, "CronDaemon");
    EXPECT_FALSE(cron.options->dot_ends_input);
    EXPECT_EQ(cron.options->recipients, std::vector<std::string>{"root"});
    auto cronie = opts({"-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f", "root"});
    ASSERT_TRUE(cronie.options) << cronie.error;
    EXPECT_TRUE(cronie.options->extract_recipients);
    auto php = opts({"-t", "-i"});
    ASSERT_TRUE(php.options) << php.error;
    EXPECT_TRUE(php.options->extract_recipients);
}

TEST(SendmailOptions, ModesAndProgramNames) {
    EXPECT_EQ(opts({"-bp"}).options->mode, Mode::list_queue);
    EXPECT_EQ(opts({}, "/usr/bin/mailq").options->mode, Mode::list_queue);
    EXPECT_EQ(opts({}, "/usr/sbin/mta-core-mailq").options->mode, Mode::list_queue);
    EXPECT_EQ(opts({}, "newaliases").options->mode, Mode::rebuild_aliases);
    EXPECT_EQ(opts({"-bi"}).options->mode, Mode::rebuild_aliases);
    EXPECT_EQ(opts({"-I"}).options->mode, Mode::rebuild_aliases);
    EXPECT_EQ(opts({"-q"}).options->mode, Mode::flush_queue);
    EXPECT_EQ(opts({"-q30m"}).options->mode, Mode::flush_queue);
    EXPECT_EQ(opts({"-C", "/etc/x", "-bp"}).options->config, "/etc/x");
}

TEST(SendmailOptions, RefusalsSayWhy) {
    EXPECT_NE(opts({"-Z", "a"}).error.find("invalid option -- 'Z'"), std::string::npos);
    EXPECT_NE(opts({"-f"}).error.find("requires an argument"), std::string::npos);
    EXPECT_NE(opts({"-bd"}).error.find("start mta-core"), std::string::npos);
    EXPECT_NE(opts({"-bv", "a"}).error.find("unsupported"), std::string::npos);
    EXPECT_NE(opts({"-i"}).error.find("Recipient addresses must be specified"), std::string::npos);
    EXPECT_NE(opts({"-B", "BINARYMIME", "a"}).error.find("7BIT or 8BITMIME"), std::string::npos);
}

TEST(SendmailInput, LineEndsDotsAndTheMboxLineAtEveryFeedSplit) {
    struct Case {
        std::string input;
        bool dot_ends;
        std::string want;
    } cases[] = {
        {"a\nb\n", true, "a\r\nb\r\n"},
        {"a\r\nb\r\n", true, "a\r\nb\r\n"},
        {"bare\rcr\n", true, "bare cr\r\n"},
        {"no end", true, "no end\r\n"},
        {"before\n.\nafter\n", true, "before\r\n"},
        {"before\r\n.\r\nafter\n", true, "before\r\n"},
        {"before\n.\nafter\n", false, "before\r\n.\r\nafter\r\n"},
        {"..stuffed?\n", true, "..stuffed?\r\n"},
        {"From alice Mon Nov 30\nSubject: x\n\nFrom here\n", true, "Subject: x\r\n\r\nFrom here\r\n"},
        {"", true, ""},
    };
    for (const auto& c : cases) {
        for (std::size_t split = 0; split <= c.input.size(); ++split) {
            sendmail::MessageReader r(0, c.dot_ends);
            if (r.feed(std::string_view(c.input).substr(0, split))) r.feed(std::string_view(c.input).substr(split));
            r.finish();
            EXPECT_EQ(r.take(), c.want) << "input " << c.input << " split at " << split;
        }
    }
}

TEST(SendmailInput, SizeLimitCountsTheStoredForm) {
    EXPECT_EQ(read_all("abc\n", true, 5), "abc\r\n");
    EXPECT_EQ(read_all("abcd\n", true, 5), "(too big)");
    EXPECT_EQ(read_all(std::string(100, 'x'), true, 50), "(too big)");
}

TEST(SendmailInput, AddressLists) {
    using V = std::vector<std::string>;
    EXPECT_EQ(sendmail::parse_address_list(" a@example.org, B <b@example.org> "), (V{"a@example.org", "b@example.org"}));
    EXPECT_EQ(sendmail::parse_address_list("\"Last, First\" <c@example.org>, d@example.org (Dee, D)"),
              (V{"c@example.org", "d@example.org"}));
    EXPECT_EQ(sendmail::parse_address_list("friends: e@example.org, F <f@example.org>;, g@example.org"),
              (V{"e@example.org", "f@example.org", "g@example.org"}));
    EXPECT_EQ(sendmail::parse_address_list("undisclosed-recipients:;"), V{});
    EXPECT_EQ(sendmail::parse_address_list("<@relay.example:h@example.org>"), V{"h@example.org"});
    EXPECT_EQ(sendmail::parse_address_list("bob"), V{"bob"});
    EXPECT_EQ(sendmail::parse_address_list("\"odd local\"@example.org"), V{"\"odd local\"@example.org"});
}

TEST(SendmailInput, DashTExtractsToCcBccAndDropsBccWithItsContinuation) {
    auto x = sendmail::extract_recipients(
        "From: me@example.org\r\nTo: a@example.org,\r\n  b@example.org\r\ncc: C <c@example.org>\r\n"
        "BCC: hidden@example.org,\r\n\tsecret@example.org\r\nSubject: s\r\n\r\nTo: body@example.org\r\n");
    EXPECT_EQ(x.recipients, (std::vector<std::string>{"a@example.org", "b@example.org", "c@example.org",
                                                      "hidden@example.org", "secret@example.org"}));
    EXPECT_EQ(x.message, "From: me@example.org\r\nTo: a@example.org,\r\n  b@example.org\r\ncc: C <c@example.org>\r\n"
                         "Subject: s\r\n\r\nTo: body@example.org\r\n");
}

TEST(SendmailInput, DashTUsesResentFieldsWhenThereAreAny) {
    auto x = sendmail::extract_recipients(
        "Resent-From: fwd@example.org\r\nResent-To: new@example.org\r\nResent-Bcc: quiet@example.org\r\n"
        "To: old@example.org\r\nBcc: oldhidden@example.org\r\n\r\nbody\r\n");
    EXPECT_EQ(x.recipients, (std::vector<std::string>{"new@example.org", "quiet@example.org"}));
    EXPECT_EQ(x.message, "Resent-From: fwd@example.org\r\nResent-To: new@example.org\r\nTo: old@example.org\r\n\r\nbody\r\n");
}

TEST(MaildropFile, RoundTripsAndRefusesWhatIsNotExactlyOneMessage) {
    queue::MaildropMessage m{"alice", "Alice Liddell", {"bob", "carol@example.org"}, "Subject: x\r\n\r\nhi\r\n"};
    std::string file = queue::serialize_maildrop(m);
    queue::MaildropLimits limits;
    std::string error;
    auto back = queue::parse_maildrop(file, limits, &error);
    ASSERT_TRUE(back) << error;
    EXPECT_EQ(back->sender, m.sender);
    EXPECT_EQ(back->fullname, m.fullname);
    EXPECT_EQ(back->recipients, m.recipients);
    EXPECT_EQ(back->content, m.content);
    auto refused = [&](std::string bytes, const std::string& reason, queue::MaildropLimits l = {}) {
        std::string e;
        EXPECT_FALSE(queue::parse_maildrop(bytes, l, &e)) << reason;
        EXPECT_NE(e.find(reason), std::string::npos) << "got \"" << e << "\", want " << reason;
    };
    refused("garbage\n", "bad first line");
    refused(file.substr(0, file.size() - 1), "missing end marker");
    refused(file.substr(0, 40), "truncated");
    refused(file + "x", "missing end marker");
    refused(std::string(file).insert(file.find("hi"), 1, '\0'), "NUL byte");
    refused("MTAD 1\nsender=a\nfullname=\nsize=0\n\nMTAD END\n", "no recipients");
    refused("MTAD 1\nsender=a\nfullname=\nrcpt=b\nsize=4\n\nx\ny\nMTAD END\n", "CRLF");
    refused("MTAD 1\nsender=a\nfullname=\nrcpt=b\nsize=1\n\nxMTAD END\n", "does not end with CRLF");
    refused("MTAD 1\nsender=a%0Ab\nfullname=\nrcpt=b\nsize=0\n\nMTAD END\n", "control character");
    refused("MTAD 1\nsender=a\nfullname=\nrcpt=a@@b\nsize=0\n\nMTAD END\n", "bad recipient address syntax");
    refused("MTAD 1\nsender=a%20b@c\nfullname=\nrcpt=b\nsize=0\n\nMTAD END\n", "bad sender address syntax");
    refused("MTAD 1\nsender=a%zz\nfullname=\nrcpt=b\nsize=0\n\nMTAD END\n", "bad escape");
    refused("MTAD 1\nsender=a\nfullname=\nrcpt=b\nsize=-1\n\nMTAD END\n", "bad size");
    refused("MTAD 1\nfullname=\nsender=a\nrcpt=b\nsize=0\n\nMTAD END\n", "expected field sender");
    refused("MTAD 1\nsender=a\nfullname=\nrcpt=b\nhelo=x\nsize=0\n\nMTAD END\n", "unexpected field");
    refused("MTAD 1\nsender=" + std::string(300, 'a') + "\nfullname=\nrcpt=b\nsize=0\n\nMTAD END\n", "too long");
    queue::MaildropLimits two;
    two.max_recipients = 2;
    refused("MTAD 1\nsender=a\nfullname=\nrcpt=b\nrcpt=c\nrcpt=d\nsize=0\n\nMTAD END\n", "too many recipients", two);
    queue::MaildropLimits small;
    small.max_content = 2;
    refused(file, "message too big", small);
}

TEST(PickupMessage, QualifiesAddsTheMissingFieldsAndExpandsAliases) {
    pickup::MessageSettings s;
    s.myhostname = "mx.example.org";
    s.myorigin = "example.org";
    s.mydomain = "example.org";
    s.expand = [](const std::string& a) {
        return a == "root@example.org" ? std::vector<std::string>{"alice@example.org", "bob@example.org"}
                                       : std::vector<std::string>{a};
    };
    queue::MaildropMessage m{"alice", "Alice (admin)", {"root", "carol@elsewhere.example"}, "Subject: s\r\n\r\nbody\r\n"};
    std::string error;
    auto q = pickup::make_queued(m, 1000, "ABC123", 0, s, &error);
    ASSERT_TRUE(q) << error;
    EXPECT_EQ(q->envelope.sender, "alice@example.org");
    ASSERT_EQ(q->envelope.recipients.size(), 3u);
    EXPECT_EQ(q->envelope.recipients[0].address, "alice@example.org");
    EXPECT_EQ(q->envelope.recipients[0].original, "root@example.org");
    EXPECT_EQ(q->envelope.recipients[2].address, "carol@elsewhere.example");
    const std::string& c = q->content;
    EXPECT_EQ(c.find("Received: by mx.example.org (mta-core, from userid 1000)\r\n\tid ABC123; "), 0u) << c;
    EXPECT_NE(c.find("\r\nMessage-ID: <ABC123@mx.example.org>\r\n"), std::string::npos) << c;
    EXPECT_NE(c.find("\r\nDate: "), std::string::npos) << c;
    EXPECT_NE(c.find("\r\nFrom: \"Alice (admin)\" <alice@example.org>\r\n"), std::string::npos) << c;
    EXPECT_NE(c.find("\r\nSubject: s\r\n\r\nbody\r\n"), std::string::npos) << c;

    // Fields the message has are kept; a message without a header gets the
    // empty line that ends the added ones.
    m.content = "From: other@example.org\r\nDate: yesterday\r\nMessage-ID: <x@y>\r\n\r\nb\r\n";
    q = pickup::make_queued(m, 0, "ID", 0, s, &error);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->content.find("From: \""), std::string::npos);
    EXPECT_EQ(q->content.find("ID@mx"), std::string::npos);
    m.content = "just text\r\n";
    q = pickup::make_queued(m, 0, "ID", 0, s, &error);
    ASSERT_TRUE(q);
    EXPECT_NE(q->content.find(">\r\n\r\njust text\r\n"), std::string::npos) << q->content;

    m.recipients = {"bad address@"};
    EXPECT_FALSE(pickup::make_queued(m, 0, "ID", 0, s, &error));
    EXPECT_EQ(error, "bad recipient address syntax");
}

TEST(PickupMessage, AppendDotMydomain) {
    pickup::MessageSettings s;
    s.myorigin = "example.org";
    s.mydomain = "example.org";
    EXPECT_EQ(pickup::qualify("bob@host", s), "bob@host");
    s.append_dot_mydomain = true;
    EXPECT_EQ(pickup::qualify("bob@host", s), "bob@host.example.org");
    EXPECT_EQ(pickup::qualify("bob", s), "bob@example.org");
    EXPECT_EQ(pickup::qualify("bob@[192.0.2.1]", s), "bob@[192.0.2.1]");
    EXPECT_EQ(pickup::qualify("", s), "");
    EXPECT_FALSE(pickup::qualify("a@@b", s));
}
