// Helpers for the delivery-maildir tests; see helpers.h.
#include "helpers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <dirent.h>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace dtest {

using namespace std::chrono;

LineClient::LineClient(const std::string& host, int port) : LineClient("", 0, host, port) {}

LineClient::LineClient(const std::string& local_address, int local_port, const std::string& host, int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!local_address.empty()) {
        sockaddr_in local{};
        local.sin_family = AF_INET;
        local.sin_port = htons(static_cast<uint16_t>(local_port));
        ::inet_pton(AF_INET, local_address.c_str(), &local.sin_addr);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
            ::close(fd_);
            throw std::runtime_error("bind " + local_address + ": " + std::strerror(errno));
        }
    }
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, host.c_str(), &sa.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        ::close(fd_);
        throw std::runtime_error("connect " + host + ":" + std::to_string(port) + ": " +
                                 std::strerror(errno));
    }
}

LineClient::LineClient(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        ::close(fd_);
        throw std::runtime_error("connect " + path + ": " + std::strerror(errno));
    }
}

LineClient::~LineClient() {
    if (fd_ >= 0) ::close(fd_);
}

void LineClient::send(const std::string& text) {
    std::size_t off = 0;
    while (off < text.size()) {
        ssize_t n = ::send(fd_, text.data() + off, text.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw std::runtime_error(std::string("send: ") + std::strerror(errno));
        off += static_cast<std::size_t>(n);
    }
}

bool LineClient::fill(steady_clock::time_point deadline) {
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now()).count();
    if (left <= 0) throw std::runtime_error("timed out reading; have: " + buf_);
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r == 0) throw std::runtime_error("timed out reading; have: " + buf_);
    char tmp[65536];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<std::size_t>(n));
    return true;
}

std::string LineClient::line(milliseconds timeout) {
    auto deadline = steady_clock::now() + timeout;
    while (true) {
        auto nl = buf_.find("\r\n");
        if (nl != std::string::npos) {
            std::string out = buf_.substr(0, nl);
            buf_.erase(0, nl + 2);
            return out;
        }
        if (!fill(deadline)) throw std::runtime_error("connection closed; have: " + buf_);
    }
}

std::string LineClient::reply(milliseconds timeout) {
    while (true) {
        std::string l = line(timeout);
        if (l.size() < 4 || l[3] != '-') return l;
    }
}

std::string LineClient::bytes(std::size_t n, milliseconds timeout) {
    auto deadline = steady_clock::now() + timeout;
    while (buf_.size() < n)
        if (!fill(deadline)) throw std::runtime_error("connection closed");
    std::string out = buf_.substr(0, n);
    buf_.erase(0, n);
    return out;
}

bool LineClient::closed(milliseconds timeout) {
    auto deadline = steady_clock::now() + timeout;
    try {
        while (fill(deadline)) {
        }
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

std::string crlf(const std::string& lf) {
    std::string out;
    for (char c : lf) {
        if (c == '\n') out += '\r';
        out += c;
    }
    return out;
}

std::string data_block(const std::string& m) {
    std::string out;
    bool bol = true;
    for (char c : m) {
        if (bol && c == '.') out += '.';
        out += c;
        bol = c == '\n';
    }
    if (!out.empty() && !out.ends_with("\r\n")) out += "\r\n";
    return out + ".\r\n";
}

SystemUser::SystemUser(const std::string& parent) {
    static std::atomic<int> n{0};
    name_ = "dmt" + std::to_string(::getpid()) + "x" + std::to_string(n++);
    home_ = parent + "/" + name_;
    // The user must be able to reach its home: the temp dir is 0700.
    std::filesystem::create_directories(parent);
    ::chmod(parent.c_str(), 0755);
    ::chmod(std::filesystem::path(parent).parent_path().c_str(), 0755);
    auto r = testsupport::run({"useradd", "-M", "-U", "-d", home_, "-s", "/usr/sbin/nologin", name_});
    if (r.exit_code != 0) throw std::runtime_error("useradd: " + r.output);
    // From here on a failure must not leave the user behind.
    auto fail = [&](const std::string& why) {
        testsupport::run({"userdel", name_});
        throw std::runtime_error(why);
    };
    struct passwd* pw = ::getpwnam(name_.c_str());
    if (!pw) fail("user not found after useradd");
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
    ::mkdir(home_.c_str(), 0755);
    if (::chown(home_.c_str(), uid_, gid_) != 0) fail("chown " + home_);
}

SystemUser::~SystemUser() { testsupport::run({"userdel", name_}); }

SmallFs::SmallFs(const std::string& path, std::size_t bytes) : path_(path) {
    ::mkdir(path.c_str(), 0755);
    auto r = testsupport::run(
        {"mount", "-t", "tmpfs", "-o", "size=" + std::to_string(bytes) + ",mode=0755", "tmpfs", path});
    if (r.exit_code != 0) throw std::runtime_error("mount tmpfs: " + r.output);
}

SmallFs::~SmallFs() { testsupport::run({"umount", "-l", path_}); }

BindFs::BindFs(const std::string& source, const std::string& mountpoint) : mountpoint_(mountpoint) {
    ::mkdir(mountpoint.c_str(), 0755);
    struct stat before {};
    ::stat(mountpoint.c_str(), &before);
    // In the foreground, so the test owns the process and stops it by PID.
    bindfs_ = testsupport::Process({"/usr/bin/bindfs", "-f", "--no-allow-other", source, mountpoint});
    // Mounted once the mount point is on another device.
    if (!eventually([&] {
            struct stat now {};
            return ::stat(mountpoint.c_str(), &now) == 0 && now.st_dev != before.st_dev;
        })) {
        bindfs_.stop();
        throw std::runtime_error("bindfs did not mount " + mountpoint);
    }
}

BindFs::~BindFs() {
    // Unmounting ends a foreground bindfs; stop() reaps it (or kills a stuck one).
    testsupport::run({"umount", "-l", mountpoint_});
    bindfs_.stop();
}

std::vector<std::string> files_in(const std::string& dir) {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return out;
    while (struct dirent* e = ::readdir(d)) {
        struct stat st;
        if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            out.emplace_back(e->d_name);
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

void pause_briefly() { std::this_thread::sleep_for(milliseconds(10)); }

Daemon::Daemon(const testsupport::TempDir& dir, const std::string& config_json,
               const std::string& name)
    : config_(dir.file(name + ".json")), log_(dir.file(name + ".log")), port_(testsupport::free_port()) {
    dir.write(name + ".json", config_json);
    process_ = testsupport::Process({DELIVERY_MAILDIR, "--config", config_, "--listen",
                                     "inet:127.0.0.1:" + std::to_string(port_)},
                                    log_);
    try {
        testsupport::wait_for_tcp("127.0.0.1", port_);
    } catch (const std::exception& e) {
        throw std::runtime_error(std::string(e.what()) + "\n" + log());
    }
}

Daemon::~Daemon() { process_.stop(); }

std::string Daemon::log() const { return testsupport::read_file(log_); }

testsupport::RunResult deliver(const std::vector<std::string>& args, const std::string& message,
                               const std::vector<std::string>& env) {
    std::vector<std::string> argv;
    if (!env.empty()) {
        argv.push_back("/usr/bin/env");
        argv.insert(argv.end(), env.begin(), env.end());
    }
    argv.push_back(DELIVERY_MAILDIR);
    argv.push_back("deliver");
    argv.insert(argv.end(), args.begin(), args.end());
    return testsupport::run(argv, message);
}

}  // namespace dtest
