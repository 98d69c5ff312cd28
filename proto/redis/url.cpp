// Redis URL parsing and redacted printing.
//
// Accepted forms (see client.h):
//   redis://[[user]:password@]host[:port][/db]     host may be [IPv6]
//   unix:/path[?db=N&password=P&username=U]
//   redis+unix://[[user]:password@]/path[?db=N&password=P&username=U]
//   rediss://...  (TLS)
//   redis-sentinel://[[user]:password@]h[:p],h[:p]/MASTER[/db]
//   redis-cluster://[[user]:password@]h[:p],h[:p]
// User and password may be percent-encoded, so a password can hold '@', ':'
// or '/'.
//
// Security: the password is kept only in the Url; to_string() prints "***"
// so URLs can be logged, and error messages never quote the password.

#include "redis/client.h"

#include <charconv>
#include <limits>
#include <stdexcept>

namespace proto::redis {

namespace {

[[noreturn]] void fail(const std::string& why) {
    throw std::invalid_argument("invalid redis URL: " + why);
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decodes %XX escapes; `what` names the field in errors (never its value,
// which may be a password).
std::string percent_decode(std::string_view text, const char* what) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        if (i + 2 >= text.size()) fail(std::string("bad %-escape in ") + what);
        int high = hex_value(text[i + 1]);
        int low = hex_value(text[i + 2]);
        if (high < 0 || low < 0) fail(std::string("bad %-escape in ") + what);
        out += static_cast<char>(high * 16 + low);
        i += 2;
    }
    return out;
}

// Characters that would make a printed user name ambiguous are escaped.
std::string percent_encode(std::string_view text) {
    static const char digits[] = "0123456789ABCDEF";
    std::string out;
    for (char c : text) {
        auto u = static_cast<unsigned char>(c);
        bool plain = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
                     c == '-' || c == '_' || c == '.' || c == '~';
        if (plain) {
            out += c;
        } else {
            out += '%';
            out += digits[u >> 4];
            out += digits[u & 15];
        }
    }
    return out;
}

template <typename Int>
Int parse_number(std::string_view text, Int max, const char* what) {
    Int value{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 0 ||
        value > max)
        fail(std::string("bad ") + what + " '" + std::string(text) + "'");
    return value;
}

int parse_db(std::string_view text) {
    return parse_number<int>(text, std::numeric_limits<int>::max(), "database number");
}

// "[user]:password" before '@'. A lone "name@" is rejected: it is ambiguous
// between a user without password and a password without user.
void parse_userinfo(std::string_view userinfo, Url& url) {
    auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) fail("credentials must be written [user]:password@");
    url.username = percent_decode(userinfo.substr(0, colon), "user name");
    url.password = percent_decode(userinfo.substr(colon + 1), "password");
}

// "db=N&password=P&username=U" after '?' in the unix forms.
void parse_query(std::string_view query, Url& url) {
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (pair.empty()) continue;
        auto eq = pair.find('=');
        if (eq == std::string_view::npos) fail("query parameter without '='");
        std::string_view name = pair.substr(0, eq);
        std::string_view value = pair.substr(eq + 1);
        if (name == "db") {
            url.db = parse_db(value);
        } else if (name == "password") {
            url.password = percent_decode(value, "password");
        } else if (name == "username" || name == "user") {
            url.username = percent_decode(value, "user name");
        } else {
            fail("unknown query parameter '" + std::string(name) + "'");
        }
    }
}

void parse_unix(std::string_view rest, Url& url) {
    auto question = rest.find('?');
    std::string_view path = rest.substr(0, question);
    if (path.empty() || path.front() != '/') fail("unix socket path must be absolute");
    url.unix_socket = true;
    url.path = percent_decode(path, "socket path");
    if (question != std::string_view::npos) parse_query(rest.substr(question + 1), url);
}

HostPort parse_host_port(std::string_view authority, std::uint16_t default_port) {
    HostPort where;
    where.port = default_port;
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) fail("unterminated '[' in host");
        where.host = std::string(authority.substr(1, close - 1));
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') fail("junk after ']' in host");
            port = after.substr(1);
            if (port.empty()) fail("empty port");
        }
    } else {
        auto colon = authority.find(':');
        where.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) {
            port = authority.substr(colon + 1);
            if (port.empty()) fail("empty port");
        }
    }
    if (where.host.empty()) fail("empty host");
    if (!port.empty()) {
        where.port = parse_number<std::uint16_t>(port, 65535, "port");
        if (where.port == 0) fail("port 0");
    }
    return where;
}

// Splits "[userinfo@]authority" at the last '@': the password may contain
// '@' only percent-encoded, so the last one ends it.
std::string_view take_userinfo(std::string_view authority, Url& url) {
    auto at = authority.rfind('@');
    if (at == std::string_view::npos) return authority;
    parse_userinfo(authority.substr(0, at), url);
    return authority.substr(at + 1);
}

void parse_tcp(std::string_view rest, Url& url) {
    auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    if (slash != std::string_view::npos) {
        std::string_view db = rest.substr(slash + 1);
        if (!db.empty()) url.db = parse_db(db);
    }
    HostPort where = parse_host_port(take_userinfo(authority, url), 6379);
    url.host = std::move(where.host);
    url.port = where.port;
}

