// DATA content reader; see data.h.
#include "smtp/data.h"

#include <cstring>

namespace proto::smtp {

void DataReader::reset(std::size_t max_size) { *this = DataReader(max_size, line_end_); }

void DataReader::append(const char* p, std::size_t n) {
    total_ += n;
    if (too_big_) return;
    if (body_.size() + n > max_size_) {
        too_big_ = true;
        body_.clear();
        body_.shrink_to_fit();
        return;
    }
    body_.append(p, n);
}

// Content bytes of the current line. In CRLF form a CR is held only while it
// may still be the CR of a CRLF: one followed by more content was bare.
void DataReader::append_content(const char* p, std::size_t n) {
    if (line_end_ == LineEnd::lf) {
        append(p, n);
        return;
    }
    if (last_cr_ && !too_big_ && !body_.empty()) body_.back() = ' ';
    std::size_t start = body_.size();
    append(p, n);
    if (too_big_) return;
    for (std::size_t k = start; k + 1 < body_.size(); ++k)
        if (body_[k] == '\r') body_[k] = ' ';
}

void DataReader::end_line() {
    if (line_end_ == LineEnd::crlf)
        append("\r\n", 2);
    else
        append("\n", 1);
}

DataReader::Result DataReader::feed(std::string_view data) {
    std::size_t i = 0;
    while (i < data.size()) {
        const char* start = data.data() + i;
        const char* lf = static_cast<const char*>(std::memchr(start, '\n', data.size() - i));
        std::size_t seg = lf ? static_cast<std::size_t>(lf - start) : data.size() - i;
        const char* p = start;
        std::size_t n = seg;
        if (line_len_ == 0 && n > 0 && *p == '.') {
            line_dot_ = true;  // transparency: drop the first dot (RFC 5321 4.5.2)
            ++p;
            --n;
            ++line_len_;
        }
        if (n > 0) {
            append_content(p, n);
            line_len_ += n;
            last_cr_ = p[n - 1] == '\r';
        }
        i += seg;
        if (!lf) break;
        ++i;  // the LF
        if (line_dot_ && line_len_ == 2 && last_cr_ && prev_crlf_) {
            // ".\r\n": the CR was stored as content; take it back.
            if (!too_big_) body_.pop_back();
            total_ -= 1;
            return {true, i};
        }
        if (last_cr_) {
            if (!too_big_) body_.pop_back();
            total_ -= 1;
        } else {
            ++bare_lf_;
        }
        // A lone "." that did not end the data (its line or the one before
        // ended in a bare LF) is content: keep its dot (RFC 5321 4.5.2 removes
        // a leading dot only when other characters follow).
        if (line_end_ == LineEnd::crlf && line_dot_ && line_len_ == (last_cr_ ? 2u : 1u))
            append(".", 1);
        end_line();
        prev_crlf_ = last_cr_;
        line_len_ = 0;
        line_dot_ = false;
        last_cr_ = false;
    }
    return {false, data.size()};
}

}  // namespace proto::smtp
