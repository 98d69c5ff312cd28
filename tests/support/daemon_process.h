// One of this project's daemons as a child process for tests: its JSON
// config and log in a temp dir, listening on a free loopback port (or a unix
// socket in that dir), stopped by PID. Also runs its operator commands with
// the same config.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/policy_conn.h"
#include "support/process.h"

namespace testsupport {

class DaemonProcess {
public:
    struct Options {
        std::string program;               // the built binary
        std::string name;                  // NAME.json, NAME.log, NAME.sock in the dir
        std::string redis_url;             // passed as --redis unless empty
        std::vector<std::string> wrapper;  // run under this, e.g. ip netns exec NS
        bool unix_socket = false;          // listen on NAME.sock, not on a free port
    };

    // Writes the config (a JSON null becomes an empty object), starts the
    // daemon and waits until it accepts connections.
    DaemonProcess(const TempDir& dir, Options options, nlohmann::json config);
    ~DaemonProcess();
    DaemonProcess(const DaemonProcess&) = delete;
    DaemonProcess& operator=(const DaemonProcess&) = delete;

    // Start again (after stop()), with this Redis.
    void start(const std::string& redis_url);
    void rewrite_config(nlohmann::json config) const;
    int stop();
    void signal(int sig);
    pid_t pid() const { return process_.pid(); }
    // Wait for the daemon to exit by itself; the exit status (wait(2) form).
    int wait(std::chrono::milliseconds timeout) { return process_.wait(timeout); }
    int port() const { return port_; }
    std::string socket_path() const { return dir_.file(options_.name + ".sock"); }
    std::string log_path() const { return dir_.file(options_.name + ".log"); }
    std::string log() const;
    // Log lines may reach the file after the reply (the server batches
    // decision lines): poll for one, with a deadline.
    bool log_has(const std::string& text) const;
    std::unique_ptr<PolicyConn> connect() const;
    // The program with its config and Redis, then args (an operator command).
    RunResult command(const std::vector<std::string>& args) const;

private:
    std::vector<std::string> base_argv() const;

    const TempDir& dir_;
    Options options_;
    int port_ = 0;
    Process process_;
};

}  // namespace testsupport
