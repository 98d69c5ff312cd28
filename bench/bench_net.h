// bench_net.h: socket addresses and small socket helpers shared by the bench
// programs (policy-load, policy-reference-server).
//
// Addresses use Postfix notation: inet:HOST:PORT, HOST:PORT, inet:[::1]:PORT,
// [::1]:PORT or unix:/path. Header-only on purpose: the bench programs must
// build without the project's proto library, so they cannot use proto/net.
// Limits: HOST is resolved once, first address wins; unix paths longer than
// sun_path (107 bytes on Linux) are rejected.
#pragma once

#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace bench {

struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_UNSPEC;
  std::string text;  // canonical spelling, for reports
};

// Parses ADDR; on failure returns nullopt and sets *error.
inline std::optional<Endpoint> parse_endpoint(std::string_view spec, std::string* error) {
  Endpoint ep;
  if (spec.starts_with("unix:")) {
    std::string_view path = spec.substr(5);
    sockaddr_un un{};
    if (path.empty() || path.size() >= sizeof un.sun_path) {
      *error = "bad unix socket path";
      return std::nullopt;
    }
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, path.data(), path.size());
    std::memcpy(&ep.addr, &un, sizeof un);
    ep.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    ep.family = AF_UNIX;
    ep.text = std::string(spec);
    return ep;
  }
  if (spec.starts_with("inet:")) spec.remove_prefix(5);
  std::string_view host, port;
  if (spec.starts_with("[")) {
    auto close = spec.find(']');
    if (close == std::string_view::npos || close + 1 >= spec.size() || spec[close + 1] != ':') {
      *error = "expected [IPV6]:PORT";
      return std::nullopt;
    }
    host = spec.substr(1, close - 1);
    port = spec.substr(close + 2);
  } else {
    auto colon = spec.rfind(':');
    if (colon == std::string_view::npos) {
      *error = "expected HOST:PORT";
      return std::nullopt;
    }
    host = spec.substr(0, colon);
    port = spec.substr(colon + 1);
  }
  unsigned port_num = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_num);
  if (ec != std::errc() || end != port.data() + port.size() || port_num > 65535) {
    *error = "bad port";
    return std::nullopt;
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string host_s(host.empty() ? "0.0.0.0" : host);
  std::string port_s(port);
  if (int rc = getaddrinfo(host_s.c_str(), port_s.c_str(), &hints, &res); rc != 0) {
    *error = std::string("cannot resolve ") + host_s + ": " + gai_strerror(rc);
    return std::nullopt;
  }
  std::memcpy(&ep.addr, res->ai_addr, res->ai_addrlen);
  ep.len = res->ai_addrlen;
  ep.family = res->ai_family;
  freeaddrinfo(res);
  ep.text = ep.family == AF_INET6 ? "inet:[" + host_s + "]:" + port_s : "inet:" + host_s + ":" + port_s;
  return ep;
}

inline bool set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

// One request in flight per connection: without NODELAY a reply could wait
// for the delayed ACK of the previous segment.
inline void set_nodelay(int fd, int family) {
  if (family == AF_INET || family == AF_INET6) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
}

// Actual local port of a listening inet socket (for --listen ...:0).
inline int local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return -1;
}

}  // namespace bench
