// The maildrop file: one locally submitted message as the sendmail command
// hands it to mta-core (through the setgid postdrop helper), and as the
// pickup side reads it back. Postfix's maildrop queue files play this part
// (postdrop(1), pickup(8)). No I/O.
//
//   MTAD 1
//   sender=alice          (empty: the null sender; may be a bare local part)
//   fullname=Alice Liddell
//   rcpt=bob              (one line per recipient, at least one)
//   size=1234             (bytes of content that follow the empty line)
//
//   CONTENT               (the message: CRLF lines, not dot-stuffed)
//   MTAD END
//
// Values are %XX-escaped as in queue files (queue_file.h). The writer is an
// unprivileged user: the pickup side reads every file as hostile input, so
// the parser is strict (fixed field order, known fields only, bounded
// counts and sizes, SMTP address syntax, the end marker after exactly size
// bytes, content made of CRLF lines only, no NUL byte anywhere) and says
// why it refused.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mta::queue {

struct MaildropMessage {
    std::string sender;
    std::string fullname;
    std::vector<std::string> recipients;
    std::string content;
};

struct MaildropLimits {
    // message_size_limit (postconf(5)); 0 means no limit on the content.
    std::size_t max_content = 10240000;
    // Postfix bounds one message's recipients only by memory; a file from an
    // unprivileged user gets a bound of our own.
    std::size_t max_recipients = 10000;
    // RFC 5321 4.5.3.1.3: a path is at most 256 octets; the escaped form of
    // a hostile address may be three times that.
    std::size_t max_address = 256;
    std::size_t max_fullname = 256;
};

constexpr std::string_view kMaildropMagic = "MTAD 1";
constexpr std::string_view kMaildropEnd = "MTAD END\n";

std::string serialize_maildrop(const MaildropMessage& message);

// nullopt and error set when the file is not exactly one valid message.
std::optional<MaildropMessage> parse_maildrop(std::string_view file, const MaildropLimits& limits,
                                              std::string* error);

// An address as a maildrop file may hold: RFC 5321 4.1.2 Mailbox syntax, or
// a bare local part (pickup appends @$myorigin). The sendmail command checks
// its addresses with this before submitting.
bool valid_maildrop_address(const std::string& address);

// The largest file a message within limits can make (for readers that must
// refuse to read more before parsing).
std::size_t maildrop_file_bound(const MaildropLimits& limits);

}  // namespace mta::queue
