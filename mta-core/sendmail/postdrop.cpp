// mta-core-postdrop; see postdrop.h.
#include "sendmail/postdrop.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "queue/maildrop_file.h"
#include "sendmail/local_config.h"
#include "sendmail/maildrop_writer.h"
#include "sendmail/sysexits.h"

namespace mta::sendmail {

namespace {

int fail(int code, const std::string& text) {
    std::fprintf(stderr, "mta-core-postdrop: fatal: %s\n", text.c_str());
    return code;
}

}  // namespace

int postdrop_main(int argc, char** argv) {
    std::string config;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-c" && i + 1 < argc) config = argv[++i];
        else return fail(exit_code::usage, "usage: mta-core-postdrop [-c config_directory]");
    }
    uid_t uid = ::getuid();
    std::string error;
    auto cfg = load_local_config(config, uid, &error);
    if (!cfg) return fail(exit_code::os_file, error);
    std::string login = login_name(uid);
    if (!submit_allowed(*cfg, login, &error))
        return fail(exit_code::no_perm, error.empty() ? "User " + login + "(" + std::to_string(uid) +
                                                            ") is not allowed to submit mail"
                                                      : error);
    mta::queue::MaildropLimits limits;
    limits.max_content = cfg->message_size_limit;
    std::size_t bound = mta::queue::maildrop_file_bound(limits);
    std::string file;
    char buf[65536];
    while (true) {
        ssize_t n = ::read(0, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(exit_code::temp_fail, std::string("read: ") + std::strerror(errno));
        if (n == 0) break;
        file.append(buf, static_cast<std::size_t>(n));
        if (file.size() > bound) return fail(exit_code::data_error, "message file too big");
    }
    if (!mta::queue::parse_maildrop(file, limits, &error))
        return fail(exit_code::data_error, "malformed input: " + error);
    std::string name;
    int err = write_maildrop(cfg->queue_directory + "/maildrop", file, &name);
    if (err)
        return fail(err == EACCES || err == EPERM ? exit_code::cant_create : exit_code::temp_fail,
                    "cannot create file in " + cfg->queue_directory + "/maildrop: " + std::strerror(err));
    return exit_code::ok;
}

}  // namespace mta::sendmail
