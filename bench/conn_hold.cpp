// conn-hold: fill a server's connection table with idle connections from one
// address, then measure how fast a new client is answered.
//
//   conn-hold ADDR [--connections N] [--processes P] [--protocol policy|lmtp]
//             [--probes K] [--probe-timeout-ms MS]
//
// P child processes (default: enough for N with each one's file limit, at
// least 1) each open their share of N connections and send nothing (a policy
// client between requests, an LMTP client that reads no greeting): idle, as a
// local attacker would hold them. A connection the server closes is not
// reopened. Once every child has opened its share, the parent makes K probes
// one after the other, each a new connection: policy sends one request and
// waits for action=, LMTP waits for the 220 greeting. Printed: how many held
// connections the server closed, how many probes were answered, the first
// probe's time from connect to the answer (it waits behind the connections
// still in the listen queue), and the median and max of the others.
//
// Raw sockets, no libraries, like policy-load: it measures the server.
#include <sys/resource.h>
#include <sys/wait.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_net.h"

namespace {

using Clock = std::chrono::steady_clock;

int raise_nofile() {
    rlimit r{};
    getrlimit(RLIMIT_NOFILE, &r);
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
    getrlimit(RLIMIT_NOFILE, &r);
    return static_cast<int>(std::min<rlim_t>(r.rlim_cur, 1 << 20));
}

int connect_to(const bench::Endpoint& ep) {
    int fd = ::socket(ep.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// Count held connections the server has closed (readable with EOF or error).
int count_closed(const std::vector<int>& fds) {
    std::vector<pollfd> p;
    for (int fd : fds) p.push_back({fd, POLLIN, 0});
    ::poll(p.data(), p.size(), 0);
    int closed = 0;
    for (auto& x : p) {
        if (!(x.revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char b[512];
        ssize_t n = ::recv(x.fd, b, sizeof b, MSG_DONTWAIT);
        // LMTP greets (and may send 421 then close): data then EOF.
        if (n == 0 || (n < 0 && errno != EAGAIN)) ++closed;
        else if (n > 0 && ::recv(x.fd, b, sizeof b, MSG_DONTWAIT) == 0) ++closed;
    }
    return closed;
}

// One probe: connect, ask, wait for the answer. Returns ms or -1 (refused,
// reset or timed out); *what gets the first line seen.
double probe(const bench::Endpoint& ep, bool lmtp, int timeout_ms, std::string* what) {
    auto start = Clock::now();
    int fd = connect_to(ep);
    if (fd < 0) {
        *what = "connect: " + std::string(std::strerror(errno));
        return -1;
    }
    if (!lmtp) {
        std::string req =
            "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
            "client_address=192.0.2.1\nclient_name=probe.example\nhelo_name=probe.example\n"
            "sender=probe@example.com\nrecipient=user@example.org\ninstance=probe\n\n";
        if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
            *what = "send: " + std::string(std::strerror(errno));
            ::close(fd);
            return -1;
        }
    }
    std::string got;
    while (got.find('\n') == std::string::npos) {
        int left = timeout_ms - static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                     Clock::now() - start).count());
        pollfd p{fd, POLLIN, 0};
        if (left <= 0 || ::poll(&p, 1, left) <= 0) {
            *what = "timeout";
            ::close(fd);
            return -1;
        }
        char b[512];
        ssize_t n = ::recv(fd, b, sizeof b, 0);
        if (n <= 0) {
            *what = n == 0 ? "closed" : std::string(std::strerror(errno));
            ::close(fd);
            return -1;
        }
        got.append(b, static_cast<std::size_t>(n));
    }
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    ::close(fd);
    *what = got.substr(0, got.find('\n'));
    bool ok = lmtp ? what->starts_with("220") : what->starts_with("action=");
    return ok ? ms : -1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: conn-hold ADDR [--connections N] [--processes P] "
                             "[--protocol policy|lmtp] [--probes K] [--probe-timeout-ms MS]\n");
        return 2;
    }
    std::string error;
    auto ep = bench::parse_endpoint(argv[1], &error);
    if (!ep) {
        std::fprintf(stderr, "conn-hold: %s\n", error.c_str());
        return 2;
    }
    int total = 5000, processes = 0, probes = 20, probe_timeout = 5000;
    bool lmtp = false;
    for (int i = 2; i + 1 < argc; i += 2) {
        std::string k = argv[i], v = argv[i + 1];
        if (k == "--connections") total = std::atoi(v.c_str());
        else if (k == "--processes") processes = std::atoi(v.c_str());
        else if (k == "--probes") probes = std::atoi(v.c_str());
        else if (k == "--probe-timeout-ms") probe_timeout = std::atoi(v.c_str());
        else if (k == "--protocol") lmtp = v == "lmtp";
        else {
            std::fprintf(stderr, "conn-hold: unknown option %s\n", k.c_str());
            return 2;
        }
    }
    int per_limit = raise_nofile() - 16;
    if (processes <= 0) processes = std::max(1, (total + per_limit - 1) / per_limit);
    int share = (total + processes - 1) / processes;

