// A real Sentinel setup for tests: one master, two replicas and three
// sentinels from Debian's redis-server on free ports in a temp dir, with
// down-after-milliseconds 1000 and failover-timeout 5000 so a failover takes
// seconds. Ready means both replicas' links are up and every sentinel knows
// the master, both replicas and the two other sentinels. Stopped by PID.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "redis/client.h"
#include "support/process.h"

namespace testsupport {

class RedisSentinel {
public:
    static constexpr int data_nodes = 3;  // 0 is the first master
    static constexpr int sentinels = 3;
    static constexpr const char* master_name = "mymaster";
    RedisSentinel();
    ~RedisSentinel();

    std::string url() const;  // redis-sentinel://127.0.0.1:S1,.../mymaster
    int data_port(int node) const { return data_ports_[node]; }
    proto::redis::Reply command(int node, const std::vector<std::string>& args) const;
    proto::redis::Reply sentinel_command(int sentinel, const std::vector<std::string>& args) const;
    // The data node the first answering sentinel names as master, or -1.
    int master() const;
    void kill9(int node) { data_[node].kill9(); }

private:
    TempDir dir_;
    std::array<int, data_nodes> data_ports_{};
    std::array<int, sentinels> sentinel_ports_{};
    std::array<Process, data_nodes> data_;
    std::array<Process, sentinels> sentinel_;
};

}  // namespace testsupport
