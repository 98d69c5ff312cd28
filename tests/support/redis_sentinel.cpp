// A real Sentinel setup for tests. See redis_sentinel.h.
#include "support/redis_sentinel.h"

#include <stdexcept>
#include <thread>

namespace testsupport {

namespace {

using namespace std::chrono_literals;
using proto::redis::Reply;
constexpr auto start_budget = 30s;

Reply ask(int port, const std::vector<std::string>& args) {
    return proto::redis::command_sync(proto::redis::Url::parse("redis://127.0.0.1:" + std::to_string(port)),
                                      args, 500ms);
}

// SENTINEL replies are flat name/value arrays per entry.
std::size_t count_entries(const Reply& r) { return r.type == Reply::Type::array ? r.elements.size() : 0; }

}  // namespace

RedisSentinel::RedisSentinel() {
    for (int i = 0; i < data_nodes; ++i) {
        data_ports_[i] = free_port();
        std::vector<std::string> argv{"redis-server", "--port", std::to_string(data_ports_[i]), "--bind", "127.0.0.1",
                                      "--dir", dir_.path(), "--save", "", "--appendonly", "no",
                                      "--dbfilename", "dump-" + std::to_string(i) + ".rdb", "--daemonize", "no"};
        if (i > 0)
            for (const std::string& arg : {std::string("--replicaof"), std::string("127.0.0.1"),
                                           std::to_string(data_ports_[0])})
                argv.push_back(arg);
        data_[i] = Process(argv, dir_.file("data-" + std::to_string(i) + ".log"));
    }
    for (int i = 0; i < sentinels; ++i) {
        sentinel_ports_[i] = free_port();
        std::string conf = "sentinel-" + std::to_string(i) + ".conf";
        dir_.write(conf, "port " + std::to_string(sentinel_ports_[i]) + "\nbind 127.0.0.1\ndir " + dir_.path() +
                             "\nsentinel monitor " + master_name + " 127.0.0.1 " + std::to_string(data_ports_[0]) +
                             " 2\nsentinel down-after-milliseconds " + master_name +
                             " 1000\nsentinel failover-timeout " + master_name +
                             " 5000\nsentinel parallel-syncs " + master_name + " 1\n");
        sentinel_[i] = Process({"redis-server", dir_.file(conf), "--sentinel"},
                               dir_.file("sentinel-" + std::to_string(i) + ".log"));
    }
    const auto deadline = std::chrono::steady_clock::now() + start_budget;
    for (;;) {
        bool ready = true;
        try {
            for (int i = 1; i < data_nodes && ready; ++i) {
                Reply info = ask(data_ports_[i], {"INFO", "replication"});
                ready = info.str.find("master_link_status:up") != std::string::npos;
            }
            for (int i = 0; i < sentinels && ready; ++i) {
                ready = count_entries(ask(sentinel_ports_[i], {"SENTINEL", "replicas", master_name})) == 2 &&
                        count_entries(ask(sentinel_ports_[i], {"SENTINEL", "sentinels", master_name})) == 2;
            }
        } catch (const std::exception&) {
            ready = false;
        }
        if (ready) return;
        if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("Sentinel setup not ready in time");
        std::this_thread::sleep_for(50ms);  // polling interval, not synchronisation
    }
}

RedisSentinel::~RedisSentinel() {
    for (auto& process : sentinel_) process.stop(2s);
    for (auto& process : data_) process.stop(2s);
}

std::string RedisSentinel::url() const {
    std::string out = "redis-sentinel://";
    for (int i = 0; i < sentinels; ++i) {
        if (i) out += ',';
        out += "127.0.0.1:" + std::to_string(sentinel_ports_[i]);
    }
    return out + "/" + master_name;
}

Reply RedisSentinel::command(int node, const std::vector<std::string>& args) const {
    return ask(data_ports_[node], args);
}

Reply RedisSentinel::sentinel_command(int sentinel, const std::vector<std::string>& args) const {
    return ask(sentinel_ports_[sentinel], args);
}

int RedisSentinel::master() const {
    for (int s = 0; s < sentinels; ++s) {
        try {
            Reply r = ask(sentinel_ports_[s], {"SENTINEL", "get-master-addr-by-name", master_name});
            if (r.elements.size() != 2) continue;
            for (int i = 0; i < data_nodes; ++i)
                if (std::to_string(data_ports_[i]) == r.elements[1].str) return i;
        } catch (const std::exception&) {
        }
    }
    return -1;
}

}  // namespace testsupport
