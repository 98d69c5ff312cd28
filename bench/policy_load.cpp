// policy_load.cpp: policy-load, a load generator for the Postfix SMTP access
// policy delegation protocol (Postfix SMTPD_POLICY_README).
//
// Like Postfix's smtpd, it keeps C persistent connections with exactly one
// request in flight on each, and sends full attribute sets as Postfix 3.8
// does (every attribute present, empty when unknown). It is single-threaded
// raw epoll so that, against a do-nothing server, the server side and not
// this program is the limit: requests are formatted in place with no heap
// allocation, and latency goes into a fixed log-linear histogram.
//
// With --rate R the load is open loop: request k is due at start + k/R and
// goes out on the first idle connection at or after that moment; its latency
// counts from when it was due, so a server that falls behind the rate is
// charged for the queueing it causes (no coordinated omission). Without it,
// each connection sends its next request as soon as the last is answered.
//
// Stats cover requests sent after the warmup. A reply is read up to its
// empty line; a closed connection, a reply timeout, a reply without an
// action, extra bytes after a reply, or a failed connect is an error, and
// the connection is reopened. Limits: a reply may be at most 64 KiB.
// With no reply at all for the reply timeout, the run gives up.
// Exit status: 0 if at least one request was answered and the run did not
// give up, 1 otherwise, 2 on a usage error.
#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/epoll.h>

#include "bench_net.h"

namespace {

constexpr size_t kMaxRequest = 2048;       // the longest generated request is ~1 KiB
constexpr size_t kMaxReply = 64 * 1024;    // same bound as a request in our parser
constexpr uint64_t kRetryDelayNs = 100'000'000;  // after a failed connect
constexpr uint64_t kTickNs = 100'000'000;        // timeout scan period

enum class Profile { kRcpt, kEom, kConnect };

struct Options {
  std::string connect = "inet:127.0.0.1:10023";
  uint64_t connections = 1;
  double duration = 0;  // seconds; 0 with requests == 0 means 10
  uint64_t requests = 0;
  double warmup = 1;
  double timeout = 10;
  Profile profile = Profile::kRcpt;
  uint64_t clients = 1000;
  uint64_t senders = 1000;
  uint64_t recipients = 1000;
  uint64_t sasl_users = 0;
  uint64_t sender_domains = 100;
  uint64_t ipv6_percent = 0;
  bool unique = false;
  uint64_t seed = 0;
  bool seed_given = false;
  bool json = false;
  uint64_t dump = 0;  // print this many requests and exit
  double rate = 0;    // requests per second offered; 0 = closed loop
};

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000u + uint64_t(ts.tv_nsec);
}

uint64_t mix64(uint64_t x) {  // splitmix64 finalizer: a cheap, good hash
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Log-linear histogram of nanoseconds: exact below 64 ns, then 32 buckets per
// power of two (at most 3% error), so recording is a few instructions.
class Histogram {
 public:
  void record(uint64_t v) {
    ++buckets_[index(v)];
    ++count_;
    sum_ += v;
    max_ = std::max(max_, v);
  }
  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? double(sum_) / double(count_) : 0; }
  // Midpoint of the bucket holding the q-quantile.
  uint64_t quantile(double q) const {
    if (count_ == 0) return 0;
    uint64_t rank = std::max<uint64_t>(1, uint64_t(q * double(count_) + 0.999999));
    uint64_t seen = 0;
    for (size_t i = 0; i < buckets_.size(); ++i) {
      seen += buckets_[i];
      if (seen >= rank) return std::min(midpoint(i), max_);
    }
    return max_;
  }

 private:
  static size_t index(uint64_t v) {
    if (v < 64) return size_t(v);
    unsigned e = 63u - unsigned(std::countl_zero(v));  // >= 6
    return size_t(e - 5) * 32 + size_t(v >> (e - 5));  // v >> (e-5) is in [32, 64)
  }
  static uint64_t midpoint(size_t i) {
    if (i < 64) return i;
    unsigned e = unsigned(i / 32) + 4;
    uint64_t m = i - size_t(e - 5) * 32;
    uint64_t width = uint64_t{1} << (e - 5);
    return (m << (e - 5)) + width / 2;
  }
  std::array<uint64_t, 64 * 32> buckets_{};
  uint64_t count_ = 0, sum_ = 0, max_ = 0;
};

