// Message header helpers; see message_header.h.
#include "message_header.h"

#include <strings.h>

#include <algorithm>

namespace mta {

std::string rfc5322_date(std::time_t t) {
    struct tm tm;
    ::localtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %e %b %Y %H:%M:%S %z (%Z)", &tm);
    return buf;
}

namespace {

// Calls found(value) for each field called name; stops when it returns true.
template <typename F>
void scan(std::string_view message, std::string_view name, F found) {
    for (std::size_t pos = 0; pos < message.size();) {
        auto eol = message.find("\r\n", pos);
        if (eol == std::string_view::npos || eol == pos) return;  // end of the header
        std::string_view line = message.substr(pos, eol - pos);
        if (line.size() > name.size() && line[name.size()] == ':' &&
            ::strncasecmp(line.data(), name.data(), name.size()) == 0) {
            std::string_view value = line.substr(name.size() + 1);
            value.remove_prefix(std::min(value.find_first_not_of(" \t"), value.size()));
            if (found(value)) return;
        }
        pos = eol + 2;
    }
}

}  // namespace

std::size_t count_fields(std::string_view message, std::string_view name) {
    std::size_t n = 0;
    scan(message, name, [&](std::string_view) {
        ++n;
        return false;
    });
    return n;
}

std::optional<std::string_view> field_value(std::string_view message, std::string_view name) {
    std::optional<std::string_view> out;
    scan(message, name, [&](std::string_view v) {
        out = v;
        return true;
    });
    return out;
}

std::size_t truncate_long_fields(std::string& message, std::size_t limit) {
    std::size_t cut = 0;
    std::string out;
    std::size_t copied = 0;  // message[0, copied) is in out already
    std::size_t pos = 0;
    while (pos < message.size()) {
        // One field: a line, then the lines that start with a blank (RFC 5322 2.2.3).
        std::size_t end = pos;
        for (;;) {
            auto eol = message.find("\r\n", end);
            if (eol == std::string::npos || eol == pos) break;
            end = eol + 2;
            if (end >= message.size() || (message[end] != ' ' && message[end] != '\t')) break;
        }
        if (end == pos) break;  // the empty line, or content without a line end: the header is over
        if (end - pos > limit) {
            // Keep whole lines up to the limit; a first line longer than the
            // limit alone is cut and given its CRLF back.
            std::size_t keep = pos;
            for (auto eol = message.find("\r\n", pos); eol != std::string::npos && eol + 2 - pos <= limit;
                 eol = message.find("\r\n", eol + 2))
                keep = eol + 2;
            if (out.empty()) out.reserve(message.size());
            out.append(message, copied, pos - copied);
            if (keep == pos) {
                out.append(message, pos, limit >= 2 ? limit - 2 : 0);
                out += "\r\n";
            } else {
                out.append(message, pos, keep - pos);
            }
            copied = end;
            ++cut;
        }
        pos = end;
    }
    if (cut) {
        out.append(message, copied, std::string::npos);
        message = std::move(out);
    }
    return cut;
}

}  // namespace mta
