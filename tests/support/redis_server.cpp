// A real redis-server for tests: private TCP port and unix socket in a temp
// dir, no persistence, started as a child process and stopped by PID.
//
// Readiness is "PING answers", polled with short connection attempts against
// a deadline; a server that exits during start-up (e.g. the free port was
// taken by someone else in between) is retried on a new port.

#include "support/redis_server.h"

#include <signal.h>

#include <stdexcept>
#include <thread>

namespace testsupport {

namespace {

using namespace std::chrono_literals;

// Found through PATH, so a check can take it away (tests/must-fail.sh).
constexpr const char* redis_binary = "redis-server";
constexpr auto start_timeout = 10s;
constexpr int start_attempts = 3;

// Polls PING until it answers, the process dies, or the deadline passes.
// Returns true when it answered.
bool wait_until_ready(Process& process, const std::string& url) {
    const auto deadline = std::chrono::steady_clock::now() + start_timeout;
    auto poll_interval = 1ms;
    while (std::chrono::steady_clock::now() < deadline) {
        if (!process.running()) return false;
        try {
            auto reply = proto::redis::command_sync(proto::redis::Url::parse(url), {"PING"}, 200ms);
            if (reply.type == proto::redis::Reply::Type::status && reply.str == "PONG") return true;
        } catch (const std::exception&) {
            // Not listening yet.
        }
        std::this_thread::sleep_for(poll_interval);  // polling interval, not synchronisation
        poll_interval = std::min(poll_interval * 2, std::chrono::milliseconds(20));
    }
    throw std::runtime_error("redis-server did not answer PING at " + url);
}

}  // namespace

RedisServer::RedisServer() : port_(free_port()) {
    for (int attempt = 1;; ++attempt) {
        try {
            start();
            return;
        } catch (const std::exception&) {
            if (attempt == start_attempts) throw;
            port_ = free_port();
        }
    }
}

RedisServer::~RedisServer() {
    // A paused server would ignore SIGTERM until the stop timeout.
    process_.signal(SIGCONT);
    process_.stop();
}

void RedisServer::start() {
    std::vector<std::string> argv = {redis_binary,
                                     "--port", std::to_string(port_),
                                     "--bind", "127.0.0.1",
                                     "--unixsocket", socket_path(),
                                     "--unixsocketperm", "700",
                                     "--dir", dir_.path(),
                                     "--save", "",
                                     "--appendonly", "no",
                                     "--daemonize", "no"};
    process_ = Process(argv, dir_.file("redis.log"));
    if (!wait_until_ready(process_, url())) {
        process_.stop();
        throw std::runtime_error("redis-server exited during start-up on port " +
                                 std::to_string(port_) + "; log:\n" +
                                 read_file(dir_.file("redis.log")));
    }
}

void RedisServer::stop() {
    process_.signal(SIGCONT);
    process_.stop();
}

void RedisServer::pause() { process_.signal(SIGSTOP); }

void RedisServer::resume() { process_.signal(SIGCONT); }

proto::redis::Reply RedisServer::command(const std::vector<std::string>& args) const {
    return proto::redis::command_sync(parsed_url(), args);
}

void RedisServer::flushall() const {
    auto reply = command({"FLUSHALL"});
    if (reply.is_error()) throw std::runtime_error("FLUSHALL failed: " + reply.str);
}

}  // namespace testsupport
