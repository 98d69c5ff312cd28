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

}  // namespace mta