    // Each child reports "opened closed\n" on its pipe once its share is open,
    // then holds until the parent closes the pipe's other end.
    std::vector<int> report, hold;
    std::vector<pid_t> children;
    for (int p = 0; p < processes; ++p) {
        int up[2], down[2];
        if (::pipe(up) != 0 || ::pipe(down) != 0) return 1;
        pid_t pid = ::fork();
        if (pid == 0) {
            ::close(up[0]);
            ::close(down[1]);
            std::vector<int> fds;
            int n = std::min(share, total - p * share);
            for (int i = 0; i < n; ++i) {
                int fd = connect_to(*ep);
                if (fd >= 0) fds.push_back(fd);
            }
            std::string line = std::to_string(fds.size()) + " " + std::to_string(count_closed(fds)) + "\n";
            (void)!::write(up[1], line.data(), line.size());
            char c;
            (void)!::read(down[0], &c, 1);  // EOF: the parent is done
            line = std::to_string(count_closed(fds)) + "\n";
            (void)!::write(up[1], line.data(), line.size());
            _exit(0);
        }
        ::close(up[1]);
        ::close(down[0]);
        report.push_back(up[0]);
        hold.push_back(down[1]);
        children.push_back(pid);
    }
    long opened = 0;
    for (int fd : report) {
        char b[64] = {};
        ssize_t n = ::read(fd, b, sizeof b - 1);
        if (n > 0) opened += std::atol(b);
    }
    std::vector<double> times;
    int failed = 0;
    std::string last_failure;
    double first = -1;
    for (int i = 0; i < probes; ++i) {
        std::string what;
        double ms = probe(*ep, lmtp, probe_timeout, &what);
        if (i == 0) first = ms;
        if (ms < 0) {
            ++failed;
            last_failure = what;
        } else if (i > 0) {
            times.push_back(ms);
        }
    }
    for (int fd : hold) ::close(fd);
    long closed = 0;
    for (int fd : report) {
        char b[64] = {};
        ssize_t n = ::read(fd, b, sizeof b - 1);
        if (n > 0) closed += std::atol(b);
    }
    for (pid_t pid : children) ::waitpid(pid, nullptr, 0);
    std::sort(times.begin(), times.end());
    std::printf("held: %ld opened by %d process(es), %ld closed by the server before the end\n",
                opened, processes, closed);
    std::printf("probes: %d answered, %d failed%s%s\n",
                static_cast<int>(times.size()) + (first >= 0 ? 1 : 0), failed,
                failed ? " (last: " : "", failed ? (last_failure + ")").c_str() : "");
    // The first probe queues behind the held connections the server has
    // yet to accept; the others see the table full and settled.
    if (first >= 0) std::printf("first probe ms: %.3f (behind the flood's accept backlog)\n", first);
    if (!times.empty())
        std::printf("later probes ms: median %.3f max %.3f\n", times[times.size() / 2], times.back());
    return 0;
}
