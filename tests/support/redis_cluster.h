// A real Redis Cluster for tests: 3 masters and 3 replicas from Debian's
// redis-server on free ports in a temp dir, made with
// `redis-cli --cluster create --cluster-replicas 1`, with a 2 s node timeout
// so a failover takes seconds. Ready means every node says cluster_state:ok
// with all 16384 slots and every replica's link to its master is up. Nodes
// are stopped by PID.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "redis/client.h"
#include "support/process.h"

namespace testsupport {

class RedisCluster {
public:
    static constexpr int size = 6;
    RedisCluster();  // throws when the cluster does not come up within its budget
    ~RedisCluster();

    int port(int node) const { return ports_[node]; }
    // redis-cluster://127.0.0.1:P,... with `seeds` nodes, first node first.
    std::string url(int seeds = 3) const;
    proto::redis::Reply command(int node, const std::vector<std::string>& args) const;
    // The node serving `slot` as master now (by asking node `ask`), -1 if none.
    int master_of(int slot) const;
    void kill9(int node);
    bool alive(int node) { return processes_[node].running(); }
    // A live node other than `dead` that is master of `slot` now, or -1 (one look, no waiting).
    int new_master(int slot, int dead);

private:
    void start_node(int node);

    TempDir dir_;
    std::array<int, size> ports_{};
    std::array<Process, size> processes_;
};

}  // namespace testsupport
