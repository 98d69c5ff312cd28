// What the sendmail command makes of its standard input: the message as it
// will be stored (CRLF lines), and with -t the recipients of its header.
// No I/O, so it is tested and fuzzed on bytes.
//
// Input handling follows Postfix's sendmail(1):
// - A line ends at LF; a CR before the LF is dropped; any other CR is data
//   and is stored as a space, as mta-core's SMTP side stores a bare CR
//   (proto/smtp/data.h), so no bare CR or LF is ever queued.
// - Without -i (and -oi) a line holding a single "." ends the input, as
//   Sendmail does; with -i only the end of the input does. The text is
//   never dot-stuffed.
// - A leading "From " line (an mbox separator) is dropped, as Postfix does.
// - An unterminated last line gets its CRLF.
// - -t: recipients are taken from To:, Cc: and Bcc: (RFC 5322 3.6.3), or
//   from Resent-To:, Resent-Cc: and Resent-Bcc: when the message has Resent-
//   fields (3.6.6), as Postfix's cleanup does; they are added to those of
//   the command line, and the Bcc: and Resent-Bcc: fields are removed.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mta::sendmail {

class MessageReader {
public:
    // max_size: message_size_limit (0: none). dot_ends: not -i.
    MessageReader(std::size_t max_size, bool dot_ends);
    // Feed input; false once the message is complete (a lone "." line) and
    // the rest of the input is to be ignored.
    bool feed(std::string_view bytes);
    // The end of the input.
    void finish();
    bool too_big() const { return too_big_; }
    std::string take() { return std::move(out_); }

private:
    void line(std::string_view text);
    std::size_t max_size_;
    bool dot_ends_;
    bool done_ = false;
    bool too_big_ = false;
    bool first_ = true;
    std::string partial_;
    std::string out_;
};

// The header of a CRLF message: the recipients of To:, Cc: and Bcc: (the
// address of each mailbox and group member; display names, comments and
// group names dropped), and the message without its Bcc: fields.
struct Extracted {
    std::vector<std::string> recipients;
    std::string message;
};
Extracted extract_recipients(std::string_view message);

// RFC 5322 3.4 address-list: the addr-spec of every mailbox, in order.
// Lenient as a mail user agent needs ("a@b, Name <c@d> (x), g: e@f;"), and
// bounded by its input.
std::vector<std::string> parse_address_list(std::string_view value);

}  // namespace mta::sendmail
