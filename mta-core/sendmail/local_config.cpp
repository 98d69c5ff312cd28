// Local submission's configuration and access; see local_config.h.
#include "sendmail/local_config.h"

#include <pwd.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "config/config.h"
#include "tables/tables.h"

namespace mta::sendmail {

namespace {

std::string strip_slashes(std::string s) {
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    return s;
}

bool root_only(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0 && st.st_uid == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0 &&
           !S_ISLNK(st.st_mode);
}

// May a user other than root read the configuration in dir?
bool trusted_directory(const std::string& dir, std::string* error) {
    if (dir == kDefaultConfigDirectory) return true;
    try {
        std::string default_cf = std::string(kDefaultConfigDirectory) + "/main.cf";
        struct stat st;
        if (::stat(default_cf.c_str(), &st) == 0) {
            config::Settings s(config::load_main_cf(default_cf), std::vector<std::string>{});
            for (const auto& d : s.list("alternate_config_directories"))
                if (strip_slashes(d) == dir) return true;
        }
    } catch (const config::ConfigError&) {
        // An unreadable default configuration lists nothing.
    }
    if (root_only(dir) && root_only(dir + "/main.cf")) return true;
    if (error)
        *error = "-C or MAIL_CONFIG " + dir + ": not listed in alternate_config_directories of " +
                 kDefaultConfigDirectory + "/main.cf";
    return false;
}

}  // namespace

std::string login_name(uid_t uid) {
    if (struct passwd* pw = ::getpwuid(uid)) return pw->pw_name;
    return "#" + std::to_string(uid);
}

std::optional<LocalConfig> load_local_config(const std::string& where, uid_t real_uid, std::string* error) {
    LocalConfig c;
    std::string path = where.empty() ? std::string(kDefaultConfigDirectory) : strip_slashes(where);
    struct stat st;
    if (path.ends_with("/main.cf") || (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode))) {
        c.main_cf = path;
        auto slash = path.rfind('/');
        c.config_directory = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    } else {
        c.config_directory = path;
        c.main_cf = path + "/main.cf";
    }
    if (real_uid != 0 && !trusted_directory(c.config_directory, error)) return std::nullopt;
    try {
        config::Settings s(config::load_main_cf(c.main_cf), std::vector<std::string>{});
        c.queue_directory = s.str("queue_directory");
        c.command_directory = s.str("command_directory");
        c.message_size_limit = static_cast<std::size_t>(s.integer("message_size_limit", 0, 1LL << 40));
        c.authorized_submit_users = s.list("authorized_submit_users");
        c.alias_maps = s.list("alias_maps");
    } catch (const config::ConfigError& e) {
        if (error) *error = e.what();
        return std::nullopt;
    }
    return c;
}

bool submit_allowed(const LocalConfig& config, const std::string& login, std::string* error) {
    for (auto element : config.authorized_submit_users) {
        bool negate = false;
        while (element.starts_with("!")) {
            negate = !negate;
            element.erase(0, 1);
        }
        bool match = false;
        if (element.starts_with("/")) {
            std::ifstream in(element);
            if (!in) {
                if (error) *error = "authorized_submit_users: cannot read " + element;
                return false;
            }
            for (std::string name; in >> name;)
                if (name == login) match = true;
        } else if (element.find(':') != std::string::npos) {
            try {
                auto table = tables::open_table(element, tables::Flavour::access, config.config_directory);
                match = table->lookup(login).has_value();
            } catch (const std::exception& e) {
                if (error) *error = std::string("authorized_submit_users: ") + e.what();
                return false;
            }
        } else {
            match = element == login;
        }
        if (match) return !negate;
    }
    return false;
}

}  // namespace mta::sendmail
