// DATA content (RFC 5321 4.1.1.4, 4.5.2): reads the dot-stuffed message up to
// the terminating <CRLF>.<CRLF>, removes the stuffing and stores it with LF
// line endings (the form Maildir and mbox files use). No I/O.
//
// Security:
// - Only CRLF "." CRLF ends the data. A "." line ended by a bare LF is
//   content, so a peer that disagrees with us about line endings cannot
//   smuggle commands after a fake end of data ("SMTP smuggling").
// - At most max_size bytes of content are kept; beyond that the content is
//   dropped and reading continues to the terminator, so the session stays in
//   sync and can answer 552 (too_big()).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace proto::smtp {

class DataReader {
public:
    explicit DataReader(std::size_t max_size) : max_size_(max_size) {}

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

    std::size_t max_size_;
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