// Appends to a fixed buffer; callers guarantee room (kMaxRequest).
struct Writer {
  char* p;
  void str(std::string_view s) {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  }
  void num(uint64_t v) { p = std::to_chars(p, p + 20, v).ptr; }
  void hex(uint64_t v) { p = std::to_chars(p, p + 16, v, 16).ptr; }
  void fixed_hex(uint64_t v, int digits) {  // upper case, zero padded
    static constexpr char kDigits[] = "0123456789ABCDEF";
    for (int i = digits - 1; i >= 0; --i) p[i] = kDigits[(v >> (4 * (digits - 1 - i))) & 15];
    p += digits;
  }
};

// Builds Postfix-like requests from a seeded generator over the key space.
class RequestGen {
 public:
  explicit RequestGen(const Options& o)
      : o_(o), state_(o.seed), run_id_(mix64(now_ns() ^ (uint64_t(getpid()) << 32)) & 0xffffff) {}

  size_t build(char* out) {
    Writer w{out};
    const uint64_t client = next() % o_.clients;
    const uint64_t ch = mix64(client ^ 0x5eed);  // stable per-client traits
    const bool v6 = ch % 100 < o_.ipv6_percent;
    const bool known_name = (ch >> 8) % 10 >= 2;   // 80% have forward-confirmed rDNS
    const bool known_reverse = (ch >> 8) % 10 >= 1;  // 10% have rDNS that does not confirm
    const bool sasl = o_.sasl_users > 0 && o_.profile != Profile::kConnect;
    const bool tls = o_.profile != Profile::kConnect && (sasl || (ch >> 16) % 10 < 7);
    const uint64_t r = next();

    w.str("request=smtpd_access_policy\nprotocol_state=");
    switch (o_.profile) {
      case Profile::kRcpt: w.str("RCPT\nprotocol_name=ESMTP\n"); break;
      case Profile::kEom: w.str("END-OF-MESSAGE\nprotocol_name=ESMTP\n"); break;
      case Profile::kConnect: w.str("CONNECT\nprotocol_name=SMTP\n"); break;
    }

    w.str("helo_name=");
    if (o_.profile != Profile::kConnect) {
      if (known_name)
        host_name(w, client);
      else {
        w.str("client");
        w.num(client);
        w.str(".example");
      }
    }
    w.str("\nqueue_id=");
    if (o_.profile != Profile::kConnect) w.fixed_hex(r, 10);

    const uint64_t seq = seq_++;
    w.str("\nsender=");
    if (o_.profile != Profile::kConnect) {
      uint64_t s = next() % o_.senders;
      w.str("user");
      w.num(s);
      if (o_.unique) unique_tag(w, seq);
      w.str("@d");
      w.num(s % o_.sender_domains);
      w.str(".example");
    }
    uint64_t rcpt_count = 0;
    bool with_recipient = o_.profile == Profile::kRcpt;
    if (o_.profile == Profile::kEom) {
      // Postfix sends the recipient at END-OF-MESSAGE only for a single one.
      rcpt_count = (r >> 40) % 10 < 8 ? 1 : 2 + (r >> 44) % 4;
      with_recipient = rcpt_count == 1;
    }
    w.str("\nrecipient=");
    if (with_recipient) {
      uint64_t rc = next() % o_.recipients;
      w.str("rcpt");
      w.num(rc);
      if (o_.unique) unique_tag(w, seq);
      w.str("@local");
      w.num(rc % 4);
      w.str(".example");
    }
    w.str("\nrecipient_count=");
    w.num(rcpt_count);

    w.str("\nclient_address=");
    address(w, client, v6);
    w.str("\nclient_name=");
    if (known_name)
      host_name(w, client);
    else
      w.str("unknown");
    w.str("\nreverse_client_name=");
    if (known_reverse)
      host_name(w, client);
    else
      w.str("unknown");

    // Postfix's instance is pid.sec.usec.seq of the message (hex).
    w.str("\ninstance=");
    w.hex(1000 + (r >> 12) % 30000);
    w.str(".");
    w.hex(0x65000000 + (r >> 24) % 0x1000000);
    w.str(".");
    w.hex((r >> 32) % 1000000);
    w.str(".0");

    w.str("\nsasl_method=");
    if (sasl) w.str("PLAIN");
    w.str("\nsasl_username=");
    if (sasl) {
      w.str("sasl");
      w.num(next() % o_.sasl_users);
      w.str("@users.example");
    }
    w.str("\nsasl_sender=\nsize=");
    w.num(o_.profile == Profile::kConnect ? 0 : 500 + (r >> 20) % 100000);
    w.str("\nccert_subject=\nccert_issuer=\nccert_fingerprint=\nccert_pubkey_fingerprint=");
    if (tls)
      w.str("\nencryption_protocol=TLSv1.3\nencryption_cipher=TLS_AES_256_GCM_SHA384\nencryption_keysize=256");
    else
      w.str("\nencryption_protocol=\nencryption_cipher=\nencryption_keysize=0");
    w.str("\netrn_domain=\nstress=\nclient_port=");
    w.num(1024 + (r >> 16) % 64511);
    w.str("\npolicy_context=\nserver_address=");
    w.str(v6 ? "2001:db8::25" : "192.0.2.25");
    w.str(sasl ? "\nserver_port=587" : "\nserver_port=25");
    w.str("\ncompatibility_level=3.6\nmail_version=3.8.4\n\n");
    return size_t(w.p - out);
  }

