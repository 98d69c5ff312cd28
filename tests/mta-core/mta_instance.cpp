#include "mta_instance.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <thread>

namespace mtatest {

using namespace testsupport;

std::string mta_core_binary() { return MTA_CORE; }

std::string cmd(dtest::LineClient& c, const std::string& line) {
    c.send(line + "\r\n");
    return c.reply();
}

void make_certificate(const TempDir& dir) {
    auto r = run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", dir.file("key.pem"), "-out", dir.file("cert.pem"), "-days", "2", "-subj",
                  "/CN=mx.test.example"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ::chmod(dir.file("key.pem").c_str(), 0600);
}

// A minimal SMTP server (Python) that stores the raw bytes of one DATA
// exchange, dot-stuffing and all, in a file, then exits. With dsn, it offers
// DSN too; every command line it gets is kept in FILE.commands.
Process capture_server(const TempDir& dir, int port, bool dsn) {
    dir.write("capture.py",
              "import socket, sys\n"
              "srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
              "srv.bind(('127.0.0.1', int(sys.argv[1]))); srv.listen(1)\n"
              "done = False\n"
              "while not done:\n"
              "  c, _ = srv.accept(); f = c.makefile('rb')\n"
              "  try:\n"
              "   c.sendall(b'220 capture ESMTP\\r\\n')\n"
              "   while True:\n"
              "    line = f.readline()\n"
              "    if not line: break\n"
              "    open(sys.argv[2] + '.commands', 'ab').write(line)\n"
              "    verb = line[:4].upper()\n"
              "    if verb == b'EHLO': c.sendall(b'250-capture\\r\\n' + (b'250-DSN\\r\\n' if sys.argv[3] == '1' else b'')"
              " + b'250 8BITMIME\\r\\n')\n"
              "    elif verb == b'DATA':\n"
              "        c.sendall(b'354 go\\r\\n'); raw = b''\n"
              "        while not raw.endswith(b'\\r\\n.\\r\\n'): raw += f.readline()\n"
              "        open(sys.argv[2], 'wb').write(raw); c.sendall(b'250 2.0.0 captured\\r\\n'); done = True\n"
              "    elif verb == b'QUIT': c.sendall(b'221 bye\\r\\n'); break\n"
              "    else: c.sendall(b'250 2.0.0 ok\\r\\n')\n"
              "  except OSError:\n"
              "   pass  # a probe that connected and left\n");
    Process p({"/usr/bin/python3", dir.file("capture.py"), std::to_string(port), dir.file("captured"),
               dsn ? "1" : "0"},
              dir.file("capture.log"));
    wait_for_tcp("127.0.0.1", port);
    return p;
}

bool wait_for_file(const std::string& path, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    struct stat st;
    while (std::chrono::steady_clock::now() < deadline) {
        if (::stat(path.c_str(), &st) == 0 && st.st_size > 0) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a file, bounded
    }
    return false;
}

RunResult python(const std::string& script) { return run({"/usr/bin/python3", "-c", script}); }

MtaInstance::MtaInstance(Options options) : options_(std::move(options)) {
    // The queue and maillog belong to mail_owner after start: the dir must
    // be traversable by it.
    ::chmod(dir_.path().c_str(), 0755);
    port_ = free_port();
    if (options_.with_delivery) {
        std::string boxes;
        for (const auto& m : options_.mailboxes) boxes += m + " ok\n";
        dir_.write("vmailbox", boxes);
        ::mkdir(dir_.file("vmail").c_str(), 0755);
        nlohmann::json config{{"mailbox_mode", options_.delivery_mode}, {"recipient_delimiter", "+"}};
        if (options_.delivery_mode == "virtual") {
            config["virtual_base"] = dir_.file("vmail");
            config["virtual_mailboxes"] = dir_.file("vmailbox");
        }
        delivery_ = std::make_unique<DaemonProcess>(
            dir_, DaemonProcess::Options{DELIVERY_MAILDIR, "delivery-maildir", "", {}, false}, config);
    }
    write_config();
    start();
}

MtaInstance::~MtaInstance() {
    process_.stop();
    // What the program said, for whoever reads a failed test's output.
    if (::testing::Test::HasFailure() || std::getenv("MTA_TEST_LOGS"))
        std::fprintf(stderr, "--- mta-core log:\n%s--- maillog:\n%s--- delivery-maildir log:\n%s---\n",
                     log().c_str(), maillog().c_str(), delivery_ ? delivery_->log().c_str() : "");
}

void MtaInstance::write_config() {
    if (!options_.default_main_cf) {
        // The test's own main.cf; only the paths of this instance are added.
        std::string main = options_.main_cf + "\nqueue_directory = " + queue_dir() + "\nmaillog_file = " +
                           dir_.file("maillog") + "\n";
        if (delivery_) main += "mailbox_transport = lmtp:inet:127.0.0.1:" + std::to_string(delivery_->port()) + "\n";
        dir_.write("main.cf", main);
        dir_.write("master.cf", options_.master_cf);
        return;
    }
    std::string main = "compatibility_level = 3.6\n"
                       "myhostname = mx.test.example\n"
                       "mydestination = \n"
                       "inet_protocols = ipv4\n"
                       "queue_directory = " + queue_dir() + "\n"
                       "maillog_file = " + dir_.file("maillog") + "\n"
                       "mynetworks = 127.0.0.2/32\n"
                       "smtpd_client_event_limit_exceptions =\n"
                       "smtpd_error_sleep_time = 0\n"
                       // No DNS from the tests' sessions unless a test asks for it.
                       "smtpd_peername_lookup = no\n"
                       "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, "
                       "reject_unauth_destination\n"
                       "alias_maps =\n"
                       "virtual_mailbox_domains = example.org\n"
                       "virtual_mailbox_maps = texthash:" + dir_.file("vmailbox") + "\n"
                       "minimal_backoff_time = 1s\n"
                       "maximal_backoff_time = 2s\n";
    if (delivery_)
        main += "virtual_transport = lmtp:inet:127.0.0.1:" + std::to_string(delivery_->port()) + "\n";
    main += options_.main_cf;
    dir_.write("main.cf", main);
    dir_.write("master.cf", "127.0.0.1:" + std::to_string(port_) + " inet n - n - - smtpd\n" +
                                options_.master_cf);
}

void MtaInstance::rewrite_main_cf(const std::string& extra) {
    options_.main_cf = extra;
    write_config();
}

void MtaInstance::start() {
    std::vector<std::string> argv = options_.wrapper;
    argv.insert(argv.end(), {MTA_CORE, "--config", main_cf_path()});
    argv.insert(argv.end(), options_.args.begin(), options_.args.end());
    process_ = Process(argv, dir_.file("mta-core.log"));
    if (options_.default_main_cf) wait_for_tcp("127.0.0.1", port_);
}

int MtaInstance::stop() { return process_.stop(); }
int MtaInstance::wait_exit(std::chrono::milliseconds timeout) { return process_.wait(timeout); }
void MtaInstance::kill9() { process_.kill9(); }
void MtaInstance::signal(int sig) { process_.signal(sig); }

std::string MtaInstance::maillog() const { return read_file(dir_.file("maillog")); }
std::string MtaInstance::log() const { return read_file(dir_.file("mta-core.log")); }

bool MtaInstance::maillog_has(const std::string& text, std::chrono::milliseconds timeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    do {
        if (maillog().find(text) != std::string::npos) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a file, bounded
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
}

std::vector<std::string> MtaInstance::mail_files(const std::string& user) const {
    std::vector<std::string> out;
    std::string dir = dir_.file("vmail/example.org/" + user + "/new");
    if (DIR* d = ::opendir(dir.c_str())) {
        while (auto* e = ::readdir(d))
            if (e->d_name[0] != '.') out.push_back(dir + "/" + e->d_name);
        ::closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::string> MtaInstance::wait_for_mail(const std::string& user, std::size_t count,
                                                    std::chrono::milliseconds timeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        auto files = mail_files(user);
        if (files.size() >= count || std::chrono::steady_clock::now() >= deadline) return files;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a directory, bounded
    }
}

RunResult MtaInstance::command(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{MTA_CORE, "--config", main_cf_path()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
}

}  // namespace mtatest
