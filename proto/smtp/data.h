// DATA content (RFC 5321 4.1.1.4, 4.5.2): reads the dot-stuffed message up to
// the terminating <CRLF>.<CRLF>, removes the stuffing and stores it with LF
// line endings (the form Maildir and mbox files use), or with CRLF line
// endings only (LineEnd::crlf, the form an MTA queues and relays). No I/O.
//
// Security:
// - Only CRLF "." CRLF ends the data. A "." line ended by a bare LF is
//   content, so a peer that disagrees with us about line endings cannot
//   smuggle commands after a fake end of data ("SMTP smuggling").
// - In CRLF form nothing bare is stored: a bare LF ends a content line and is
//   stored as CRLF (Postfix's smtpd_forbid_bare_newline = normalize), and a
//   bare CR (one not followed by LF) is data, never a line end, and is stored
//   as a space, so what is relayed later holds no bare CR or LF for a
//   receiving server to read differently.
// - At most max_size bytes of content are kept; beyond that the content is
//   dropped and reading continues to the terminator, so the session stays in
//   sync and can answer 552 (too_big()).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace proto::smtp {

enum class LineEnd { lf, crlf };

class DataReader {
public:
    explicit DataReader(std::size_t max_size, LineEnd line_end = LineEnd::lf)
        : max_size_(max_size), line_end_(line_end) {}

    struct Result {
        bool done;             // the terminator was seen
        std::size_t consumed;  // bytes used; after done, the rest is the next command
    };

    Result feed(std::string_view data);
    // The content (valid once done). Empty when too_big().
    std::string take() { return std::move(body_); }
    const std::string& content() const { return body_; }
    bool too_big() const { return too_big_; }
    // Content bytes seen, including any dropped for being too big.
    std::size_t size() const { return total_; }
    // Lines that ended with a bare LF (counted, for logs and policy).
    std::size_t bare_lf_lines() const { return bare_lf_; }
    void reset(std::size_t max_size);

private:
    void append(const char* p, std::size_t n);
    void append_content(const char* p, std::size_t n);
    void end_line();

    std::size_t max_size_;
    LineEnd line_end_;
    std::string body_;
    std::size_t total_ = 0;
    std::size_t line_len_ = 0;     // bytes of the current line seen so far (before LF)
    bool line_dot_ = false;        // the current line began with '.'
    bool last_cr_ = false;         // the last byte of the current line was CR
    bool prev_crlf_ = true;        // the previous line ended with CRLF (DATA's own CRLF at first)
    bool too_big_ = false;
    std::size_t bare_lf_ = 0;
};

}  // namespace proto::smtp
