// Whitelist parsing and matching; see whitelist.h.
#include "whitelist.h"


#include "sender.h"

namespace greylist {

namespace {

constexpr std::size_t kMaxRegex = 512;
constexpr std::size_t kMaxRegexSubject = 512;

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

bool has_space(std::string_view s) {
    return s.find_first_of(" \t\r\v\f") != std::string_view::npos;
}

[[noreturn]] void fail(std::string_view source, std::size_t line, std::string_view why) {
    throw WhitelistError(std::string(source) + ":" + std::to_string(line) + ": " +
                         std::string(why));
}

// Calls f(line_number, content) for every non-empty line with comments removed.
template <typename F>
void for_each_entry(std::string_view text, F&& f) {
    std::size_t number = 0;
    while (!text.empty()) {
        std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        ++number;
        if (std::size_t hash = line.find('#'); hash != std::string_view::npos)
            line = line.substr(0, hash);
        line = trim(line);
        if (!line.empty()) f(number, line);
    }
}

// "/regex/" with no white space inside, as postgrey's /^\/(\S+)\/$/.
bool is_regex_entry(std::string_view e) {
    return e.size() >= 3 && e.front() == '/' && e.back() == '/';
}

std::regex compile(std::string_view pattern, std::string_view source, std::size_t line) {
    if (pattern.size() > kMaxRegex) fail(source, line, "regular expression longer than 512 bytes");
    try {
        return std::regex(pattern.begin(), pattern.end(),
                          std::regex::ECMAScript | std::regex::icase | std::regex::optimize);
    } catch (const std::regex_error& e) {
        fail(source, line, std::string("bad regular expression: ") + e.what());
    }
}

bool all_digits_and_dots(std::string_view s, int& dots) {
    dots = 0;
    if (s.empty()) return false;
    for (char c : s) {
        if (c == '.')
            ++dots;
        else if (c < '0' || c > '9')
            return false;
    }
    return true;
}

bool regex_search_bounded(const std::vector<std::regex>& regexes, std::string_view subject) {
    if (regexes.empty() || subject.size() > kMaxRegexSubject) return false;
    for (const auto& re : regexes)
        if (std::regex_search(subject.begin(), subject.end(), re)) return true;
    return false;
}

}  // namespace

void ClientWhitelist::parse(std::string_view text, std::string_view source) {
    for_each_entry(text, [&](std::size_t line, std::string_view e) {
        if (has_space(e)) fail(source, line, "doesn't look like a host name or address");
        if (is_regex_entry(e)) {
            regexes_.push_back(compile(e.substr(1, e.size() - 2), source, line));
            return;
        }
        int dots = 0;
        std::string_view ip_part = e.substr(0, e.find('/'));
        bool v4ish = all_digits_and_dots(ip_part, dots);
        if (v4ish && (dots == 1 || dots == 2) && ip_part.size() == e.size()) {
            // postgrey's partial addresses: "1.2.3" is 1.2.3.0/24, "1.2" is 1.2.0.0/16.
            std::string full(e);
            full += dots == 2 ? ".0/24" : ".0.0/16";
            auto cidr = proto::net::Cidr::parse(full);
            if (!cidr) fail(source, line, "bad partial IPv4 address");
            cidrs_.add(*cidr);
            ++networks_;
            return;
        }
        if ((v4ish && dots == 3) || e.find(':') != std::string_view::npos) {
            auto cidr = proto::net::Cidr::parse(e);
            if (!cidr) fail(source, line, "bad IP address or network");
            cidrs_.add(*cidr);
            ++networks_;
            return;
        }
        if (e.find('/') != std::string_view::npos || e.find('@') != std::string_view::npos)
            fail(source, line, "doesn't look like a host name");
        std::string name = lower_ascii(e);
        // ".example.com" and the absolute "example.com." mean the same.
        if (name.front() == '.') name.erase(0, 1);
        if (!name.empty() && name.back() == '.') name.pop_back();
        if (name.empty()) fail(source, line, "empty host name");
        names_.insert(std::move(name));
    });
}

bool ClientWhitelist::matches(std::string_view client_name,
                              const proto::net::IpAddress& address) const {
    if (networks_ > 0 && cidrs_.contains(address)) return true;
    if (client_name.empty() || client_name == "unknown") return false;
    if (!names_.empty()) {
        // The name itself, then each parent domain: a.b.example.com, b.example.com, ...
        char buffer[256];
        if (client_name.size() < sizeof buffer) {
            for (std::size_t i = 0; i < client_name.size(); ++i) {
                char c = client_name[i];
                buffer[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
            }
            std::string_view name(buffer, client_name.size());
            while (!name.empty()) {
                if (names_.contains(name)) return true;
                std::size_t dot = name.find('.');
                if (dot == std::string_view::npos) break;
                name.remove_prefix(dot + 1);
            }
        }
    }
    return regex_search_bounded(regexes_, client_name);
}

void RecipientWhitelist::parse(std::string_view text, std::string_view source) {
    for_each_entry(text, [&](std::size_t line, std::string_view e) {
        if (has_space(e)) fail(source, line, "doesn't look like an address");
        if (is_regex_entry(e)) {
            regexes_.push_back(compile(e.substr(1, e.size() - 2), source, line));
            return;
        }
        std::string entry = lower_ascii(e);
        std::size_t at = entry.find('@');
        if (at == std::string::npos) {
            if (entry.front() == '.') entry.erase(0, 1);
            if (!entry.empty() && entry.back() == '.') entry.pop_back();
            if (entry.empty()) fail(source, line, "empty domain");
            domains_.insert(std::move(entry));
        } else if (at == entry.size() - 1) {
            if (at == 0) fail(source, line, "empty user");
            entry.pop_back();
            users_.insert(std::move(entry));
        } else {
            if (at == 0) fail(source, line, "empty user");
            addresses_.insert(std::move(entry));
        }
    });
}

bool RecipientWhitelist::matches(std::string_view recipient) const {
    if (recipient.empty()) return false;
    std::string lowered = lower_ascii(recipient);
    std::string_view r = lowered;
    std::size_t at = r.rfind('@');
    if (at != std::string_view::npos) {
        std::string_view user = r.substr(0, at);
        std::string_view domain = r.substr(at + 1);
        // user+extension matches user, as in postgrey and Postfix access(5).
        std::string_view base = user.substr(0, user.find('+'));
        if (!users_.empty() && (users_.contains(user) || users_.contains(base))) return true;
        if (!addresses_.empty()) {
            if (addresses_.contains(r)) return true;
            if (base.size() != user.size()) {
                std::string plain(base);
                plain += '@';
                plain += domain;
                if (addresses_.contains(plain)) return true;
            }
        }
        if (!domains_.empty()) {
            std::string_view d = domain;
            while (!d.empty()) {
                if (domains_.contains(d)) return true;
                std::size_t dot = d.find('.');
                if (dot == std::string_view::npos) break;
                d.remove_prefix(dot + 1);
            }
        }
    }
    return regex_search_bounded(regexes_, recipient);
}

}  // namespace greylist