 private:
  uint64_t next() { return mix64(state_ += 0x9e3779b97f4a7c15ULL); }

  // A tag from the clock, not the seed, makes --unique triplets new even
  // across runs with one seed against a database that remembers them.
  void unique_tag(Writer& w, uint64_t seq) {
    w.str(".");
    w.hex(run_id_);
    w.str(".");
    w.num(seq);
  }

  // Client i gets its own /24 (IPv4) or /64 (IPv6) for the first 65536
  // clients, so network-based grouping in a daemon does not merge them.
  static void address(Writer& w, uint64_t i, bool v6) {
    if (v6) {
      w.str("2001:db8:");
      w.hex((i >> 16) & 0xffff);
      w.str(":");
      w.hex(i & 0xffff);
      w.str("::");
      w.hex(1 + (i >> 32) % 0xfffe);
      return;
    }
    w.str("10.");
    w.num((i >> 8) & 0xff);
    w.str(".");
    w.num(i & 0xff);
    w.str(".");
    w.num(1 + (i >> 16) % 254);
  }

  static void host_name(Writer& w, uint64_t i) {
    w.str("mail");
    w.num(i);
    w.str(".net");
    w.num(i % 251);
    w.str(".example");
  }

  const Options& o_;
  uint64_t state_;
  uint64_t run_id_;
  uint64_t seq_ = 0;
};

enum class ErrorKind { kClosed, kTimeout, kBadReply, kConnect, kCount };
constexpr const char* kErrorNames[] = {"closed", "timeout", "bad_reply", "connect"};

struct Conn {
  enum class State : uint8_t { kDown, kConnecting, kIdle, kBusy };
  int fd = -1;
  State state = State::kDown;
  bool measured = false;  // the request in flight counts in the stats
  bool want_out = false;  // EPOLLOUT registered for a partial write
  bool queued = false;    // open loop: in the idle list
  uint64_t sent_ns = 0;
  uint64_t retry_ns = 0;  // when kDown: reconnect at
  uint32_t out_len = 0, out_off = 0;
  std::string in;  // partial reply (rarely used: replies arrive whole)
  char out[kMaxRequest];
};

class Runner {
 public:
  Runner(const Options& o, const bench::Endpoint& ep) : o_(o), ep_(ep), gen_(o), conns_(o.connections) {}

