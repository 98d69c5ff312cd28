// SMTP reply formatting and parsing; see reply.h.
#include "smtp/reply.h"

#include <cstring>

namespace proto::smtp {

namespace {

constexpr std::size_t kMaxReplyLine = 512;  // RFC 5321 4.5.3.1.5, incl. CRLF
constexpr std::size_t kMaxReplyLines = 100;

void append_clean(std::string& out, std::string_view text) {
    for (char c : text) out.push_back(c == '\r' || c == '\n' ? ' ' : c);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "d.ddd.ddd" with class 2, 4 or 5 (RFC 3463 2).
std::size_t enhanced_length(std::string_view text) {
    std::size_t i = 0;
    if (text.empty() || (text[0] != '2' && text[0] != '4' && text[0] != '5')) return 0;
    i = 1;
    for (int part = 0; part < 2; ++part) {
        if (i >= text.size() || text[i] != '.') return 0;
        ++i;
        std::size_t digits = 0;
        while (i < text.size() && is_digit(text[i]) && digits < 3) ++i, ++digits;
        if (digits == 0) return 0;
    }
    if (i < text.size() && text[i] != ' ') return 0;
    return i;
}

}  // namespace

std::string format_reply(int code, std::string_view enhanced, std::string_view text) {
    std::string out = std::to_string(code);
    out.push_back(' ');
    if (!enhanced.empty()) {
        out += enhanced;
        out.push_back(' ');
    }
    append_clean(out, text);
    out += "\r\n";
    return out;
}

std::string format_reply(const Reply& reply) {
    std::string out;
    std::string code = std::to_string(reply.code);
    for (std::size_t i = 0; i < reply.lines.size() || i == 0; ++i) {
        out += code;
        out.push_back(i + 1 < reply.lines.size() ? '-' : ' ');
        if (!reply.enhanced.empty()) {
            out += reply.enhanced;
            out.push_back(' ');
        }
        if (i < reply.lines.size()) append_clean(out, reply.lines[i]);
        out += "\r\n";
    }
    return out;
}

ReplyParser::Result ReplyParser::fail(std::string why, std::size_t consumed) {
    error_ = std::move(why);
    return {Status::error, consumed};
}

ReplyParser::Result ReplyParser::feed(std::string_view data) {
    if (!error_.empty()) return {Status::error, 0};
    std::size_t used = 0;
    while (used < data.size()) {
        const char* start = data.data() + used;
        const char* lf = static_cast<const char*>(std::memchr(start, '\n', data.size() - used));
        std::size_t n = lf ? static_cast<std::size_t>(lf - start) : data.size() - used;
        if (line_.size() + n + 1 > kMaxReplyLine) return fail("reply line too long", used);
        line_.append(start, n);
        used += n;
        if (!lf) return {Status::need_more, used};
        ++used;
        std::string_view line = line_;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]) ||
            line[0] < '2' || line[0] > '5')
            return fail("malformed reply line", used);
        if (line.size() > 3 && line[3] != ' ' && line[3] != '-')
            return fail("malformed reply line", used);
        int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (reply_.lines.empty()) {
            reply_.code = code;
        } else if (code != reply_.code) {
            return fail("reply code changed within a multi-line reply", used);
        }
        if (reply_.lines.size() >= kMaxReplyLines) return fail("too many reply lines", used);
        bool more = line.size() > 3 && line[3] == '-';
        std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view{};
        if (auto len = enhanced_length(text); len > 0 && text[0] == line[0]) {
            if (reply_.lines.empty()) reply_.enhanced = std::string(text.substr(0, len));
            text = text.substr(len);
            if (!text.empty()) text.remove_prefix(1);
        }
        reply_.lines.emplace_back(text);
        line_.clear();
        if (!more) {
            done_ = true;
            return {Status::done, used};
        }
    }
    return {Status::need_more, used};
}

Reply ReplyParser::take() {
    Reply r = std::move(reply_);
    reply_ = Reply{};
    done_ = false;
    return r;
}

}  // namespace proto::smtp
