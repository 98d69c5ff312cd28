// A real 3+3 Redis Cluster for tests. See redis_cluster.h.
#include "support/redis_cluster.h"

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

bool contains(const Reply& r, const std::string& text) {
    return r.type == Reply::Type::string && r.str.find(text) != std::string::npos;
}

}  // namespace

RedisCluster::RedisCluster() {
    for (int i = 0; i < size; ++i) start_node(i);
    std::vector<std::string> create{"redis-cli", "--cluster", "create"};
    for (int port : ports_) create.push_back("127.0.0.1:" + std::to_string(port));
    for (const char* arg : {"--cluster-replicas", "1", "--cluster-yes"}) create.push_back(arg);
    Process creator(create, dir_.file("create.log"));
    int status = creator.wait(start_budget);
    if (status != 0)
        throw std::runtime_error("redis-cli --cluster create failed; log:\n" + read_file(dir_.file("create.log")));
    const auto deadline = std::chrono::steady_clock::now() + start_budget;
    for (;;) {
        bool ready = true;
        try {
            for (int i = 0; i < size && ready; ++i) {
                Reply info = ask(ports_[i], {"CLUSTER", "INFO"});
                ready = contains(info, "cluster_state:ok") && contains(info, "cluster_slots_ok:16384");
                Reply replication = ask(ports_[i], {"INFO", "replication"});
                if (contains(replication, "role:slave"))
                    ready = ready && contains(replication, "master_link_status:up");
            }
        } catch (const std::exception&) {
            ready = false;
        }
        if (ready) return;
        if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("Redis Cluster not ready in time");
        std::this_thread::sleep_for(50ms);  // polling interval, not synchronisation
    }
}

// A node that exits before it listens (a port taken by another program between
// free_port() and its bind) is started again on other ports; its log is kept in
// the error when it never comes up.
void RedisCluster::start_node(int i) {
    const std::string log = dir_.file("node-" + std::to_string(i) + ".log");
    for (int attempt = 0; attempt < 3; ++attempt) {
        ports_[i] = free_port();
        int bus = free_port();
        processes_[i] = Process({"redis-server", "--port", std::to_string(ports_[i]), "--bind", "127.0.0.1",
                                 "--cluster-enabled", "yes", "--cluster-port", std::to_string(bus),
                                 "--cluster-config-file", dir_.file("nodes-" + std::to_string(i) + ".conf"),
                                 "--cluster-node-timeout", "2000", "--cluster-require-full-coverage", "no",
                                 "--dir", dir_.path(), "--save", "", "--appendonly", "no",
                                 "--daemonize", "no"},
                                log);
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (processes_[i].running() && std::chrono::steady_clock::now() < deadline) {
            try {
                wait_for_tcp("127.0.0.1", ports_[i], 100ms);
                return;
            } catch (const std::exception&) {
            }
        }
        processes_[i].stop(2s);
    }
    throw std::runtime_error("Redis Cluster node " + std::to_string(i) + " did not listen; log:\n" + read_file(log));
}

RedisCluster::~RedisCluster() {
    for (auto& process : processes_) process.stop(2s);
}

std::string RedisCluster::url(int seeds) const {
    std::string out = "redis-cluster://";
    for (int i = 0; i < seeds; ++i) {
        if (i) out += ',';
        out += "127.0.0.1:" + std::to_string(ports_[i]);
    }
    return out;
}

Reply RedisCluster::command(int node, const std::vector<std::string>& args) const {
    return ask(ports_[node], args);
}

int RedisCluster::master_of(int slot) const {
    for (int i = 0; i < size; ++i) {
        Reply slots;
        try {
            slots = ask(ports_[i], {"CLUSTER", "SLOTS"});
        } catch (const std::exception&) {
            continue;
        }
        if (slots.type != Reply::Type::array) continue;
        for (const auto& range : slots.elements) {
            if (range.elements.size() < 3 || slot < range.elements[0].integer || slot > range.elements[1].integer)
                continue;
            long long port = range.elements[2].elements.at(1).integer;
            for (int j = 0; j < size; ++j)
                if (ports_[j] == port) return j;
        }
        return -1;
    }
    return -1;
}

void RedisCluster::kill9(int node) { processes_[node].kill9(); }

int RedisCluster::new_master(int slot, int dead) {
    for (int i = 0; i < size; ++i) {
        if (i == dead || !alive(i)) continue;
        try {
            Reply role = ask(ports_[i], {"ROLE"});
            if (role.type != Reply::Type::array || role.elements.empty() || role.elements[0].str != "master")
                continue;
            if (master_of(slot) == i) return i;
        } catch (const std::exception&) {
        }
    }
    return -1;
}

}  // namespace testsupport
