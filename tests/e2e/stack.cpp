// End-to-end harness (see stack.h).
#include "stack.h"

#include <fcntl.h>
#include <sched.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace e2e {

namespace fs = std::filesystem;
using namespace std::chrono;
using testsupport::free_port;
using testsupport::Process;
using testsupport::read_file;
using testsupport::run;

namespace {

std::string deploy_file(const std::string& rel) {
    return testsupport::source_dir() + "/deploy/" + rel;
}

void must_run(const std::vector<std::string>& argv, const std::string& what) {
    auto r = run(argv);
    if (r.exit_code != 0)
        throw std::runtime_error(what + " failed (exit " + std::to_string(r.exit_code) +
                                 "): " + r.output);
}

// Replace every occurrence; the snippet must contain `from` at least once, so
// a change of the shipped snippet cannot silently bypass the test's wiring.
std::string replace_all(std::string text, const std::string& from, const std::string& to,
                        const std::string& where) {
    std::size_t pos = 0, count = 0;
    while ((pos = text.find(from, pos)) != std::string::npos) {
        text.replace(pos, from.size(), to);
        pos += to.size();
        ++count;
    }
    if (count == 0) throw std::runtime_error(where + " no longer contains \"" + from + "\"");
    return text;
}

void write_file(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + path);
}

nlohmann::json load_json(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    return nlohmann::json::parse(in);
}

