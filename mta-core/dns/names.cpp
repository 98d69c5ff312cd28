#include "dns/names.h"

#include "net/address.h"

namespace mta::dns {

namespace {

bool ldh_or_underscore(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

}  // namespace

std::string_view strip_root_dot(std::string_view name) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    return name;
}

bool valid_query_name(std::string_view name) {
    name = strip_root_dot(name);
    if (name.empty() || name.size() > max_name_length) return false;
    std::size_t label = 0;
    for (char c : name) {
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        if (!ldh_or_underscore(c)) return false;
        if (++label > max_label_length) return false;
    }
    return label != 0;
}

bool valid_hostname(std::string_view name) {
    if (!valid_query_name(name)) return false;
    name = strip_root_dot(name);
    bool non_numeric = false;
    char prev = '.';
    for (char c : name) {
        if (c == '-' && prev == '.') return false;
        if (c == '.' && prev == '-') return false;
        if (c != '.' && (c < '0' || c > '9')) non_numeric = true;
        prev = c;
    }
    return prev != '-' && non_numeric;
}

std::optional<std::string> reverse_name(std::string_view ip) {
    auto addr = proto::net::IpAddress::parse(ip);
    if (!addr) return std::nullopt;
    std::string out;
    if (!addr->v6) {
        for (int i = 3; i >= 0; --i) {
            out += std::to_string(addr->bytes[static_cast<std::size_t>(i)]);
            out += '.';
        }
        out += "in-addr.arpa";
        return out;
    }
    static constexpr char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; --i) {
        auto b = addr->bytes[static_cast<std::size_t>(i)];
        out += hex[b & 0xf];
        out += '.';
        out += hex[b >> 4];
        out += '.';
    }
    out += "ip6.arpa";
    return out;
}

}  // namespace mta::dns
