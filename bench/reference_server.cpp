// reference_server.cpp: policy-reference-server, a do-nothing Postfix policy
// server used as the ceiling in benchmarks.
//
//   policy-reference-server --listen ADDR [--listen ADDR]...
//
// Answers every request (attribute lines ended by an empty line) with
// "action=DUNNO\n\n". It is deliberately as cheap as possible: one thread,
// level-triggered epoll, one read and one write per batch of requests, and
// no per-connection buffer at all, because the only state a do-nothing
// server needs is "was the last byte a newline". It does not enforce the
// protocol limits (line length, attribute count) since it never stores a
// request. SIGTERM or SIGINT stops it with exit status 0.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <sys/epoll.h>
#include <sys/stat.h>

#include "bench_net.h"

namespace {

constexpr std::string_view kReply = "action=DUNNO\n\n";
constexpr size_t kReplyRepeat = 4096;

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

struct Conn {
  int fd = -1;
  bool at_line_start = true;  // an LF here would be the empty line
  bool want_out = false;      // EPOLLOUT registered instead of EPOLLIN
  uint64_t pending = 0;       // reply bytes owed to the client
};

// Replies back to back, so any number of owed bytes can be written from one
// place whatever the offset inside a reply.
std::string g_replies;

// Counts requests completed by DATA, carrying the line-start state across
// reads.
uint64_t count_requests(Conn& c, const char* p, size_t n) {
  uint64_t done = 0;
  const char* end = p + n;
  while (p < end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    if (!nl) {
      c.at_line_start = false;
      break;
    }
    if (nl == p && c.at_line_start) ++done;
    c.at_line_start = true;
    p = nl + 1;
  }
  return done;
}

// Writes what is owed; returns false if the connection must be closed.
bool flush(Conn& c) {
  while (c.pending > 0) {
    size_t offset = (kReply.size() - c.pending % kReply.size()) % kReply.size();
    size_t chunk = g_replies.size() - offset;
    if (chunk > c.pending) chunk = c.pending;
    ssize_t w = send(c.fd, g_replies.data() + offset, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    c.pending -= static_cast<uint64_t>(w);
  }
  return true;
}

void usage(FILE* out) {
  std::fprintf(out,
               "usage: policy-reference-server --listen ADDR [--listen ADDR]...\n"
               "  ADDR: inet:HOST:PORT, HOST:PORT, inet:[::1]:PORT or unix:/path (PORT 0 = any)\n"
               "Answers every policy request with action=DUNNO.\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<bench::Endpoint> endpoints;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    }
    std::string_view value;
    if (arg.starts_with("--listen=")) {
      value = arg.substr(9);
    } else if (arg == "--listen" && i + 1 < argc) {
      value = argv[++i];
    } else {
      std::fprintf(stderr, "policy-reference-server: unknown or incomplete option %s\n", argv[i]);
      usage(stderr);
      return 2;
    }
    std::string err;
    auto ep = bench::parse_endpoint(value, &err);
    if (!ep) {
      std::fprintf(stderr, "policy-reference-server: --listen %.*s: %s\n", int(value.size()), value.data(),
                   err.c_str());
      return 2;
    }
    endpoints.push_back(*ep);
  }
  if (endpoints.empty()) {
    usage(stderr);
    return 2;
  }

  for (size_t i = 0; i < kReplyRepeat; ++i) g_replies += kReply;

  struct sigaction sa{};
  sa.sa_handler = on_signal;  // no SA_RESTART: epoll_wait must return EINTR
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    std::perror("policy-reference-server: epoll_create1");
    return 1;
  }
  // Listeners are tagged with the high bit of u64 plus their index;
  // connections store their Conn*, whose high bit is never set in user space.
  std::vector<int> listeners;
  for (const auto& e : endpoints) {
    int fd = socket(e.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      std::perror("policy-reference-server: socket");
      return 1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (e.family == AF_UNIX) {
      // Replace a stale socket from an earlier run, never a regular file.
      const char* path = reinterpret_cast<const sockaddr_un*>(&e.addr)->sun_path;
      struct stat st{};
      if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path);
    }
    if (bind(fd, reinterpret_cast<const sockaddr*>(&e.addr), e.len) != 0 || listen(fd, 4096) != 0) {
      std::fprintf(stderr, "policy-reference-server: cannot listen on %s: %s\n", e.text.c_str(),
                   std::strerror(errno));
      return 1;
    }
    if (e.family == AF_UNIX)
      std::fprintf(stderr, "policy-reference-server: listening on %s\n", e.text.c_str());
    else
      std::fprintf(stderr, "policy-reference-server: listening on %s (port %d)\n", e.text.c_str(),
                   bench::local_port(fd));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t{1} << 63) | listeners.size();
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    listeners.push_back(fd);
  }

  static char buf[64 * 1024];
  epoll_event events[256];
  while (!g_stop) {
    int n = epoll_wait(ep, events, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::perror("policy-reference-server: epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      uint64_t tag = events[i].data.u64;
      if (tag >> 63) {
        int lfd = listeners[tag & 0xffffffff];
        for (;;) {
          int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;  // EAGAIN, or EMFILE etc.: retried on the next event
          sockaddr_storage ss{};
          socklen_t len = sizeof ss;
          getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
          bench::set_nodelay(fd, ss.ss_family);
          auto* c = new Conn{fd};
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.ptr = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
        continue;
      }
      auto* c = static_cast<Conn*>(events[i].data.ptr);
      bool ok = true;
      if (c->want_out) {
        ok = flush(*c);
      } else {
        ssize_t r = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0) {
          c->pending += count_requests(*c, buf, static_cast<size_t>(r)) * kReply.size();
          ok = flush(*c);
        } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
          ok = false;
        }
      }
      if (!ok) {
        close(c->fd);  // also removes it from the epoll set
        delete c;
        continue;
      }
      // Back-pressure: stop reading while replies are owed.
      bool want_out = c->pending > 0;
      if (want_out != c->want_out) {
        c->want_out = want_out;
        epoll_event ev{};
        ev.events = want_out ? EPOLLOUT : EPOLLIN;
        ev.data.ptr = c;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
      }
    }
  }
  for (const auto& e : endpoints)
    if (e.family == AF_UNIX) unlink(reinterpret_cast<const sockaddr_un*>(&e.addr)->sun_path);
  return 0;
}
