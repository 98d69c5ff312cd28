// A private Postfix instance for tests (see postfix_instance.h).
#include "support/postfix_instance.h"

#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace testsupport {

namespace {

using namespace std::chrono_literals;

void must_run(const std::vector<std::string>& argv) {
    auto r = run(argv);
    if (r.exit_code != 0) {
        std::string cmd;
        for (const auto& a : argv) cmd += a + " ";
        throw std::runtime_error(cmd + "failed (exit " + std::to_string(r.exit_code) +
                                 "): " + r.output);
    }
}

void write_file(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + path);
}

// Whether pid has exited. The master, orphaned by `postfix start`, may be a
// child of this process (when it is a namespace's init): then reap it, or it
// would linger as a zombie that kill(pid, 0) still finds.
bool gone(pid_t pid) {
    pid_t r = ::waitpid(pid, nullptr, WNOHANG);
    if (r == pid) return true;
    if (r == 0) return false;
    return ::kill(pid, 0) != 0;
}

const char* kMasterServices = R"(pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
)";

}  // namespace

PostfixInstance::PostfixInstance(const TempDir& dir) : dir_(dir) {
    std::filesystem::create_directories(config_dir());
    std::filesystem::create_directories(dir.file("queue"));
    std::filesystem::create_directories(dir.file("data"));
    must_run({"chown", "postfix:", dir.file("data")});
}

PostfixInstance::~PostfixInstance() { stop(); }

std::string PostfixInstance::base_main_cf() const {
    return "compatibility_level = 3.6\n"
           "queue_directory = " + dir_.file("queue") + "\n"
           "data_directory = " + dir_.file("data") + "\n"
           "maillog_file = " + dir_.file("maillog") + "\n"
           "maillog_file_prefixes = " + dir_.path() + "\n"
           "inet_interfaces = loopback-only\n"
           "inet_protocols = ipv4\n"
           "alias_maps =\n"
           "alias_database =\n"
           "smtp_dns_support_level = disabled\n";
}

std::string PostfixInstance::master_cf(int smtp_port) {
    return "127.0.0.1:" + std::to_string(smtp_port) + " inet n - n - - smtpd\n" +
           kMasterServices;
}

void PostfixInstance::write_config(const std::string& main_cf, const std::string& master_cf) const {
    write_file(config_dir() + "/main.cf", main_cf);
    write_file(config_dir() + "/master.cf", master_cf);
}

void PostfixInstance::start(int smtp_port) {
    must_run({"postfix", "-c", config_dir(), "start"});
    running_ = true;
    wait_for_tcp("127.0.0.1", smtp_port, 20s);
}

void PostfixInstance::stop() {
    if (!running_) return;
    running_ = false;
    pid_t master = 0;
    {
        std::ifstream in(dir_.file("queue") + "/pid/master.pid");
        in >> master;
    }
    run({"postfix", "-c", config_dir(), "stop"});
    if (master <= 0) return;
    auto end = std::chrono::steady_clock::now() + 15s;
    bool done = gone(master);
    while (!done && std::chrono::steady_clock::now() < end) {
        std::this_thread::sleep_for(20ms);  // polling interval
        done = gone(master);
    }
    if (!done) {
        ::kill(master, SIGKILL);
        ::waitpid(master, nullptr, 0);
    }
}

}  // namespace testsupport