// Lines a reply may start with in swaks' transcript: plain and TLS, normal
// and error replies.
bool is_reply_line(const std::string& line) {
    return line.rfind("<-  ", 0) == 0 || line.rfind("<** ", 0) == 0 ||
           line.rfind("<~  ", 0) == 0 || line.rfind("<~* ", 0) == 0;
}
bool is_command_line(const std::string& line) {
    return line.rfind(" -> ", 0) == 0 || line.rfind(" ~> ", 0) == 0 ||
           line.rfind("*~> ", 0) == 0 || line.rfind("**> ", 0) == 0;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

const char* daemon_name(Daemon d) {
    switch (d) {
        case Daemon::spf: return "policyd-spf";
        case Daemon::ratelimit: return "policyd-ratelimit";
        case Daemon::greylist: return "policyd-greylist";
        case Daemon::delivery: return "delivery-maildir";
    }
    return "?";
}

const char* daemon_binary(Daemon d) {
    switch (d) {
        case Daemon::spf: return POLICYD_SPF;
        case Daemon::ratelimit: return POLICYD_RATELIMIT;
        case Daemon::greylist: return POLICYD_GREYLIST;
        case Daemon::delivery: return DELIVERY_MAILDIR;
    }
    return "";
}

// The DNS data the SPF scenarios need: a domain that authorises the test
// client (and a HELO name that does), and one that authorises nobody.
const char* kZone = R"({
  "pass.example": {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"]},
  "mail.pass.example": {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"], "A": ["192.0.2.10"]},
  "fail.example": {"TXT": ["v=spf1 -all"]}
})";

// Wait until ready() holds, but give up at once if the process has exited.
bool wait_ready(Process& p, const std::function<bool()>& ready, seconds timeout) {
    auto end = steady_clock::now() + timeout;
    while (steady_clock::now() < end) {
        if (ready()) return true;
        if (!p.running()) return false;
    }
    return ready();
}

bool tcp_ready(int port) {
    try {
        testsupport::wait_for_tcp("127.0.0.1", port, milliseconds(100));
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

bool unix_ready(const std::string& path) {
    try {
        testsupport::wait_for_unix(path, milliseconds(100));
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

// The rest of the test runs as PID 1 of a new pid namespace: the process
// that called this only waits for it and exits with its status. When that
// outer process dies, however (a CTest timeout kills it), the test gets
// SIGKILL, and the kernel then kills every process of the namespace, so a
// killed test leaves no Postfix, Dovecot or daemon behind.
void run_as_namespace_init() {
    int alive[2];  // the outer process holds the write end until it exits
    if (::pipe2(alive, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    std::fflush(stdout);
    std::fflush(stderr);
    pid_t child = ::fork();
    if (child < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (child > 0) {
        ::close(alive[0]);
        int status = 0;
        while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
        }
        ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
    ::close(alive[1]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    struct pollfd p = {alive[0], POLLIN, 0};
    if (::poll(&p, 1, 0) > 0) ::_exit(1);  // hung up: the outer process is already gone
    ::close(alive[0]);
}

}  // namespace

void enter_private_network() {
    static bool entered = false;
    if (entered) return;
    if (::geteuid() != 0) throw std::runtime_error("the e2e tests must run as root");
    if (::unshare(CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID) != 0)
        throw std::runtime_error(std::string("unshare(CLONE_NEWNET|CLONE_NEWNS|CLONE_NEWPID): ") +
                                 std::strerror(errno));
    // Mounts made from now on stay in this namespace.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        throw std::runtime_error(std::string("mount --make-rprivate /: ") + std::strerror(errno));
    run_as_namespace_init();
    // ps, pid files and /proc/PID agree with the namespace's pids.
    if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
        throw std::runtime_error(std::string("mount /proc: ") + std::strerror(errno));
    must_run({"ip", "link", "set", "lo", "up"}, "ip link set lo up");
    // An outside client's address: loopback addresses are never SPF-checked
    // (skip_addresses), and libspf2 passes them anyway.
    must_run({"ip", "addr", "add", std::string(kOutsideClient) + "/32", "dev", "lo"},
             "ip addr add");
    // The resolver of every process started from here asks 127.0.0.1:53.
    // The file lives as long as this process (the bind mount keeps it).
    static testsupport::TempDir etc;
    etc.write("resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:2\n");
    if (::mount(etc.file("resolv.conf").c_str(), "/etc/resolv.conf", nullptr, MS_BIND,
                nullptr) != 0)
        throw std::runtime_error(std::string("bind mount over /etc/resolv.conf: ") +
                                 std::strerror(errno));
    entered = true;
}

std::vector<std::string> SmtpResult::replies_to(const std::string& command) const {
    std::vector<std::string> out;
    auto lines = lines_of(transcript);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (!is_command_line(lines[i]) || lines[i].compare(4, command.size(), command) != 0)
            continue;
        std::string last;
        for (std::size_t j = i + 1; j < lines.size() && !is_command_line(lines[j]); ++j)
            if (is_reply_line(lines[j])) last = lines[j].substr(4);
        out.push_back(last);
    }
    return out;
}

std::string SmtpResult::reply_to(const std::string& command) const {
    auto all = replies_to(command);
    return all.empty() ? "" : all.front();
}

SmtpResult send_mail(const Mail& m) {
    std::string to;
    for (const auto& r : m.to) to += (to.empty() ? "" : ",") + r;
    std::vector<std::string> argv = {"swaks",     "--server", "127.0.0.1",
                                     "--port",    std::to_string(m.port),
                                     "--local-interface", m.client_ip,
                                     "--helo",    m.helo,
                                     "--from",    m.from,
                                     "--to",      to,
                                     "--header",  "Subject: " + m.subject,
                                     "--body",    m.body,
                                     "--timeout", "30"};
    if (m.tls || !m.user.empty()) argv.push_back("--tls");
    if (!m.user.empty())
        argv.insert(argv.end(),
                    {"--auth", "PLAIN", "--auth-user", m.user, "--auth-password", m.password});
    auto r = run(argv, "", seconds(60));
    return SmtpResult{r.exit_code, r.output};
}

Stack::Stack(Options options) : options_(options) {
    ::chmod(dir_.path().c_str(), 0755);  // Postfix and Dovecot users walk into it
    // Redis first: it is listening before the other ports are chosen, so
    // none of them can be its port.
    redis_ = std::make_unique<testsupport::RedisServer>();
    used_ports_.insert(redis_->port());
    for (Daemon d : {Daemon::spf, Daemon::ratelimit, Daemon::greylist, Daemon::delivery})
        ports_[d] = new_port();
    smtp_port_ = new_port();
    submission_port_ = new_port();
    fs::create_directories(dir_.file("vmail"));
    write_file(dir_.file("vmailbox"),
               read_file(deploy_file("config/vmailbox")) +
                   "carol@example.org ok\ndave@example.org ok\nerin@example.org ok\n");
    write_daemon_configs();
    try {
        start_dns();
        for (Daemon d : {Daemon::spf, Daemon::ratelimit, Daemon::greylist, Daemon::delivery})
            start(d);
        start_postfix();
        start_dovecot();
    } catch (...) {
        stop_postfix();  // the only process not stopped by a member's destructor
        throw;
    }
}

Stack::~Stack() {
    stop_postfix();
    dovecot_.stop();
    for (auto& [d, p] : daemons_) p.stop();
    dns_.stop();
}

int Stack::port_of(Daemon d) const { return ports_.at(d); }

// free_port() releases the port it found, so two calls may return the same
// one: keep asking until it is one this stack has not handed out yet.
int Stack::new_port() {
    for (;;) {
        int port = free_port();
        if (used_ports_.insert(port).second) return port;
    }
}

void Stack::write_daemon_configs() {
    auto write = [&](Daemon d, nlohmann::json cfg) {
        // Addresses come from the command line, as in the compose file.
        cfg.erase("listen");
        cfg.erase("redis");
        cfg["metrics"] = "inet:127.0.0.1:" + std::to_string(new_port());
        write_file(dir_.file(std::string(daemon_name(d)) + ".json"), cfg.dump(2));
    };
    auto spf = load_json(deploy_file("config/policyd-spf.json"));
    spf["lookup_time"] = "5s";
    write(Daemon::spf, spf);

    auto rl = load_json(deploy_file("config/policyd-ratelimit.json"));
    bool found = false;
    for (auto& rule : rl["rules"])
        if (rule["key"] == nlohmann::json::array({"sasl_username"}) &&
            rule["count"] == "recipients") {
            rule["limit"] = options_.rate_limit_recipients;
            found = true;
        }
    if (!found) throw std::runtime_error("policyd-ratelimit.json has no sasl_username recipients rule");
    write(Daemon::ratelimit, rl);

    auto gl = load_json(deploy_file("config/policyd-greylist.json"));
    gl["delay"] = options_.greylist_delay_seconds;
    write(Daemon::greylist, gl);

    auto dm = load_json(deploy_file("config/delivery-maildir.json"));
    dm["virtual_base"] = dir_.file("vmail");
    dm["virtual_mailboxes"] = dir_.file("vmailbox");
    write(Daemon::delivery, dm);
}

void Stack::start_dns() {
    dir_.write("zone.json", kZone);
    dns_ = Process({"/usr/bin/python3", testsupport::source_dir() + "/tests/e2e/dns_server.py",
                    dir_.file("zone.json"), "--listen", "127.0.0.1:53"},
                   dir_.file("dns.log"));
    if (!wait_ready(dns_, [] { return tcp_ready(53); }, seconds(15)))
        throw std::runtime_error("DNS server did not start:\n" + read_file(dir_.file("dns.log")));
}

void Stack::start(Daemon d) {
    std::string name = daemon_name(d);
    std::vector<std::string> argv = {daemon_binary(d), "--config", dir_.file(name + ".json"),
                                     "--listen", "inet:127.0.0.1:" + std::to_string(ports_[d])};
    if (d == Daemon::ratelimit || d == Daemon::greylist)
        argv.insert(argv.end(), {"--redis", redis_->url()});
    daemons_[d] = Process(argv, dir_.file(name + ".log"));
    int port = ports_[d];
    if (!wait_ready(daemons_[d], [port] { return tcp_ready(port); }, seconds(15)))
        throw std::runtime_error(name + " did not start:\n" + log_of(d));
}

void Stack::stop(Daemon d) {
    int status = daemons_.at(d).stop();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw std::runtime_error(std::string(daemon_name(d)) +
                                 " did not exit 0 on SIGTERM:\n" + log_of(d));
}

void Stack::reload(Daemon d, const std::string& key, const std::string& value) {
    std::string path = dir_.file(std::string(daemon_name(d)) + ".json");
    auto cfg = load_json(path);
    cfg[key] = value;
    write_file(path, cfg.dump(2));
    auto count = [&] {
        std::string log = log_of(d);
        std::size_t n = 0;
        for (auto p = log.find("configuration reloaded"); p != std::string::npos;
             p = log.find("configuration reloaded", p + 1))
            ++n;
        return n;
    };
    std::size_t before = count();
    daemons_.at(d).signal(SIGHUP);
    auto end = steady_clock::now() + seconds(10);
    while (count() == before) {
        if (steady_clock::now() > end)
            throw std::runtime_error(std::string(daemon_name(d)) + " did not reload:\n" + log_of(d));
        std::this_thread::sleep_for(milliseconds(20));  // polling interval
    }
}

void Stack::start_postfix() {
    postfix_ = std::make_unique<testsupport::PostfixInstance>(dir_);
    must_run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
              "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
              "/CN=mx.example.org", "-keyout", dir_.file("key.pem"), "-out",
              dir_.file("cert.pem")},
             "openssl req");

    // Both snippets call the rate limiter; only main.cf the others.
    auto wire = [&](std::string text, const std::string& where) {
        return replace_all(text, "inet:127.0.0.1:10032",
                           "inet:127.0.0.1:" + std::to_string(ports_[Daemon::ratelimit]), where);
    };
    std::string main_snippet = wire(read_file(deploy_file("postfix/main.cf")), "main.cf");
    main_snippet = replace_all(main_snippet, "inet:127.0.0.1:10034",
                               "inet:127.0.0.1:" + std::to_string(ports_[Daemon::spf]),
                               "main.cf");
    main_snippet = replace_all(main_snippet, "inet:127.0.0.1:10023",
                               "inet:127.0.0.1:" + std::to_string(ports_[Daemon::greylist]),
                               "main.cf");
    main_snippet = replace_all(main_snippet, "lmtp:inet:127.0.0.1:24",
                               "lmtp:inet:127.0.0.1:" + std::to_string(ports_[Daemon::delivery]),
                               "main.cf");
    main_snippet = replace_all(main_snippet, "/etc/mailpolicy/vmailbox", dir_.file("vmailbox"),
                               "main.cf");

    // What any installation has before the snippet is appended, here with
    // private directories, loopback only, no DNS for delivery and no syslog.
    std::string base = postfix_->base_main_cf() +
                       "myhostname = mx.example.org\n"
                       "mydomain = example.org\n"
                       "mydestination = localhost\n"
                       // 127.0.0.2 is the trusted host; the tests' other
                       // client, kOutsideClient, goes through the policies.
                       "mynetworks = 127.0.0.2/32\n"
                       "smtpd_tls_cert_file = " + dir_.file("cert.pem") + "\n"
                       "smtpd_tls_key_file = " + dir_.file("key.pem") + "\n";

    // master.cf: smtp on a free port, and the snippet's submission service
    // moved to another free port, without chroot.
    std::string master_snippet = wire(read_file(deploy_file("postfix/master.cf")), "master.cf");
    master_snippet = replace_all(master_snippet,
                                 "submission inet n       -       y       -       -       smtpd",
                                 "127.0.0.1:" + std::to_string(submission_port_) +
                                     " inet n - n - - smtpd",
                                 "master.cf");
    postfix_->write_config(base + "\n" + main_snippet,
                           testsupport::PostfixInstance::master_cf(smtp_port_) + master_snippet);
    must_run({"postmap", "-c", postfix_->config_dir(), "hash:" + dir_.file("vmailbox")},
             "postmap");
    postfix_->start(smtp_port_);
    testsupport::wait_for_tcp("127.0.0.1", submission_port_, seconds(20));
}

void Stack::stop_postfix() {
    if (postfix_) postfix_->stop();
}

void Stack::start_dovecot() {
    // SASL only: Postfix asks Dovecot's auth service through a socket in
    // its queue directory (smtpd_sasl_path = private/auth in master.cf).
    std::string d = dir_.path();
    dir_.write("dovecot-users", "sender@example.org:{PLAIN}secret\n"
                                "other@example.org:{PLAIN}secret2\n");
    dir_.write("dovecot.conf",
               "base_dir = " + d + "/dovecot-run\n"
               "state_dir = " + d + "/dovecot-state\n"
               "log_path = " + d + "/dovecot.log\n"
               "protocols =\n"
               "ssl = no\n"
               "disable_plaintext_auth = no\n"
               "auth_mechanisms = plain login\n"
               "default_internal_user = dovecot\n"
               "default_login_user = dovenull\n"
               "passdb {\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u " +
                   d + "/dovecot-users\n}\n"
               "userdb {\n  driver = static\n  args = uid=nobody gid=nogroup home=/nonexistent\n}\n"
               "service auth {\n  unix_listener " + d + "/queue/private/auth {\n"
               "    mode = 0660\n    user = postfix\n    group = postfix\n  }\n}\n");
    dovecot_ = Process({"dovecot", "-F", "-c", dir_.file("dovecot.conf")}, dir_.file("dovecot.out"));
    std::string socket = d + "/queue/private/auth";
    if (!wait_ready(dovecot_, [&] { return unix_ready(socket); }, seconds(15))) {
        throw std::runtime_error("dovecot did not start:\n" + read_file(dir_.file("dovecot.out")) +
                                 read_file(dir_.file("dovecot.log")));
    }
}

std::string Stack::wait_for_delivery(const std::string& user, const std::string& marker,
                                     milliseconds timeout) {
    fs::path dir = fs::path(dir_.file("vmail")) / "example.org" / user / "new";
    auto end = steady_clock::now() + timeout;
    while (true) {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(dir, ec)) {
            std::string content = read_file(e.path().string());
            if (content.find(marker) != std::string::npos) return content;
        }
        if (steady_clock::now() > end) return "";
        std::this_thread::sleep_for(milliseconds(50));  // polling interval
    }
}

std::size_t Stack::delivered_count(const std::string& user) const {
    fs::path dir = fs::path(dir_.file("vmail")) / "example.org" / user / "new";
    std::error_code ec;
    std::size_t n = 0;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); ++it) ++n;
    return n;
}

std::string Stack::maillog() const { return read_file(dir_.file("maillog")); }

std::string Stack::log_of(Daemon d) const {
    return read_file(dir_.file(std::string(daemon_name(d)) + ".log"));
}

std::string Stack::diagnostics() const {
    std::string out = "--- maillog\n" + maillog();
    for (Daemon d : {Daemon::spf, Daemon::ratelimit, Daemon::greylist, Daemon::delivery})
        out += std::string("--- ") + daemon_name(d) + "\n" + log_of(d);
    out += "--- dovecot\n" + read_file(dir_.file("dovecot.log"));
    return out;
}

}  // namespace e2e
