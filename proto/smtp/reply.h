// SMTP/LMTP replies (RFC 5321 4.2, RFC 3463 enhanced status codes): formatting
// for servers and an incremental parser for clients. No I/O.
//
// Limits on parsing (hostile servers): a reply line is at most 512 octets
// including CRLF (RFC 5321 4.5.3.1.5) and a multi-line reply at most 100 lines;
// beyond that the parser fails.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace proto::smtp {

struct Reply {
    int code = 0;
    std::string enhanced;            // "2.1.5", or "" when the server sent none
    std::vector<std::string> lines;  // text of each line, enhanced code removed

    bool positive() const { return code >= 200 && code < 400; }
    bool transient() const { return code >= 400 && code < 500; }
    bool permanent() const { return code >= 500; }
};

// "250 2.1.5 text\r\n"; enhanced may be empty. Text must not contain CR or LF
// (they are replaced by spaces).
std::string format_reply(int code, std::string_view enhanced, std::string_view text);
// Multi-line: "250-first\r\n250-...\r\n250 last\r\n" (enhanced code on each line).
std::string format_reply(const Reply& reply);

class ReplyParser {
public:
    enum class Status { need_more, done, error };
    struct Result {
        Status status;
        std::size_t consumed;
    };
    Result feed(std::string_view data);
    Reply take();
    const std::string& error() const { return error_; }

private:
    Result fail(std::string why, std::size_t consumed);
    std::string line_;
    Reply reply_;
    bool done_ = false;
    std::string error_;
};

}  // namespace proto::smtp