  int run() {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) {
      std::perror("policy-load: epoll_create1");
      return 1;
    }
    start_ns_ = now_ns();
    last_reply_ = start_ns_;
    measure_start_ = start_ns_ + uint64_t(o_.warmup * 1e9);
    measure_end_ = o_.requests ? UINT64_MAX : measure_start_ + uint64_t(o_.duration * 1e9);
    timeout_ns_ = uint64_t(o_.timeout * 1e9);
    next_due_ = start_ns_;
    due_step_ = o_.rate > 0 ? uint64_t(1e9 / o_.rate) : 0;
    idle_.reserve(conns_.size());
    for (auto& c : conns_) open_conn(c, start_ns_);

    std::vector<epoll_event> events(std::max<size_t>(64, conns_.size()));
    uint64_t next_tick = start_ns_ + kTickNs;
    for (;;) {
      uint64_t now = now_ns();
      if (!sending(now) && busy_ == 0) break;
      if (now >= next_tick) {
        tick(now);
        next_tick = now + kTickNs;
      }
      uint64_t wake = next_tick;
      if (measure_end_ > now && measure_end_ < wake) wake = measure_end_;
      if (down_ > 0) wake = std::min(wake, earliest_retry());
      if (!idle_.empty() && sending(now)) wake = std::min(wake, next_due_);
      timespec timeout{};
      if (wake > now) {
        timeout.tv_sec = time_t((wake - now) / 1'000'000'000);
        timeout.tv_nsec = long((wake - now) % 1'000'000'000);
      }
      int n = epoll_pwait2(epfd_, events.data(), int(events.size()), &timeout, nullptr);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::perror("policy-load: epoll_wait");
        return 1;
      }
      now = now_ns();
      for (int i = 0; i < n; ++i) {
        Conn& c = conns_[events[i].data.u64];
        uint32_t ev = events[i].events;
        if (c.state == Conn::State::kConnecting) {
          on_connected(c, now);
          continue;
        }
        if ((ev & EPOLLOUT) && c.want_out && !flush(c, now)) continue;
        if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c, now);
      }
      if (down_ > 0) retry_down(now);
      if (!idle_.empty()) issue_due(now_ns());
    }
    end_ns_ = now_ns();
    return 0;
  }

  void report() const {
    const uint64_t ok = hist_.count();
    // The window is the measured phase, stretched to the last answer drained.
    uint64_t end = o_.requests ? last_done_ : std::max(measure_end_, last_done_);
    if (end == 0 || end > end_ns_) end = end_ns_;  // stopped early
    double seconds = end > measure_start_ ? double(end - measure_start_) / 1e9 : 0;
    double rps = seconds > 0 ? double(ok) / seconds : 0;
    uint64_t errors = 0;
    for (auto e : errors_) errors += e;
    auto us = [](uint64_t ns) { return double(ns) / 1000.0; };
    const char* profile = o_.profile == Profile::kRcpt ? "rcpt" : o_.profile == Profile::kEom ? "eom" : "connect";

    FILE* human = o_.json ? stderr : stdout;
    std::fprintf(human,
                 "policy-load %s profile=%s connections=%" PRIu64 ": %" PRIu64 " requests in %.2f s = %.0f req/s, %" PRIu64
                 " errors; latency us p50 %.1f p90 %.1f p99 %.1f max %.1f;",
                 ep_.text.c_str(), profile, o_.connections, ok, seconds, rps, errors, us(hist_.quantile(0.50)),
                 us(hist_.quantile(0.90)), us(hist_.quantile(0.99)), us(hist_.max()));
    for (const auto& [name, n] : actions_) std::fprintf(human, " %s=%" PRIu64, name.c_str(), n);
    for (size_t k = 0; k < size_t(ErrorKind::kCount); ++k)
      if (errors_[k]) std::fprintf(human, " error:%s=%" PRIu64, kErrorNames[k], errors_[k]);
    std::fputc('\n', human);

    if (!o_.json) return;
    std::printf("{\"connect\":\"%s\",\"profile\":\"%s\",\"connections\":%" PRIu64 ",\"rate\":%.1f,\"seed\":%" PRIu64
                ",\"requests\":%" PRIu64 ",\"errors\":%" PRIu64
                ",\"gave_up\":%s,\"seconds\":%.3f,\"rps\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
                "\"mean_us\":%.1f,\"error_kinds\":{",
                json_escape(ep_.text).c_str(), profile, o_.connections, o_.rate, o_.seed, ok, errors, gave_up_ ? "true" : "false", seconds, rps,
                us(hist_.quantile(0.50)), us(hist_.quantile(0.90)), us(hist_.quantile(0.99)), us(hist_.max()),
                hist_.mean() / 1000.0);
    for (size_t k = 0; k < size_t(ErrorKind::kCount); ++k)
      std::printf("%s\"%s\":%" PRIu64, k ? "," : "", kErrorNames[k], errors_[k]);
    std::printf("},\"actions\":{");
    for (size_t k = 0; k < actions_.size(); ++k)
      std::printf("%s\"%s\":%" PRIu64, k ? "," : "", json_escape(actions_[k].first).c_str(), actions_[k].second);
    std::printf("}}\n");
  }

  bool success() const { return hist_.count() > 0 && !gave_up_; }

 private:
  static std::string json_escape(std::string_view s) {
    std::string out;
    for (char ch : s) {
      if (ch == '"' || ch == '\\') out += '\\';
      if (static_cast<unsigned char>(ch) < 0x20) continue;
      out += ch;
    }
    return out;
  }

  bool sending(uint64_t now) const {
    if (g_stop || gave_up_) return false;
    if (o_.requests) return now < measure_start_ || measured_sent_ < o_.requests;
    return now < measure_end_;
  }

  uint64_t index_of(const Conn& c) const { return uint64_t(&c - conns_.data()); }

  void open_conn(Conn& c, uint64_t now) {
    c.fd = socket(ep_.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      fail(c, now, ErrorKind::kConnect);
      return;
    }
    bench::set_nodelay(c.fd, ep_.family);
    int rc = connect(c.fd, reinterpret_cast<const sockaddr*>(&ep_.addr), ep_.len);
    if (rc != 0 && errno != EINPROGRESS) {
      fail(c, now, ErrorKind::kConnect);
      return;
    }
    epoll_event ev{};
    ev.events = rc == 0 ? EPOLLIN : EPOLLOUT;
    ev.data.u64 = index_of(c);
    epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd, &ev);
    c.want_out = false;
    if (rc == 0) {
      c.state = Conn::State::kIdle;
      issue(c, now);
    } else {
      c.state = Conn::State::kConnecting;
    }
  }

  void on_connected(Conn& c, uint64_t now) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      fail(c, now, ErrorKind::kConnect);
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = index_of(c);
    epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
    c.state = Conn::State::kIdle;
    issue(c, now);
  }

  // Closes C after an error and schedules the reconnect (soon after a
  // failed connect, so a dead server does not make us spin).
  void fail(Conn& c, uint64_t now, ErrorKind kind) {
    bool count = c.state == Conn::State::kBusy ? c.measured : now >= measure_start_;
    if (count) ++errors_[size_t(kind)];
    if (c.state == Conn::State::kBusy) --busy_;
    if (c.fd >= 0) close(c.fd);
    c.fd = -1;
    c.in.clear();
    c.state = Conn::State::kDown;
    c.retry_ns = kind == ErrorKind::kConnect ? now + kRetryDelayNs : now;
    ++down_;
  }

  uint64_t earliest_retry() const {
    uint64_t t = UINT64_MAX;
    for (const auto& c : conns_)
      if (c.state == Conn::State::kDown) t = std::min(t, c.retry_ns);
    return t;
  }

  void retry_down(uint64_t now) {
    if (!sending(now)) return;
    for (auto& c : conns_) {
      if (c.state == Conn::State::kDown && c.retry_ns <= now) {
        --down_;
        open_conn(c, now);
      }
    }
  }

  // Reply timeouts; and the end of a run whose server is gone, which
  // would otherwise never reach --requests.
  void tick(uint64_t now) {
    for (auto& c : conns_)
      if (c.state == Conn::State::kBusy && now - c.sent_ns > timeout_ns_) fail(c, now, ErrorKind::kTimeout);
    if (!gave_up_ && sending(now) && now - last_reply_ > timeout_ns_) {
      gave_up_ = true;
      std::fprintf(stderr, "policy-load: no reply from %s for %.1f s, giving up\n", ep_.text.c_str(), o_.timeout);
    }
  }

  // Closed loop: send on C now. Open loop: C waits for the next due request.
  void issue(Conn& c, uint64_t now) {
    if (!sending(now)) return;  // stays idle and connected
    if (o_.rate > 0) {
      if (!c.queued) idle_.push_back(&c);
      c.queued = true;
      issue_due(now);
      return;
    }
    send_on(c, now, now_ns());
  }

  void issue_due(uint64_t now) {
    while (!idle_.empty() && next_due_ <= now && sending(now)) {
      Conn& c = *idle_.back();
      idle_.pop_back();
      c.queued = false;
      if (c.state != Conn::State::kIdle) continue;  // failed while it waited
      send_on(c, now, next_due_);
      next_due_ += due_step_;
    }
  }

  // SENT_NS is when the request counts as sent: now, or when it was due.
  void send_on(Conn& c, uint64_t now, uint64_t sent_ns) {
    c.out_len = uint32_t(gen_.build(c.out));
    c.out_off = 0;
    c.measured = sent_ns >= measure_start_;
    if (c.measured) ++measured_sent_;
    c.state = Conn::State::kBusy;
    ++busy_;
    c.sent_ns = sent_ns;
    flush(c, now);
  }

  // Writes the rest of the request; returns false if C failed.
  bool flush(Conn& c, uint64_t now) {
    while (c.out_off < c.out_len) {
      ssize_t w = send(c.fd, c.out + c.out_off, c.out_len - c.out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        fail(c, now, ErrorKind::kClosed);
        return false;
      }
      c.out_off += uint32_t(w);
    }
    bool want_out = c.out_off < c.out_len;
    if (want_out != c.want_out) {
      c.want_out = want_out;
      epoll_event ev{};
      ev.events = want_out ? EPOLLIN | EPOLLOUT : EPOLLIN;
      ev.data.u64 = index_of(c);
      epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
    }
    return true;
  }

  void on_readable(Conn& c, uint64_t now) {
    char buf[16 * 1024];
    ssize_t r = recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      fail(c, now, ErrorKind::kClosed);
      return;
    }
    if (r == 0) {
      fail(c, now, ErrorKind::kClosed);
      return;
    }
    // Bytes while nothing is asked: the server is out of step with us.
    if (c.state != Conn::State::kBusy) {
      fail(c, now, ErrorKind::kBadReply);
      return;
    }
    std::string_view data(buf, size_t(r));
    if (!c.in.empty() || size_t(r) == sizeof buf) {
      c.in.append(buf, size_t(r));
      data = c.in;
    }
    size_t end = 0;
    std::string_view action;
    switch (parse_reply(data, &end, &action)) {
      case Parse::kMore:
        if (data.size() > kMaxReply) {
          fail(c, now, ErrorKind::kBadReply);
        } else if (c.in.empty()) {
          c.in.assign(buf, size_t(r));
        }
        return;
      case Parse::kBad:
        fail(c, now, ErrorKind::kBadReply);
        return;
      case Parse::kDone:
        break;
    }
    // Anything after the empty line was not asked for.
    if (end != data.size()) {
      fail(c, now, ErrorKind::kBadReply);
      return;
    }
    uint64_t done = now_ns();
    last_reply_ = done;
    if (c.measured) {
      hist_.record(done - c.sent_ns);
      count_action(action);
      last_done_ = done;
    }
    c.in.clear();
    c.state = Conn::State::kIdle;
    --busy_;
    issue(c, done);
  }

  enum class Parse { kMore, kDone, kBad };

  // Finds the end of one reply (after its empty line) and its action
  // keyword. A reply without an action, or with an empty one, is bad:
  // Postfix would treat it as a server error.
  static Parse parse_reply(std::string_view data, size_t* end, std::string_view* action) {
    size_t pos = 0;
    bool have_action = false;
    for (;;) {
      size_t nl = data.find('\n', pos);
      if (nl == std::string_view::npos) return Parse::kMore;
      std::string_view line = data.substr(pos, nl - pos);
      pos = nl + 1;
      if (line.empty()) {
        *end = pos;
        return have_action ? Parse::kDone : Parse::kBad;
      }
      if (!have_action && line.starts_with("action=")) {
        line.remove_prefix(7);
        size_t sp = line.find_first_of(" \t");
        *action = line.substr(0, sp);
        have_action = !action->empty();
      }
    }
  }

  void count_action(std::string_view keyword) {
    char upper[64];
    size_t n = std::min(keyword.size(), sizeof upper);
    for (size_t i = 0; i < n; ++i) {
      char ch = keyword[i];
      upper[i] = ch >= 'a' && ch <= 'z' ? char(ch - 'a' + 'A') : ch;
    }
    std::string_view key(upper, n);
    for (auto& [name, count] : actions_) {
      if (name == key) {
        ++count;
        return;
      }
    }
    actions_.emplace_back(std::string(key), 1);
  }

  const Options& o_;
  const bench::Endpoint& ep_;
  RequestGen gen_;
  std::vector<Conn> conns_;
  int epfd_ = -1;
  uint64_t start_ns_ = 0, measure_start_ = 0, measure_end_ = 0, end_ns_ = 0, timeout_ns_ = 0;
  uint64_t measured_sent_ = 0, last_done_ = 0, last_reply_ = 0;
  bool gave_up_ = false;
  size_t busy_ = 0, down_ = 0;
  uint64_t next_due_ = 0, due_step_ = 0;  // open loop (--rate)
  std::vector<Conn*> idle_;               // open loop: connections waiting for a due request
  Histogram hist_;
  std::array<uint64_t, size_t(ErrorKind::kCount)> errors_{};
  std::vector<std::pair<std::string, uint64_t>> actions_;  // few keywords: a scan beats hashing
};

