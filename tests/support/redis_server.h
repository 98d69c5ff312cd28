// A real redis-server for tests, on a private port and unix socket, in a temp
// dir, stopped by PID.
#pragma once

#include <memory>
#include <string>

#include "redis/client.h"
#include "support/process.h"

namespace testsupport {

class RedisServer {
public:
    RedisServer();  // starts it and waits until it answers PING
    ~RedisServer();

    int port() const { return port_; }
    std::string socket_path() const { return dir_.file("redis.sock"); }
    std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
    proto::redis::Url parsed_url() const { return proto::redis::Url::parse(url()); }
    pid_t pid() const { return process_.pid(); }

    // Stop and start again on the same port (data is not persisted).
    void stop();
    void start();
    void pause();   // SIGSTOP: connections stay open, nothing is answered
    void resume();  // SIGCONT
    proto::redis::Reply command(const std::vector<std::string>& args) const;
    void flushall() const;

private:
    TempDir dir_;
    int port_;
    Process process_;
};

}  // namespace testsupport
