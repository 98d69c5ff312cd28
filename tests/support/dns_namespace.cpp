#include "support/dns_namespace.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace testsupport {

using namespace std::chrono_literals;

namespace {
void run_ok(const std::vector<std::string>& argv) {
    auto r = run(argv);
    if (r.exit_code != 0) throw std::runtime_error(argv[0] + " failed: " + r.output);
}
}  // namespace

DnsNamespace::DnsNamespace(const std::string& zones_file, const std::string& dns_server_script)
    : name_("spft" + std::to_string(::getpid())) {
    run_ok({"ip", "netns", "add", name_});
    created_ = true;
    run_ok({"ip", "netns", "exec", name_, "ip", "link", "set", "lo", "up"});
    std::filesystem::create_directories("/etc/netns/" + name_);
    std::ofstream("/etc/netns/" + name_ + "/resolv.conf")
        << "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n";
    dns_ = Process({"ip", "netns", "exec", name_, "/usr/bin/python3", dns_server_script,
                    zones_file, "1", "--listen", "127.0.0.1:53"},
                   dir_.file("dns.log"), {"PYTHONUNBUFFERED=1"});
    auto until = std::chrono::steady_clock::now() + 20s;
    while (read_file(dir_.file("dns.log")).find("serving") == std::string::npos) {
        if (!dns_.running() || std::chrono::steady_clock::now() > until)
            throw std::runtime_error("DNS server did not start: " + read_file(dir_.file("dns.log")));
        std::this_thread::sleep_for(20ms);  // polling a condition, with a deadline
    }
}

DnsNamespace::~DnsNamespace() {
    dns_.stop();
    if (created_) run({"ip", "netns", "del", name_});
    std::error_code ec;
    std::filesystem::remove_all("/etc/netns/" + name_, ec);
    std::filesystem::remove("/etc/netns", ec);  // only when empty
}

}  // namespace testsupport
