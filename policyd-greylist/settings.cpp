// Configuration of policyd-greylist; see settings.h and README.md (policyd-greylist).
#include "settings.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace greylist {

namespace {

using namespace std::chrono_literals;
using proto::config::ConfigError;

constexpr std::size_t kMaxListFile = 16 * 1024 * 1024;

std::string read_small_file(proto::config::Reader& r, std::string_view key,
                            const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) r.fail(key, "cannot open \"" + path + "\"");
    std::ostringstream text;
    text << in.rdbuf();
    std::string s = text.str();
    if (s.size() > kMaxListFile) r.fail(key, "\"" + path + "\" is larger than 16 MiB");
    return s;
}

template <typename List>
std::shared_ptr<const List> load_list(proto::config::Reader& r, std::string_view key,
                                      std::string_view builtin) {
    auto list = std::make_shared<List>();
    for (const auto& entry : r.strings(key, {"builtin"})) {
        try {
            if (entry == "builtin")
                list->parse(builtin, "builtin");
            else
                list->parse(read_small_file(r, key, entry), entry);
        } catch (const WhitelistError& e) {
            r.fail(key, e.what());
        }
    }
    return list;
}

}  // namespace

Settings read_settings(proto::config::Reader& r) {
    Settings s;
    const auto day = std::chrono::seconds(86400);
    s.rules.delay = r.duration("delay", 300s, 0s, 7 * day).count();
    s.rules.retry_window = r.duration("retry_window", 2 * day, 1s, 365 * day).count();
    s.rules.max_age = r.duration("max_age", 35 * day, 1s, 3650 * day).count();
    if (s.rules.retry_window <= s.rules.delay)
        r.fail("retry_window", "must be longer than delay, or no retry could ever pass");
    if (s.rules.max_age < s.rules.retry_window)
        r.fail("max_age", "must be at least retry_window");
    s.rules.auto_whitelist_clients = r.integer("auto_whitelist_clients", 5, 0, 1000000);
    s.rules.auto_whitelist_interval =
        r.duration("auto_whitelist_interval", 3600s, 0s, 365 * day).count();
    s.ipv4_prefix = static_cast<int>(r.integer("ipv4_prefix", 24, 1, 32));
    s.ipv6_prefix = static_cast<int>(r.integer("ipv6_prefix", 64, 1, 128));
    s.client_key = r.choice("client_key", "verified_domain_or_network",
                            {"network", "verified_domain_or_network"}) == "network"
                       ? ClientKeyMode::network
                       : ClientKeyMode::verified_domain_or_network;
    s.whitelist_clients = load_list<ClientWhitelist>(r, "whitelist_clients",
                                                     builtin_client_whitelist());
    s.whitelist_recipients = load_list<RecipientWhitelist>(r, "whitelist_recipients",
                                                           builtin_recipient_whitelist());

    s.greylist_action = r.action("greylist_action", "DEFER_IF_PERMIT");
    using proto::policy::ActionKind;
    switch (s.greylist_action.kind) {
        case ActionKind::defer_if_permit:
        case ActionKind::defer:
        case ActionKind::defer_if_reject:
        case ActionKind::smtp_4xx: break;
        default:
            r.fail("greylist_action",
                   "must be a temporary refusal: DEFER_IF_PERMIT, DEFER, DEFER_IF_REJECT or 4NN");
    }
    s.greylist_text = r.string("greylist_text", "Greylisted, please try again in %s seconds");
    if (s.greylist_text.find_first_of("\r\n") != std::string::npos)
        r.fail("greylist_text", "must be one line");
    if (s.greylist_text.size() > 400) r.fail("greylist_text", "longer than 400 bytes");
    s.x_greylist_header = r.boolean("x_greylist_header", true);
    s.privacy = r.boolean("privacy", false);
    std::string key_file = r.string("privacy_key_file", "");
    if (s.privacy) {
        if (key_file.empty()) {
            // Still no address stored, but the hash key is public: say so at start.
            s.privacy_key_builtin = true;
            s.privacy_hash = KeyedHash::from_secret("policyd-greylist default privacy key");
        } else {
            std::string secret = read_small_file(r, "privacy_key_file", key_file);
            while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r'))
                secret.pop_back();
            if (secret.size() < 16) r.fail("privacy_key_file", "the key must be at least 16 bytes");
            s.privacy_hash = KeyedHash::from_secret(secret);
        }
    }
    s.dry_run = r.boolean("dry_run", false);
    s.on_store_error = r.action("on_store_error", "DUNNO");
    s.key_prefix = r.string("key_prefix", "gl");
    if (s.key_prefix.empty() || s.key_prefix.size() > 32 ||
        s.key_prefix.find_first_of("{}: \t\r\n") != std::string::npos)
        r.fail("key_prefix", "1 to 32 characters, without braces, colons or spaces");
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof host, "localhost");
    s.hostname = r.string("hostname", host);
    return s;
}

std::string format_greylist_text(std::string_view text, std::int64_t seconds,
                                 std::string_view recipient) {
    std::string out;
    out.reserve(text.size() + 16);
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 1 < text.size()) {
            char c = text[i + 1];
            if (c == 's') {
                out += std::to_string(seconds);
                ++i;
                continue;
            }
            if (c == 'r') {
                std::size_t at = recipient.rfind('@');
                std::string_view domain =
                    at == std::string_view::npos ? recipient : recipient.substr(at + 1);
                // A reply is one line of printable text: drop control bytes.
                for (char d : domain)
                    if (static_cast<unsigned char>(d) >= 0x20 && d != 0x7f) out += d;
                ++i;
                continue;
            }
        }
        out += text[i];
    }
    return out;
}

}  // namespace greylist
