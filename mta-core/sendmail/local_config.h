// The part of main.cf that local submission reads (sendmail, mailq,
// newaliases and the setgid postdrop helper), and who may use it.
//
// Security: the postdrop helper runs setgid to setgid_group, so a
// configuration chosen by the user (-C, MAIL_CONFIG) must not be able to
// widen what the user may do. As Postfix's sendmail(1) and postdrop(1), a
// user other than root gets another configuration only if the default
// main.cf lists its directory in alternate_config_directories. mta-core
// also honours a directory that only root can have written (the directory
// and its main.cf owned by root, writable by no one else): such a
// configuration governs its own queue and was set up by the administrator,
// so it grants nothing its author did not grant.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace mta::sendmail {

// The directory of the default main.cf (the .deb's, as mta-core's own).
constexpr const char* kDefaultConfigDirectory = "/etc/mailpolicy/mta-core";

struct LocalConfig {
    std::string config_directory;
    std::string main_cf;
    std::string queue_directory;
    std::string command_directory;  // where mta-core-postdrop is
    std::size_t message_size_limit = 0;
    std::vector<std::string> authorized_submit_users;
    std::vector<std::string> alias_maps;
};

// where: a directory or a main.cf path (-C), or empty for the default.
// real_uid: the invoking user. nullopt and error set if it cannot be read
// or may not be used by that user.
std::optional<LocalConfig> load_local_config(const std::string& where, uid_t real_uid, std::string* error);

// authorized_submit_users (postconf(5)): a list of login names, "!name",
// /file/name and type:table elements matched in order, the first match
// deciding ("!" refuses); no match refuses. static:anyone matches everyone.
bool submit_allowed(const LocalConfig& config, const std::string& login, std::string* error);

// The login name of a uid, or "#uid" when it has none.
std::string login_name(uid_t uid);

}  // namespace mta::sendmail
