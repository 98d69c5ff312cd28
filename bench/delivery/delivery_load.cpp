// Load generator for the Maildir delivery benchmark (bench/delivery/run.sh).
// No project code: it measures it.
//
//   delivery-load lmtp|smtp HOST:PORT CONNS MESSAGES SIZE MAILBOXES DOMAIN [PREFIX]
//       MESSAGES messages of SIZE bytes over CONNS persistent connections,
//       MAIL/RCPT/DATA pipelined (RFC 2920), recipient
//       PREFIXmb<i % MAILBOXES>@DOMAIN;
//       prints "ok=N failed=N seconds=S rate=R" (rate in messages/s).
//   delivery-load exec CONCURRENCY MESSAGES SIZE MAILBOXES -- PROGRAM ARGS...
//       runs PROGRAM once per message, CONCURRENCY at a time, with the message
//       on standard input; "%m" in ARGS becomes mb<i % MAILBOXES>.
//
// Bounded: every run stops after MESSAGES; reads time out after 60 s.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

std::string make_message(std::size_t size) {
    std::string m = "From: bench@bench.example\r\nTo: mailbox@bench.example\r\n"
                    "Subject: delivery benchmark\r\nMessage-ID: <bench@bench.example>\r\n\r\n";
    std::size_t line = 0;
    while (m.size() + 2 < size) {
        std::string l = "line " + std::to_string(line++) + " ";
        while (l.size() < 76) l += 'x';
        if (m.size() + l.size() + 2 > size) l.resize(size - m.size() - 2);
        m += l + "\r\n";
    }
    return m;
}

class Conn {
public:
    Conn(const std::string& host, int port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(static_cast<uint16_t>(port));
        ::inet_pton(AF_INET, host.c_str(), &sa.sin_addr);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
            std::perror("connect");
            std::exit(1);
        }
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        timeval tv{60, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~Conn() { ::close(fd_); }
    bool send(const std::string& s) {
        std::size_t off = 0;
        while (off < s.size()) {
            ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
            if (n <= 0) return false;
            off += static_cast<std::size_t>(n);
        }
        return true;
    }
    // The last line of one reply; "" on error.
    std::string reply() {
        while (true) {
            auto nl = buf_.find("\r\n");
            if (nl != std::string::npos) {
                std::string l = buf_.substr(0, nl);
                buf_.erase(0, nl + 2);
                if (l.size() >= 4 && l[3] == '-') continue;
                return l;
            }
            char tmp[4096];
            ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
            if (n <= 0) return "";
            buf_.append(tmp, static_cast<std::size_t>(n));
        }
    }

private:
    int fd_;
    std::string buf_;
};

int run_protocol(bool lmtp, const std::string& where, int conns, long messages, std::size_t size,
                 long mailboxes, const std::string& domain, const std::string& prefix) {
    auto colon = where.rfind(':');
    std::string host = where.substr(0, colon);
    int port = std::atoi(where.c_str() + colon + 1);
    std::string data = make_message(size) + ".\r\n";
    std::atomic<long> next{0}, ok{0}, failed{0};
    auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < conns; ++t)
        threads.emplace_back([&] {
            Conn c(host, port);
            c.reply();
            c.send(std::string(lmtp ? "LHLO" : "EHLO") + " load.bench.example\r\n");
            c.reply();
            while (true) {
                long i = next++;
                if (i >= messages) break;
                std::string rcpt = prefix + "mb" + std::to_string(i % mailboxes) + "@" + domain;
                if (!c.send("MAIL FROM:<bench@bench.example>\r\nRCPT TO:<" + rcpt + ">\r\nDATA\r\n")) break;
                std::string a = c.reply(), b = c.reply(), d = c.reply();
                if (!d.starts_with("354")) {
                    ++failed;
                    if (!c.send("RSET\r\n") || c.reply().empty()) break;
                    continue;
                }
                if (!c.send(data)) break;
                std::string r = c.reply();
                if (r.starts_with("250")) ++ok;
                else {
                    ++failed;
                    if (failed < 5) std::fprintf(stderr, "delivery-load: %s\n", r.c_str());
                }
            }
            c.send("QUIT\r\n");
        });
    for (auto& t : threads) t.join();
    double secs = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("ok=%ld failed=%ld seconds=%.3f rate=%.1f\n", ok.load(), failed.load(), secs,
                static_cast<double>(ok.load()) / secs);
    return failed.load() == 0 ? 0 : 1;
}

int run_exec(int concurrency, long messages, std::size_t size, long mailboxes, char** argv) {
    std::string message = make_message(size);
    // LF line endings, as Postfix hands a message to a delivery command.
    std::string lf;
    for (std::size_t i = 0; i < message.size(); ++i)
        if (!(message[i] == '\r' && i + 1 < message.size() && message[i + 1] == '\n')) lf += message[i];
    char path[] = "/tmp/delivery-load.XXXXXX";
    int fd = ::mkstemp(path);
    if (fd < 0 || ::write(fd, lf.data(), lf.size()) != static_cast<ssize_t>(lf.size())) return 1;
    ::close(fd);
    long started = 0, ok = 0, failed = 0;
    int running = 0;
    auto start = Clock::now();
    auto reap = [&] {
        int st = 0;
        if (::wait(&st) > 0) {
            --running;
            if (WIFEXITED(st) && WEXITSTATUS(st) == 0) ++ok;
            else if (++failed < 5) std::fprintf(stderr, "delivery-load: child status %d\n", st);
        }
    };
    while (started < messages) {
        while (running >= concurrency) reap();
        std::string mb = "mb" + std::to_string(started % mailboxes);
        std::vector<std::string> args;
        for (char** a = argv; *a; ++a) {
            std::string s = *a;
            for (auto p = s.find("%m"); p != std::string::npos; p = s.find("%m")) s.replace(p, 2, mb);
            args.push_back(s);
        }
        std::vector<char*> cargs;
        for (auto& s : args) cargs.push_back(s.data());
        cargs.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, path, O_RDONLY, 0);
        pid_t pid;
        if (posix_spawn(&pid, cargs[0], &fa, nullptr, cargs.data(), environ) != 0) {
            std::perror("posix_spawn");
            return 1;
        }
        posix_spawn_file_actions_destroy(&fa);
        ++running;
        ++started;
    }
    while (running > 0) reap();
    double secs = std::chrono::duration<double>(Clock::now() - start).count();
    ::unlink(path);
    std::printf("ok=%ld failed=%ld seconds=%.3f rate=%.1f\n", ok, failed, secs,
                static_cast<double>(ok) / secs);
    return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 8 && (std::strcmp(argv[1], "lmtp") == 0 || std::strcmp(argv[1], "smtp") == 0))
        return run_protocol(argv[1][0] == 'l', argv[2], std::atoi(argv[3]), std::atol(argv[4]),
                            std::strtoul(argv[5], nullptr, 10), std::atol(argv[6]), argv[7], argc > 8 ? argv[8] : "");
    if (argc >= 8 && std::strcmp(argv[1], "exec") == 0 && std::strcmp(argv[6], "--") == 0)
        return run_exec(std::atoi(argv[2]), std::atol(argv[3]), std::strtoul(argv[4], nullptr, 10),
                        std::atol(argv[5]), argv + 7);
    std::fprintf(stderr,
                 "usage: delivery-load lmtp|smtp HOST:PORT CONNS MESSAGES SIZE MAILBOXES DOMAIN [PREFIX]\n"
                 "       delivery-load exec CONCURRENCY MESSAGES SIZE MAILBOXES -- PROGRAM ARGS...\n");
    return 2;
}
