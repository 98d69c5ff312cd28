// The spawn helper; see spawn.h.
#include "spawn.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <system_error>

#include "daemon/log.h"

namespace mta {

namespace {

// Settings travel over the pipe as lines: name, user, max, seconds, argv
// joined by NUL... kept simple: one service per line, fields by TAB, argv
// words by SOH (neither can occur in master.cf words).
std::string encode(const std::vector<SpawnService>& services) {
    std::string out;
    for (const auto& s : services) {
        out += s.name + "\t" + s.user + "\t" + std::to_string(s.max_processes) + "\t" +
               std::to_string(s.time_limit.count()) + "\t";
        for (std::size_t i = 0; i < s.argv.size(); ++i) out += (i ? "\x01" : "") + s.argv[i];
        out += "\n";
    }
    out += "\n";
    return out;
}

struct Running {
    SpawnService settings;
    int listener = -1;
    std::size_t processes = 0;
};

int bind_unix(const std::string& path, uid_t owner, gid_t group) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
    struct sockaddr_un sa {};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path)
        throw std::system_error(ENAMETOOLONG, std::generic_category(), path);
    std::strcpy(sa.sun_path, path.c_str());
    ::unlink(path.c_str());
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 128) != 0)
        throw std::system_error(errno, std::generic_category(), "bind " + path);
    // Reachable by mail_owner only: the private/ directory is 0700.
    if (::chown(path.c_str(), owner, group) != 0) {}
    ::chmod(path.c_str(), 0660);
    return fd;
}

