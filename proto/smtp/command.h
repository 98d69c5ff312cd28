// SMTP and LMTP commands (RFC 5321 4.1, RFC 2033): an incremental line reader
// and a parser for one command line. No I/O: feed bytes as they arrive; the
// reader says need-more or hands out one parsed line at a time, so pipelined
// commands (RFC 2920) are read one by one from the same buffer.
//
// Security: input is hostile. A command line is at most max_line octets
// including CRLF (RFC 5321 4.5.3.1.4: 512); a longer one is discarded up to
// its LF and reported as too long, so a client can make us hold at most
// max_line bytes. NUL and other control characters in a command are syntax
// errors. Paths are limited to 256 octets (4.5.3.1.3) and parsed strictly
// (angle brackets required; a source route is accepted and ignored, 4.1.2).
//
// Bare LF is accepted as a command line end, as Postfix does; DATA content is
// stricter (see data.h).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/address.h"

namespace proto::smtp {

enum class Verb {
    helo, ehlo, lhlo, mail, rcpt, data, bdat, rset, noop, quit, vrfy, expn, help, starttls, auth,
    unknown
};

std::string_view verb_name(Verb verb);

struct Param {
    std::string keyword;  // upper-cased
    std::string value;    // "" when absent
    bool has_value = false;
};

struct Command {
    Verb verb = Verb::unknown;
    std::string argument;  // text after the verb (HELO/LHLO name, VRFY string), trimmed
    Address path;          // MAIL: empty for the null reverse-path <>; RCPT: the recipient
    std::vector<Param> params;

    // The value of an ESMTP parameter (keyword compared case-insensitively).
    const Param* param(std::string_view keyword) const;
};

struct CommandLimits {
    std::size_t max_line = 512;  // RFC 5321 4.5.3.1.4, including CRLF
    std::size_t max_path = 256;  // RFC 5321 4.5.3.1.3, including the brackets
    std::size_t max_params = 16;
    bool utf8 = false;  // RFC 6531: UTF-8 addresses (the server offers SMTPUTF8)
    // Postfix's leniency (strict_rfc821_envelopes = no): a path without angle
    // brackets, and an address without a domain.
    bool lenient = false;
};

// A parse failure, with the reply a server should send (RFC 3463 codes).
struct CommandError {
    int code = 501;
    std::string enhanced = "5.5.4";
    std::string text;
};

struct ParsedCommand {
    std::optional<Command> command;  // set on success
    CommandError error;              // otherwise
    // A verb this parser does not know: the line as it came (printable, at
    // most max_line), for whoever may still want to see it (a milter's
    // SMFIC_UNKNOWN, as Postfix passes unknown commands on).
    std::optional<std::string> unknown_line;
};

// Parse one command line without its line ending.
ParsedCommand parse_command(std::string_view line, const CommandLimits& limits = {});

// Splits a byte stream into command lines.
class CommandReader {
public:
    explicit CommandReader(CommandLimits limits = {}) : limits_(limits) {}

    enum class Status { need_more, line };
    struct Result {
        Status status;
        std::size_t consumed;  // bytes of the input used; feed the rest again
    };

    // Consume bytes up to the end of at most one line. On Status::line, take()
    // the parsed command (too-long lines come back as a 500 error).
    Result feed(std::string_view data);
    ParsedCommand take();
    // Bytes of an unfinished line held (for idle and limit accounting).
    std::size_t pending() const { return line_.size(); }

private:
    CommandLimits limits_;
    std::string line_;
    bool overflow_ = false;
    std::optional<ParsedCommand> ready_;
};

}  // namespace proto::smtp
