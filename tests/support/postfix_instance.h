// A private Postfix instance for tests: its own config_directory (DIR/postfix),
// queue_directory (DIR/queue) and data_directory (DIR/data, owned by postfix),
// logging to DIR/maillog as there is no syslog daemon; /etc/postfix is left
// alone. Started and stopped with `postfix -c DIR/postfix`. Needs root and
// Debian's postfix package.
#pragma once

#include <string>

#include "support/process.h"

namespace testsupport {

class PostfixInstance {
public:
    explicit PostfixInstance(const TempDir& dir);  // creates the directories
    ~PostfixInstance();                            // stop()
    PostfixInstance(const PostfixInstance&) = delete;
    PostfixInstance& operator=(const PostfixInstance&) = delete;

    std::string config_dir() const { return dir_.file("postfix"); }
    // The main.cf lines every test instance starts with: the private
    // directories and log, loopback only, no aliases.db, no DNS for
    // delivery. The caller appends its names, networks and what it tests.
    std::string base_main_cf() const;
    // smtpd on 127.0.0.1:smtp_port, then the services Postfix needs, none
    // chrooted (the test's files are not copied into a chroot).
    static std::string master_cf(int smtp_port);
    void write_config(const std::string& main_cf, const std::string& master_cf) const;

    // `postfix start`, then wait until smtpd accepts on smtp_port.
    void start(int smtp_port);
    // `postfix stop` only signals the master: wait until it has gone, so the
    // temp dir is not removed under a running Postfix (SIGKILL after 15 s).
    void stop();
    std::string maillog() const { return read_file(dir_.file("maillog")); }

private:
    const TempDir& dir_;
    bool running_ = false;
};

}  // namespace testsupport