// "h:p,h:p" of the Sentinel and Cluster forms.
std::vector<HostPort> parse_host_list(std::string_view list, std::uint16_t default_port) {
    std::vector<HostPort> hosts;
    constexpr std::size_t max_hosts = 64;
    while (true) {
        auto comma = list.find(',');
        hosts.push_back(parse_host_port(list.substr(0, comma), default_port));
        if (hosts.size() > max_hosts) fail("more than 64 hosts");
        if (comma == std::string_view::npos) break;
        list = list.substr(comma + 1);
    }
    return hosts;
}

void parse_sentinel(std::string_view rest, Url& url) {
    auto slash = rest.find('/');
    if (slash == std::string_view::npos) fail("redis-sentinel:// needs /MASTERNAME after the sentinels");
    url.seeds = parse_host_list(take_userinfo(rest.substr(0, slash), url), 26379);
    std::string_view tail = rest.substr(slash + 1);
    auto db_slash = tail.find('/');
    url.master_name = percent_decode(tail.substr(0, db_slash), "master name");
    if (url.master_name.empty()) fail("empty master name");
    if (db_slash != std::string_view::npos && db_slash + 1 < tail.size())
        url.db = parse_db(tail.substr(db_slash + 1));
    url.topology = Url::Topology::sentinel;
    url.host = url.seeds.front().host;
    url.port = url.seeds.front().port;
}

void parse_cluster(std::string_view rest, Url& url) {
    auto slash = rest.find('/');
    if (slash != std::string_view::npos) {
        std::string_view db = rest.substr(slash + 1);
        if (!db.empty() && parse_db(db) != 0) fail("Redis Cluster has database 0 only");
    }
    url.seeds = parse_host_list(take_userinfo(rest.substr(0, slash), url), 6379);
    url.topology = Url::Topology::cluster;
    url.host = url.seeds.front().host;
    url.port = url.seeds.front().port;
}

std::string print_host_port(const std::string& host, std::uint16_t port) {
    std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    return out + ":" + std::to_string(port);
}

}  // namespace

Url Url::parse(std::string_view text) {
    Url url;
    // A URL has no spaces or control bytes; refusing them keeps log lines
    // and error messages that quote the host or path on one line.
    for (char c : text)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
            fail("control character or space in URL (use %-escapes)");
    constexpr std::string_view redis_scheme = "redis://";
    constexpr std::string_view unix_scheme = "unix:";
    constexpr std::string_view redis_unix_scheme = "redis+unix://";
    if (text.starts_with(redis_scheme)) {
        parse_tcp(text.substr(redis_scheme.size()), url);
    } else if (text.starts_with(redis_unix_scheme)) {
        std::string_view rest = text.substr(redis_unix_scheme.size());
        auto at = rest.find('@');
        auto slash = rest.find('/');
        if (at != std::string_view::npos && at < slash) {
            parse_userinfo(rest.substr(0, at), url);
            rest = rest.substr(at + 1);
        }
        parse_unix(rest, url);
    } else if (text.starts_with(unix_scheme)) {
        std::string_view rest = text.substr(unix_scheme.size());
        // Tolerate unix:///path as well as unix:/path.
        if (rest.starts_with("//")) rest.remove_prefix(2);
        parse_unix(rest, url);
    } else if (text.starts_with("rediss://")) {
        url.tls.enabled = true;
        parse_tcp(text.substr(std::string_view("rediss://").size()), url);
    } else if (text.starts_with("redis-sentinel://")) {
        parse_sentinel(text.substr(std::string_view("redis-sentinel://").size()), url);
    } else if (text.starts_with("redis-cluster://")) {
        parse_cluster(text.substr(std::string_view("redis-cluster://").size()), url);
    } else {
        fail("expected redis://HOST[:PORT][/DB], rediss://..., unix:/PATH, "
             "redis-sentinel://HOST:PORT,.../MASTER or redis-cluster://HOST:PORT,...");
    }
    return url;
}

std::string Url::to_string() const {
    std::string out;
    if (unix_socket) {
        out = "unix:" + path;
        char separator = '?';
        auto add = [&](const std::string& name, const std::string& value) {
            out += separator;
            out += name + "=" + value;
            separator = '&';
        };
        if (db != 0) add("db", std::to_string(db));
        if (!username.empty()) add("username", percent_encode(username));
        if (!password.empty()) add("password", "***");
        return out;
    }
    std::string credentials;
    if (!username.empty() || !password.empty())
        credentials = percent_encode(username) + ":" + (password.empty() ? "" : "***") + "@";
    auto host_list = [&] {
        std::string list;
        for (const auto& seed : seeds) {
            if (!list.empty()) list += ',';
            list += seed.to_string();
        }
        return list;
    };
    if (topology == Topology::sentinel) {
        out = "redis-sentinel://" + credentials + host_list() + "/" + percent_encode(master_name);
        if (db != 0) out += "/" + std::to_string(db);
        return out;
    }
    if (topology == Topology::cluster) return "redis-cluster://" + credentials + host_list();
    out = (tls.enabled ? "rediss://" : "redis://") + credentials + print_host_port(host, port);
    if (db != 0) out += "/" + std::to_string(db);
    return out;
}

std::string HostPort::to_string() const { return print_host_port(host, port); }

Url Url::node(const HostPort& where) const {
    Url out = *this;
    out.topology = Topology::single;
    out.unix_socket = false;
    out.path.clear();
    out.host = where.host;
    out.port = where.port;
    out.seeds.clear();
    out.master_name.clear();
    return out;
}

}  // namespace proto::redis
