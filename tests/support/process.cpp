#include "support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace testsupport {

using namespace std::chrono;

std::string build_dir() { return MAILPOLICY_BUILD_DIR; }
std::string source_dir() { return MAILPOLICY_SOURCE_DIR; }

TempDir::TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mptest.XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

void TempDir::write(const std::string& name, const std::string& content) const {
    std::ofstream out(file(name), std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + file(name));
}

int free_port() {
    // The kernel may hand the same ephemeral port to two binds in a row once the
    // first is released; a fixture that asks for several ports (a cluster's node
    // and bus ports) must never get one twice, so this process remembers them.
    static std::mutex mutex;
    static std::set<int> given;
    std::lock_guard lock(mutex);
    for (int attempt = 0; attempt < 100; ++attempt) {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa.sin_port = 0;
        if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
            ::close(fd);
            throw std::runtime_error("bind failed");
        }
        socklen_t len = sizeof sa;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
        ::close(fd);
        int port = ntohs(sa.sin_port);
        if (given.insert(port).second) return port;
    }
    throw std::runtime_error("no fresh free port after 100 attempts");
}

namespace {

bool try_connect_tcp(const std::string& host, int port) {
    int fd = ::socket(host.find(':') != std::string::npos ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    bool ok = false;
    if (host.find(':') != std::string::npos) {
        sockaddr_in6 sa{};
        sa.sin6_family = AF_INET6;
        sa.sin6_port = htons(port);
        inet_pton(AF_INET6, host.c_str(), &sa.sin6_addr);
        ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    } else {
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(port);
        inet_pton(AF_INET, host.c_str(), &sa.sin_addr);
        ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    }
    ::close(fd);
    return ok;
}

bool try_connect_unix(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    ::close(fd);
    return ok;
}

template <typename F>
void poll_until(F&& ready, milliseconds timeout, const std::string& what) {
    auto end = steady_clock::now() + timeout;
    auto pause = milliseconds(1);
    while (!ready()) {
        if (steady_clock::now() > end) throw std::runtime_error("timed out waiting for " + what);
        std::this_thread::sleep_for(pause);  // polling interval, not synchronisation
        pause = std::min(pause * 2, milliseconds(50));
    }
}

}  // namespace

void wait_for_tcp(const std::string& host, int port, milliseconds timeout) {
    poll_until([&] { return try_connect_tcp(host, port); }, timeout,
               host + ":" + std::to_string(port));
}

void wait_for_unix(const std::string& path, milliseconds timeout) {
    poll_until([&] { return try_connect_unix(path); }, timeout, path);
}

Process::Process(std::vector<std::string> argv, const std::string& log_path,
                 std::vector<std::string> extra_env) {
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        ::setpgid(0, 0);
        if (!log_path.empty()) {
            int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                ::dup2(fd, 1);
                ::dup2(fd, 2);
                ::close(fd);
            }
        }
        int devnull = ::open("/dev/null", O_RDONLY);
        if (devnull >= 0) ::dup2(devnull, 0);
        for (auto& e : extra_env) ::putenv(e.data());
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
        ::_exit(127);
    }
}

Process::~Process() {
    if (pid_ > 0 && status_ < 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
}

Process::Process(Process&& o) noexcept : pid_(o.pid_), status_(o.status_) { o.pid_ = -1; }

Process& Process::operator=(Process&& o) noexcept {
    if (this != &o) {
        if (pid_ > 0 && status_ < 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        pid_ = o.pid_;
        status_ = o.status_;
        o.pid_ = -1;
    }
    return *this;
}

bool Process::running() {
    if (pid_ <= 0 || status_ >= 0) return false;
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
        status_ = st;
        return false;
    }
    return true;
}

void Process::signal(int sig) const {
    if (pid_ > 0 && status_ < 0) ::kill(pid_, sig);
}

int Process::wait(milliseconds timeout) {
    if (pid_ <= 0) return -1;
    if (status_ >= 0) return status_;
    auto end = steady_clock::now() + timeout;
    auto pause = milliseconds(1);
    while (true) {
        int st = 0;
        pid_t r = ::waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            status_ = st;
            return st;
        }
        if (steady_clock::now() > end) return -1;
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, milliseconds(20));
    }
}

int Process::stop(milliseconds timeout) {
    if (pid_ <= 0) return -1;
    if (status_ >= 0) return status_;
    ::kill(pid_, SIGTERM);
    int st = wait(timeout);
    if (st < 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &st, 0);
        status_ = st;
    }
    return status_;
}

void Process::kill9() {
    if (pid_ > 0 && status_ < 0) {
        ::kill(pid_, SIGKILL);
        int st = 0;
        ::waitpid(pid_, &st, 0);
        status_ = st;
    }
}

RunResult run(const std::vector<std::string>& argv, const std::string& stdin_data,
              milliseconds timeout) {
    int in_pipe[2], out_pipe[2];
    if (::pipe(in_pipe) != 0 || ::pipe(out_pipe) != 0) throw std::runtime_error("pipe");
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(in_pipe[0], 0);
        ::dup2(out_pipe[1], 1);
        ::dup2(out_pipe[1], 2);
        ::close(in_pipe[1]);
        ::close(out_pipe[0]);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    ::close(in_pipe[0]);
    ::close(out_pipe[1]);
    // Feed stdin and read output concurrently so neither side blocks on a full pipe.
    std::thread feeder([fd = in_pipe[1], &stdin_data] {
        ::signal(SIGPIPE, SIG_IGN);
        std::size_t off = 0;
        while (off < stdin_data.size()) {
            ssize_t n = ::write(fd, stdin_data.data() + off, stdin_data.size() - off);
            if (n <= 0) break;
            off += static_cast<std::size_t>(n);
        }
        ::close(fd);
    });
    std::string output;
    char buf[4096];
    auto end = steady_clock::now() + timeout;
    bool timed_out = false;
    while (true) {
        pollfd p{out_pipe[0], POLLIN, 0};
        auto left = duration_cast<milliseconds>(end - steady_clock::now()).count();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
        ssize_t n = ::read(out_pipe[0], buf, sizeof buf);
        if (n <= 0) break;
        output.append(buf, static_cast<std::size_t>(n));
    }
    if (timed_out) ::kill(pid, SIGKILL);
    ::close(out_pipe[0]);
    int st = 0;
    ::waitpid(pid, &st, 0);
    feeder.join();
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    if (timed_out) code = -1;
    return {code, output};
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace testsupport
