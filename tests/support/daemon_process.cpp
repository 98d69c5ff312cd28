// Daemon child processes for tests (see daemon_process.h).
#include "support/daemon_process.h"

#include <chrono>

namespace testsupport {

DaemonProcess::DaemonProcess(const TempDir& dir, Options options, nlohmann::json config)
    : dir_(dir), options_(std::move(options)) {
    if (!options_.unix_socket) port_ = free_port();
    rewrite_config(std::move(config));
    start(options_.redis_url);
}

DaemonProcess::~DaemonProcess() { process_.stop(); }

std::vector<std::string> DaemonProcess::base_argv() const {
    std::vector<std::string> argv = options_.wrapper;
    argv.insert(argv.end(), {options_.program, "--config", dir_.file(options_.name + ".json")});
    if (!options_.redis_url.empty()) argv.insert(argv.end(), {"--redis", options_.redis_url});
    return argv;
}

void DaemonProcess::start(const std::string& redis_url) {
    options_.redis_url = redis_url;
    std::vector<std::string> argv = base_argv();
    argv.push_back("--listen");
    argv.push_back(options_.unix_socket ? "unix:" + socket_path()
                                        : "inet:127.0.0.1:" + std::to_string(port_));
    process_ = Process(argv, log_path());
    if (options_.unix_socket)
        wait_for_unix(socket_path());
    else
        wait_for_tcp("127.0.0.1", port_);
}

void DaemonProcess::rewrite_config(nlohmann::json config) const {
    // `start({})` hands over a JSON null, not an empty object.
    if (config.is_null()) config = nlohmann::json::object();
    dir_.write(options_.name + ".json", config.dump());
}

int DaemonProcess::stop() { return process_.stop(); }

void DaemonProcess::signal(int sig) { process_.signal(sig); }

std::string DaemonProcess::log() const { return read_file(log_path()); }

bool DaemonProcess::log_has(const std::string& text) const {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    do {
        if (log().find(text) != std::string::npos) return true;
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
}

std::unique_ptr<PolicyConn> DaemonProcess::connect() const {
    if (options_.unix_socket) return std::make_unique<PolicyConn>(socket_path());
    return std::make_unique<PolicyConn>("127.0.0.1", port_);
}

RunResult DaemonProcess::command(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = base_argv();
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
}

}  // namespace testsupport
