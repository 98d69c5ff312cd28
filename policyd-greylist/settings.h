// policyd-greylist's configuration keys, each declared once here with its
// default and bounds (config::Reader rejects unknown keys and bad values by
// name), and the whitelist files they name, loaded at start and on SIGHUP.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "client_key.h"
#include "daemon/config.h"
#include "keyed_hash.h"
#include "policy/action.h"
#include "store.h"
#include "whitelist.h"

namespace greylist {

struct Settings {
    Rules rules;
    int ipv4_prefix = 24;
    int ipv6_prefix = 64;
    ClientKeyMode client_key = ClientKeyMode::verified_domain_or_network;
    std::shared_ptr<const ClientWhitelist> whitelist_clients;
    std::shared_ptr<const RecipientWhitelist> whitelist_recipients;
    proto::policy::Action greylist_action;  // kind (and code for 4NN), text prepended
    std::string greylist_text;              // %s = seconds, %r = recipient domain
    bool x_greylist_header = true;
    bool privacy = false;
    std::optional<KeyedHash> privacy_hash;  // set when privacy is on
    bool privacy_key_builtin = false;       // privacy without privacy_key_file
    bool dry_run = false;
    proto::policy::Action on_store_error;
    std::string key_prefix = "gl";
    std::string hostname;  // for the X-Greylist header

    StoreKeys keys() const { return StoreKeys(key_prefix, privacy_hash); }
};

// Reads every key of this program; throws config::ConfigError naming the key.
Settings read_settings(proto::config::Reader& reader);

// "Greylisted, please try again in %s seconds" with %s and %r filled in.
std::string format_greylist_text(std::string_view text, std::int64_t seconds,
                                 std::string_view recipient);

}  // namespace greylist
