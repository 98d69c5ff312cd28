// delivery-maildir settings: every key is read here, once, with its default
// and bounds (config::Reader), for both the LMTP server and the deliver
// command, so one JSON file configures both. See README.md, section delivery-maildir.
//
// A loaded configuration is immutable: a SIGHUP builds a new one (re-reading
// the virtual_mailboxes file) and swaps it in; transactions in progress keep
// the one they started with.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "daemon/config.h"

namespace maildir {

enum class Mode { system, virtual_mailbox };

struct Settings {
    Mode mode = Mode::system;
    // system: ~user/<home_maildir>/, written as that user.
    std::string home_maildir = "Maildir";
    std::vector<std::string> local_domains;  // lower case; empty = any domain
    // virtual: <virtual_base>/<domain>/<local part>/, written as virtual_user.
    std::string virtual_base = "/var/vmail";
    std::vector<std::string> virtual_domains;  // lower case; empty = domains of the list
    std::string virtual_mailboxes_path;
    std::string virtual_user;  // "" = the user the program runs as
    uid_t virtual_uid = 0;
    gid_t virtual_gid = 0;
    bool virtual_switch_ids = false;

    std::string recipient_delimiter = "+";
    std::size_t message_size_limit = 10240000;  // Postfix's default
    std::size_t max_recipients = 1000;          // per LMTP transaction
    bool quota = true;                          // honour Maildir++ maildirsize files
    std::chrono::seconds tmp_max_age{36 * 3600};
    std::string hostname;         // greeting and unique file names
    unsigned delivery_workers = 8;  // threads doing the blocking file work
    std::size_t max_errors = 20;    // protocol errors before the session is dropped
};

// The configuration one transaction delivers with.
struct State {
    Settings settings;
    std::unordered_set<std::string> virtual_mailboxes;  // "local@domain", lower case
    std::unordered_set<std::string> virtual_domain_set;
};

// The keys common to every proto daemon (listen, metrics, ...), which the
// deliver command accepts in a shared file and ignores.
const std::vector<std::string>& daemon_keys();

// Read every delivery key and load the files they name; throws
// config::ConfigError naming the key.
std::shared_ptr<const State> read_state(proto::config::Reader& reader);

// Read the virtual_mailboxes file (format in mailbox_list.h); throws
// config::ConfigError naming the file and line.
std::unordered_set<std::string> load_mailbox_list(const std::string& path);

}  // namespace maildir