void usage(FILE* out) {
  std::fprintf(out,
      "usage: policy-load [options]\n"
      "Load generator for the Postfix SMTP access policy delegation protocol.\n"
      "  --connect ADDR        inet:HOST:PORT, HOST:PORT, inet:[::1]:PORT or unix:/path\n"
      "                        (default inet:127.0.0.1:10023)\n"
      "  --connections C       persistent connections, one request in flight each (default 1)\n"
      "  --duration SECONDS    measured time (default 10)\n"
      "  --requests N          stop after N measured requests instead (with --warmup 0:\n"
      "                        exactly N requests are sent)\n"
      "  --warmup SECONDS      excluded from the stats (default 1)\n"
      "  --timeout SECONDS     reply timeout, then error and reconnect (default 10)\n"
      "  --profile rcpt|eom|connect   protocol_state RCPT, END-OF-MESSAGE or CONNECT (default rcpt)\n"
      "  --clients N           distinct client addresses (default 1000)\n"
      "  --ipv6-percent P      share of clients with an IPv6 address (default 0)\n"
      "  --senders N           distinct senders (default 1000)\n"
      "  --sender-domains N    distinct sender domains (default 100)\n"
      "  --recipients N        distinct recipients (default 1000)\n"
      "  --sasl-users N        SASL usernames; 0 = unauthenticated (default 0)\n"
      "  --unique              every request a new sender/recipient (a new greylist triplet)\n"
      "  --seed N              fixes the random choices (default: from the clock)\n"
      "  --json                also print one JSON object on stdout (the human line goes to stderr)\n"
      "  --rate R              open loop: offer R requests/s in all (a request waits for an\n"
      "                        idle connection; latency counts from when it was due)\n"
      "  --dump N              print N generated requests on stdout and exit (no connection)\n"
      "With no reply for the reply timeout the run gives up.\n"
      "Exit status: 0 if any request was answered and the run did not give up, 1 otherwise,\n"
      "2 on usage error.\n");
}

