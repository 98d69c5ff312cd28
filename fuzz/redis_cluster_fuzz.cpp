// Fuzz the Redis Cluster codec: any RESP reply is either a slot map whose
// ranges are sorted, disjoint and findable, or refused; classification and
// key slots never fail.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "redis/cluster.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace cluster = proto::redis::cluster;
    std::string_view input(reinterpret_cast<const char*>(data), size);
    if (cluster::key_slot(input) >= cluster::slot_count) std::abort();
    auto reply = cluster::decode_reply(input);
    if (!reply) return 0;
    cluster::classify(*reply);
    proto::redis::HostPort self{"127.0.0.1", 7000};
    for (int form = 0; form < 2; ++form) {
        auto map = form == 0 ? cluster::parse_slots(*reply, self)
                             : cluster::parse_shards(*reply, self, false);
        if (!map) continue;
        for (std::size_t i = 0; i < map->ranges.size(); ++i) {
            const auto& range = map->ranges[i];
            if (range.first > range.last || range.master.host.empty()) std::abort();
            if (i > 0 && map->ranges[i - 1].last >= range.first) std::abort();
            if (map->find(range.first) != &range || map->find(range.last) != &range) std::abort();
        }
        map->covers_all();
        map->nodes();
    }
    return 0;
}
