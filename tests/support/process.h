// Test helpers: child processes stopped by PID, temp dirs, free ports, waiting
// for a listener without sleeping blindly.
#pragma once

#include <chrono>
#include <string>
#include <sys/types.h>
#include <vector>

namespace testsupport {

std::string build_dir();   // CMake binary dir
std::string source_dir();  // project root

class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }
    void write(const std::string& name, const std::string& content) const;

private:
    std::string path_;
};

// A port that was free a moment ago (bound to 127.0.0.1:0 and released).
int free_port();

// Block until something accepts TCP on host:port, or throw after timeout.
void wait_for_tcp(const std::string& host, int port,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10));
void wait_for_unix(const std::string& path,
                   std::chrono::milliseconds timeout = std::chrono::seconds(10));

class Process {
public:
    Process() = default;
    // argv[0] is the program path; stdout/stderr go to log_path if given.
    explicit Process(std::vector<std::string> argv, const std::string& log_path = "",
                     std::vector<std::string> extra_env = {});
    ~Process();
    Process(Process&& other) noexcept;
    Process& operator=(Process&& other) noexcept;

    pid_t pid() const { return pid_; }
    bool running();
    void signal(int sig) const;
    // SIGTERM, wait up to timeout, then SIGKILL. Returns the exit status (wait(2) form).
    int stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // Wait for exit up to timeout; returns the status, or -1 on timeout.
    int wait(std::chrono::milliseconds timeout);
    void kill9();

private:
    pid_t pid_ = -1;
    int status_ = -1;
};

// Run a command to completion; returns exit code and captured stdout+stderr.
struct RunResult {
    int exit_code;
    std::string output;
};
RunResult run(const std::vector<std::string>& argv, const std::string& stdin_data = "",
              std::chrono::milliseconds timeout = std::chrono::seconds(60));

std::string read_file(const std::string& path);

}  // namespace testsupport