[[noreturn]] void run_command(const SpawnService& s, int conn) {
    struct passwd* pw = ::getpwnam(s.user.c_str());
    if (!pw) _exit(75);
    ::dup2(conn, 0);
    ::dup2(conn, 1);
    if (conn > 1) ::close(conn);
    if (::setgroups(0, nullptr) != 0 || ::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0) _exit(75);
    if (::getuid() == 0 && pw->pw_uid != 0) _exit(75);
    ::signal(SIGPIPE, SIG_DFL);
    ::signal(SIGCHLD, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::alarm(static_cast<unsigned>(s.time_limit.count()));  // NAME_time_limit
    std::vector<char*> argv;
    for (const auto& a : s.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::string home = std::string("HOME=") + pw->pw_dir;
    std::string user = std::string("USER=") + pw->pw_name;
    char* envp[] = {const_cast<char*>("PATH=/usr/bin:/bin:/usr/sbin:/sbin"), home.data(), user.data(),
                    nullptr};
    ::execve(argv[0], argv.data(), envp);
    _exit(127);
}

// The helper's loop: root, single-threaded, poll(2) only.
[[noreturn]] void helper_main(int control, const std::string& private_dir, uid_t owner, gid_t group,
                              std::vector<SpawnService> initial) {
    ::signal(SIGHUP, SIG_IGN);
    ::signal(SIGTERM, SIG_IGN);
    ::signal(SIGINT, SIG_IGN);
    std::map<std::string, Running> running;
    std::map<pid_t, std::string> children;
    auto apply = [&](const std::vector<SpawnService>& services) {
        for (const auto& s : services) {
            auto& r = running[s.name];
            r.settings = s;
            if (r.listener < 0) {
                try {
                    r.listener = bind_unix(private_dir + "/" + s.name, owner, group);
                } catch (const std::exception& e) {
                    proto::log::error(std::string("spawn: ") + e.what());
                }
            }
        }
    };
    apply(initial);
    std::string pending;
    while (true) {
        std::vector<pollfd> fds{{control, POLLIN, 0}};
        std::vector<std::string> names;
        for (auto& [name, r] : running) {
            // At maxproc the listener is not polled: connections wait in the
            // backlog, as with master(8)'s process limit.
            if (r.listener >= 0 && r.processes < r.settings.max_processes) {
                fds.push_back({r.listener, POLLIN, 0});
                names.push_back(name);
            }
        }
        int n = ::poll(fds.data(), fds.size(), 500);
        while (true) {
            int status = 0;
            pid_t pid = ::waitpid(-1, &status, WNOHANG);
            if (pid <= 0) break;
            if (auto it = children.find(pid); it != children.end()) {
                if (auto r = running.find(it->second); r != running.end() && r->second.processes) --r->second.processes;
                children.erase(it);
            }
        }
        if (n <= 0) continue;
        if (fds[0].revents) {
            char buf[4096];
            ssize_t got = ::read(control, buf, sizeof buf);
            if (got <= 0) {
                for (auto& [name, r] : running) ::unlink((private_dir + "/" + name).c_str());
                _exit(0);  // mta-core is gone
            }
            pending.append(buf, static_cast<std::size_t>(got));
            auto end = pending.find("\n\n");
            if (end != std::string::npos) {
                std::vector<SpawnService> next;
                std::size_t pos = 0;
                while (pos < end + 1) {
                    auto eol = pending.find('\n', pos);
                    std::string line = pending.substr(pos, eol - pos);
                    pos = eol + 1;
                    if (line.empty()) continue;
                    std::vector<std::string> f;
                    std::size_t p = 0;
                    for (int k = 0; k < 4; ++k) {
                        auto tab = line.find('\t', p);
                        f.push_back(line.substr(p, tab - p));
                        p = tab + 1;
                    }
                    SpawnService s;
                    s.name = f[0];
                    s.user = f[1];
                    s.max_processes = std::stoul(f[2]);
                    s.time_limit = std::chrono::seconds(std::stol(f[3]));
                    std::string argv = line.substr(p);
                    std::size_t q = 0;
                    while (true) {
                        auto soh = argv.find('\x01', q);
                        s.argv.push_back(argv.substr(q, soh - q));
                        if (soh == std::string::npos) break;
                        q = soh + 1;
                    }
                    next.push_back(s);
                }
                pending.erase(0, end + 2);
                apply(next);
            }
        }
        for (std::size_t i = 1; i < fds.size(); ++i) {
            if (!fds[i].revents) continue;
            auto& r = running[names[i - 1]];
            int conn = ::accept4(r.listener, nullptr, nullptr, SOCK_CLOEXEC);
            if (conn < 0) continue;
            pid_t pid = ::fork();
            if (pid == 0) {
                ::close(control);
                for (auto& [name, other] : running) ::close(other.listener);
                run_command(r.settings, conn);
            }
            ::close(conn);
            if (pid > 0) {
                ++r.processes;
                children[pid] = names[i - 1];
            }
        }
    }
}

class Supervisor final : public SpawnSupervisor {
public:
    Supervisor(int control, pid_t pid) : control_(control), pid_(pid) {}
    ~Supervisor() override { stop(); }
    void update(const std::vector<SpawnService>& services) override {
        if (control_ < 0) return;
        std::string msg = encode(services);
        if (::write(control_, msg.data(), msg.size()) < 0)
            proto::log::warning(std::string("spawn: cannot pass new settings: ") + std::strerror(errno));
    }
    void stop() override {
        if (control_ >= 0) ::close(control_);
        control_ = -1;
    }

private:
    int control_;
    pid_t pid_;
};

}  // namespace

std::unique_ptr<SpawnSupervisor> start_spawn(const std::string& queue_directory, const std::string& mail_owner,
                                             const std::vector<SpawnService>& services) {
    if (services.empty()) return nullptr;
    uid_t owner = ::geteuid();
    gid_t group = ::getegid();
    if (struct passwd* pw = ::getpwnam(mail_owner.c_str())) {
        owner = pw->pw_uid;
        group = pw->pw_gid;
    }
    std::string private_dir = queue_directory + "/private";
    ::mkdir(private_dir.c_str(), 0700);
    if (::chown(private_dir.c_str(), owner, group) != 0 && ::geteuid() == 0)
        throw std::system_error(errno, std::generic_category(), "chown " + private_dir);
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
    pid_t pid = ::fork();
    if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
    if (pid == 0) {
        ::close(pipefd[1]);
        helper_main(pipefd[0], private_dir, owner, group, services);
    }
    ::close(pipefd[0]);
    return std::make_unique<Supervisor>(pipefd[1], pid);
}

}  // namespace mta