bool parse_u64(std::string_view s, uint64_t* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool parse_seconds(std::string_view s, double* out) {
  std::string tmp(s);
  char* end = nullptr;
  *out = std::strtod(tmp.c_str(), &end);
  return !tmp.empty() && *end == '\0' && *out >= 0 && *out < 1e7;
}

// Returns 0 on success, else the exit status.
int parse_options(int argc, char** argv, Options* o) {
  bool have_duration = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return -1;
    }
    if (arg == "--unique") {
      o->unique = true;
      continue;
    }
    if (arg == "--json") {
      o->json = true;
      continue;
    }
    std::string_view name = arg, value;
    if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      std::fprintf(stderr, "policy-load: %s needs a value\n", argv[i]);
      return 2;
    }
    bool ok = true;
    if (name == "--connect") {
      o->connect = std::string(value);
    } else if (name == "--connections") {
      ok = parse_u64(value, &o->connections) && o->connections >= 1 && o->connections <= 100000;
    } else if (name == "--duration") {
      ok = parse_seconds(value, &o->duration) && o->duration > 0;
      have_duration = true;
    } else if (name == "--requests") {
      ok = parse_u64(value, &o->requests) && o->requests > 0;
    } else if (name == "--warmup") {
      ok = parse_seconds(value, &o->warmup);
    } else if (name == "--timeout") {
      ok = parse_seconds(value, &o->timeout) && o->timeout > 0;
    } else if (name == "--profile") {
      if (value == "rcpt")
        o->profile = Profile::kRcpt;
      else if (value == "eom")
        o->profile = Profile::kEom;
      else if (value == "connect")
        o->profile = Profile::kConnect;
      else
        ok = false;
    } else if (name == "--clients") {
      ok = parse_u64(value, &o->clients) && o->clients > 0;
    } else if (name == "--ipv6-percent") {
      ok = parse_u64(value, &o->ipv6_percent) && o->ipv6_percent <= 100;
    } else if (name == "--senders") {
      ok = parse_u64(value, &o->senders) && o->senders > 0;
    } else if (name == "--sender-domains") {
      ok = parse_u64(value, &o->sender_domains) && o->sender_domains > 0;
    } else if (name == "--recipients") {
      ok = parse_u64(value, &o->recipients) && o->recipients > 0;
    } else if (name == "--sasl-users") {
      ok = parse_u64(value, &o->sasl_users);
    } else if (name == "--rate") {
      ok = parse_seconds(value, &o->rate) && o->rate > 0;
    } else if (name == "--dump") {
      ok = parse_u64(value, &o->dump);
    } else if (name == "--seed") {
      ok = parse_u64(value, &o->seed);
      o->seed_given = true;
    } else {
      std::fprintf(stderr, "policy-load: unknown option %.*s\n", int(name.size()), name.data());
      usage(stderr);
      return 2;
    }
    if (!ok) {
      std::fprintf(stderr, "policy-load: bad value for %.*s: %.*s\n", int(name.size()), name.data(),
                   int(value.size()), value.data());
      return 2;
    }
  }
  if (have_duration && o->requests) {
    std::fprintf(stderr, "policy-load: give --duration or --requests, not both\n");
    return 2;
  }
  if (!have_duration && !o->requests) o->duration = 10;
  if (!o->seed_given) o->seed = mix64(now_ns() ^ (uint64_t(getpid()) << 32));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (int rc = parse_options(argc, argv, &o); rc != 0) return rc < 0 ? 0 : rc;
  if (o.dump) {
    RequestGen gen(o);
    char buf[kMaxRequest];
    for (uint64_t i = 0; i < o.dump; ++i) std::fwrite(buf, 1, gen.build(buf), stdout);
    return 0;
  }
  std::string err;
  auto ep = bench::parse_endpoint(o.connect, &err);
  if (!ep) {
    std::fprintf(stderr, "policy-load: --connect %s: %s\n", o.connect.c_str(), err.c_str());
    return 2;
  }
  struct sigaction sa{};
  sa.sa_handler = on_signal;  // Ctrl-C ends the run early and still reports
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  Runner runner(o, *ep);
  if (int rc = runner.run(); rc != 0) return rc;
  runner.report();
  return runner.success() ? 0 : 1;
}
