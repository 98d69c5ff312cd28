// delivery-maildir settings; see settings.h.
#include "settings.h"

#include <pwd.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "mailbox_list.h"
#include "recipient.h"
#include "smtp/address.h"

namespace maildir {

namespace config = proto::config;
using namespace std::chrono_literals;

const std::vector<std::string>& daemon_keys() {
    static const std::vector<std::string> keys = {
        "listen", "milter", "metrics", "redis", "redis_timeout_ms", "log_format",
        "max_connections", "idle_timeout", "request_timeout_ms", "read_timeout_ms", "log_decisions",
        "unix_socket_mode", "drain_timeout_ms", "user"};
    return keys;
}

std::unordered_set<std::string> load_mailbox_list(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw config::ConfigError("cannot read " + path);
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    try {
        return parse_mailbox_list(content, path);
    } catch (const std::invalid_argument& e) {
        throw config::ConfigError(e.what());
    }
}

std::shared_ptr<const State> read_state(config::Reader& r) {
    auto state = std::make_shared<State>();
    Settings& s = state->settings;
    s.mode = r.choice("mailbox_mode", "system", {"system", "virtual"}) == "virtual"
                 ? Mode::virtual_mailbox
                 : Mode::system;

    s.home_maildir = r.string("home_maildir", "Maildir");
    if (s.home_maildir.empty() || s.home_maildir.front() == '/' ||
        s.home_maildir.find("..") != std::string::npos)
        r.fail("home_maildir", "must be a path below the home directory, without \"..\"");
    while (s.home_maildir.size() > 1 && s.home_maildir.back() == '/') s.home_maildir.pop_back();

    auto domains = [&](std::string_view key) {
        std::vector<std::string> out;
        for (const auto& d : r.strings(key, {})) {
            std::string ld = lower(d);
            if (!proto::smtp::valid_domain(ld) || !safe_component(ld))
                r.fail(key, "\"" + d + "\" is not a domain name");
            out.push_back(ld);
        }
        return out;
    };
    s.local_domains = domains("local_domains");
    s.virtual_domains = domains("virtual_domains");

    s.virtual_base = r.string("virtual_base", "/var/vmail");
    if (s.virtual_base.empty() || s.virtual_base.front() != '/')
        r.fail("virtual_base", "must be an absolute path");
    while (s.virtual_base.size() > 1 && s.virtual_base.back() == '/') s.virtual_base.pop_back();
    s.virtual_mailboxes_path = r.string("virtual_mailboxes", "");
    s.virtual_user = r.string("virtual_user", "");
    if (!s.virtual_user.empty()) {
        struct passwd* pw = ::getpwnam(s.virtual_user.c_str());
        if (!pw) r.fail("virtual_user", "no such user \"" + s.virtual_user + "\"");
        s.virtual_uid = pw->pw_uid;
        s.virtual_gid = pw->pw_gid;
        s.virtual_switch_ids = true;
    }
    if (s.mode == Mode::virtual_mailbox) {
        if (s.virtual_mailboxes_path.empty())
            r.fail("virtual_mailboxes", "required with \"mailbox_mode\": \"virtual\"");
        try {
            state->virtual_mailboxes = load_mailbox_list(s.virtual_mailboxes_path);
        } catch (const config::ConfigError& e) {
            r.fail("virtual_mailboxes", e.what());
        }
        if (s.virtual_domains.empty()) {
            for (const auto& a : state->virtual_mailboxes)
                state->virtual_domain_set.insert(a.substr(a.rfind('@') + 1));
        } else {
            state->virtual_domain_set.insert(s.virtual_domains.begin(), s.virtual_domains.end());
        }
    }

    s.recipient_delimiter = r.string("recipient_delimiter", "+");
    for (char c : s.recipient_delimiter)
        if (c == '.' || c == '/' || c == '@' || static_cast<unsigned char>(c) <= 32 ||
            static_cast<unsigned char>(c) >= 127)
            r.fail("recipient_delimiter", "characters must be printable, not '.', '/' or '@'");
    s.message_size_limit =
        static_cast<std::size_t>(r.integer("message_size_limit", 10240000, 1024, 1LL << 31));
    s.max_recipients = static_cast<std::size_t>(r.integer("max_recipients", 1000, 1, 100000));
    s.quota = r.boolean("quota", true);
    s.tmp_max_age = r.duration("tmp_max_age", 36h, 1h, 24h * 365);
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0 || host[0] == 0) std::snprintf(host, sizeof host, "localhost");
    s.hostname = r.string("hostname", host);
    if (s.hostname.empty() || s.hostname.size() > 255)
        r.fail("hostname", "must be 1..255 characters");
    for (unsigned char c : s.hostname)
        if (c <= 32 || c >= 127) r.fail("hostname", "must be printable ASCII without spaces");
    s.delivery_workers = static_cast<unsigned>(r.integer("delivery_workers", 8, 1, 256));
    s.max_errors = static_cast<std::size_t>(r.integer("max_errors", 20, 1, 1000));
    return state;
}

}  // namespace maildir
