// The sendmail command; see sendmail.h.
#include "sendmail/sendmail.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "program.h"
#include "queue/maildrop_file.h"
#include "sendmail/local_config.h"
#include "sendmail/options.h"
#include "sendmail/postdrop_client.h"
#include "sendmail/smtp_stdio.h"
#include "sendmail/submission.h"
#include "sendmail/sysexits.h"
#include "tables/tables.h"

namespace mta::sendmail {

namespace {

int fatal(int code, const std::string& text) {
    std::fprintf(stderr, "sendmail: fatal: %s\n", text.c_str());
    return code;
}

// -F, else $NAME, else the first field of the password file's GECOS, as
// Postfix's sendmail chooses the full name.
std::string full_name(const Options& o, uid_t uid) {
    if (!o.fullname.empty()) return o.fullname;
    if (const char* name = std::getenv("NAME"); name && *name) return name;
    if (struct passwd* pw = ::getpwuid(uid); pw && pw->pw_gecos) {
        std::string gecos = pw->pw_gecos;
        return gecos.substr(0, gecos.find(','));
    }
    return {};
}

// Refused here, with a message, rather than moved aside by pickup later.
bool clean(const std::string& address) { return address.size() <= 256 && queue::valid_maildrop_address(address); }

int submit(const Options& o, const LocalConfig& cfg, uid_t uid) {
    std::string login = login_name(uid);
    std::string error;
    if (!submit_allowed(cfg, login, &error))
        return fatal(exit_code::no_perm, error.empty() ? "User " + login + "(" + std::to_string(uid) +
                                                             ") is not allowed to submit mail"
                                                       : error);
    MessageReader reader(cfg.message_size_limit, o.dot_ends_input);
    char buf[65536];
    while (true) {
        ssize_t n = ::read(0, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fatal(exit_code::temp_fail, std::string("read standard input: ") + std::strerror(errno));
        if (n == 0 || !reader.feed(std::string_view(buf, static_cast<std::size_t>(n)))) break;
        if (reader.too_big()) break;
    }
    reader.finish();
    if (reader.too_big()) return fatal(exit_code::data_error, "message file too big (message_size_limit)");
    queue::MaildropMessage m;
    m.content = reader.take();
    if (o.extract_recipients) {
        auto x = extract_recipients(m.content);
        m.content = std::move(x.message);
        m.recipients = std::move(x.recipients);
    }
    for (const auto& arg : o.recipients)
        for (auto& a : parse_address_list(arg)) m.recipients.push_back(std::move(a));
    if (m.recipients.empty())
        return fatal(exit_code::usage, o.extract_recipients ? "No recipient addresses found in message header"
                                                            : "Recipient addresses must be specified");
    for (const auto& r : m.recipients)
        if (!clean(r)) return fatal(exit_code::data_error, "bad recipient address syntax: " + r);
    m.sender = o.sender.value_or(login);
    if (!m.sender.empty() && !clean(m.sender)) return fatal(exit_code::data_error, "bad sender address syntax: " + m.sender);
    m.fullname = full_name(o, uid).substr(0, 256);
    for (char& c : m.fullname)
        if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    return run_postdrop(cfg, queue::serialize_maildrop(m));
}

int check_aliases(const LocalConfig& cfg) {
    for (const auto& spec : cfg.alias_maps) {
        std::string s = spec.starts_with("proxy:") ? spec.substr(6) : spec;
        try {
            tables::open_table(s, tables::Flavour::aliases, cfg.config_directory);
        } catch (const std::exception& e) {
            return fatal(exit_code::os_file, "alias_maps " + spec + ": " + e.what());
        }
    }
    std::printf("newaliases: mta-core reads alias_maps as text (%zu table%s checked): nothing to rebuild\n",
                cfg.alias_maps.size(), cfg.alias_maps.size() == 1 ? "" : "s");
    return exit_code::ok;
}

}  // namespace

int sendmail_main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    auto parsed = parse_options(argc > 0 ? argv[0] : "sendmail", args);
    if (!parsed.options) {
        std::fprintf(stderr, "sendmail: fatal: %s\n%s\n", parsed.error.c_str(), kUsage);
        return exit_code::usage;
    }
    const Options& o = *parsed.options;
    if (o.verbose)
        for (const auto& n : o.notes) std::fprintf(stderr, "sendmail: %s\n", n.c_str());
    std::string where = o.config;
    if (where.empty())
        if (const char* env = std::getenv("MAIL_CONFIG")) where = env;
    uid_t uid = ::getuid();
    std::string error;
    auto cfg = load_local_config(where, uid, &error);
    if (!cfg) return fatal(exit_code::os_file, error);
    switch (o.mode) {
        case Mode::list_queue:
            // The queue is mail_owner's (mode 0700); Postfix's mailq reads it
            // through setgid postqueue, mta-core's only as root or mail_owner.
            if (::access((cfg->queue_directory + "/active").c_str(), R_OK | X_OK) != 0)
                return fatal(exit_code::unavailable, "cannot read " + cfg->queue_directory + "/active: " +
                                                         std::strerror(errno) + " (run as root or mail_owner)");
            return queue_command({"queue", "list"}, cfg->queue_directory);
        case Mode::flush_queue: {
            // The flush is a signal to mta-core, which runs as mail_owner:
            // other users cannot send it (Postfix lets them, through
            // authorized_flush_users and its public flush service).
            std::ifstream pid_file(cfg->queue_directory + "/pid/master.pid");
            long pid = 0;
            if (pid_file >> pid && pid > 1 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == EPERM)
                return fatal(exit_code::no_perm, "-q: only root and mail_owner can flush mta-core's queue");
            return queue_command({"queue", "flush"}, cfg->queue_directory);
        }
        case Mode::rebuild_aliases: return check_aliases(*cfg);
        case Mode::smtp: return smtp_on_stdio(*cfg, uid);
        case Mode::deliver: break;
    }
    return submit(o, *cfg, uid);
}

}  // namespace mta::sendmail
