// Tests of the Redis address forms and the Redis Cluster codec, no server:
// URL forms with credentials, TLS, Sentinel and Cluster; CRC16 and key slots
// with the spec's vectors; CLUSTER SLOTS and CLUSTER SHARDS replies decoded
// from RESP bytes (every split of one reply too); redirect classification.

#include <gtest/gtest.h>

#include "redis/cluster.h"

namespace {

using proto::redis::HostPort;
using proto::redis::Reply;
using proto::redis::Url;
namespace cluster = proto::redis::cluster;

TEST(RedisUrlForms, TlsSentinelAndCluster) {
    Url tls = Url::parse("rediss://app:pw@redis.example:6380/2");
    EXPECT_TRUE(tls.tls.enabled);
    EXPECT_EQ(tls.topology, Url::Topology::single);
    EXPECT_EQ(tls.host, "redis.example");
    EXPECT_EQ(tls.port, 6380);
    EXPECT_EQ(tls.db, 2);
    EXPECT_EQ(tls.username, "app");
    EXPECT_EQ(tls.to_string(), "rediss://app:***@redis.example:6380/2");

    Url sentinel = Url::parse("redis-sentinel://:s3cret@10.0.0.1,10.0.0.2:26380,[::1]/mymaster/3");
    EXPECT_EQ(sentinel.topology, Url::Topology::sentinel);
    ASSERT_EQ(sentinel.seeds.size(), 3u);
    EXPECT_EQ(sentinel.seeds[0], (HostPort{"10.0.0.1", 26379}));
    EXPECT_EQ(sentinel.seeds[1], (HostPort{"10.0.0.2", 26380}));
    EXPECT_EQ(sentinel.seeds[2], (HostPort{"::1", 26379}));
    EXPECT_EQ(sentinel.master_name, "mymaster");
    EXPECT_EQ(sentinel.db, 3);
    EXPECT_EQ(sentinel.password, "s3cret");
    EXPECT_EQ(sentinel.to_string(),
              "redis-sentinel://:***@10.0.0.1:26379,10.0.0.2:26380,[::1]:26379/mymaster/3");

    Url cluster_url = Url::parse("redis-cluster://alice:p%40ss@n1:7000,n2:7001,n3");
    EXPECT_EQ(cluster_url.topology, Url::Topology::cluster);
    ASSERT_EQ(cluster_url.seeds.size(), 3u);
    EXPECT_EQ(cluster_url.seeds[2], (HostPort{"n3", 6379}));
    EXPECT_EQ(cluster_url.password, "p@ss");
    EXPECT_EQ(cluster_url.to_string(), "redis-cluster://alice:***@n1:7000,n2:7001,n3:6379");

    // A node of a topology keeps credentials, TLS and database.
    Url node = sentinel.node(HostPort{"10.9.9.9", 6390});
    EXPECT_EQ(node.topology, Url::Topology::single);
    EXPECT_EQ(node.password, "s3cret");
    EXPECT_EQ(node.db, 3);
    EXPECT_EQ(node.to_string(), "redis://:***@10.9.9.9:6390/3");

    for (const char* bad : {"redis-sentinel://h1,h2", "redis-sentinel://h1/", "redis-sentinel://,h/m",
                            "redis-cluster://", "redis-cluster://h1,,h2", "redis-cluster://h:7000/1",
                            "redis-cluster://h:0", "rediss://", "redis-cluster://pw@h"}) {
        EXPECT_THROW(Url::parse(bad), std::invalid_argument) << "accepted: '" << bad << "'";
    }
    // Error messages never quote a password.
    try {
        Url::parse("redis-cluster://:hunter2@h:99999");
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
    }
}

TEST(RedisClusterCodec, Crc16AndKeySlotsFromTheSpec) {
    // The spec's check value for CRC16-XMODEM.
    EXPECT_EQ(cluster::crc16("123456789"), 0x31C3);
    EXPECT_EQ(cluster::key_slot("foo"), 12182);
    EXPECT_EQ(cluster::key_slot("bar"), 5061);
    EXPECT_EQ(cluster::key_slot(""), 0);
    // Hash tags (spec, "Hash tags").
    EXPECT_EQ(cluster::key_slot("{user1000}.following"), cluster::key_slot("{user1000}.followers"));
    EXPECT_EQ(cluster::key_slot("{user1000}.following"), cluster::key_slot("user1000"));
    EXPECT_EQ(cluster::key_slot("foo{}{bar}"), cluster::crc16("foo{}{bar}") & 16383);
    EXPECT_EQ(cluster::key_slot("foo{{bar}}zap"), cluster::key_slot("{bar"));
    EXPECT_EQ(cluster::key_slot("foo{bar}{zap}"), cluster::key_slot("bar"));
    EXPECT_EQ(cluster::key_slot("foo{bar"), cluster::crc16("foo{bar") & 16383);
    // The daemons' layout: every key of one decision shares the braces.
    EXPECT_EQ(cluster::key_slot("mp:g:{abc}"), cluster::key_slot("mp:w:{abc}"));
}

// A CLUSTER SLOTS reply as Redis 7.0 sends it (hostname metadata as an
// empty map); one node reports "" for its own address.
const std::string slots_reply =
    "*2\r\n"
    "*4\r\n:0\r\n:8191\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:7000\r\n$40\r\n0123456789012345678901234567890123456789\r\n*0\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:7003\r\n$40\r\n1123456789012345678901234567890123456789\r\n*0\r\n"
    "*3\r\n:8192\r\n:16383\r\n"
    "*3\r\n$0\r\n\r\n:7001\r\n$40\r\n2123456789012345678901234567890123456789\r\n";

TEST(RedisClusterCodec, ParsesClusterSlots) {
    auto reply = cluster::decode_reply(slots_reply);
    ASSERT_TRUE(reply);
    std::string error;
    auto map = cluster::parse_slots(*reply, HostPort{"10.0.0.5", 7001}, &error);
    ASSERT_TRUE(map) << error;
    ASSERT_EQ(map->ranges.size(), 2u);
    EXPECT_TRUE(map->covers_all());
    EXPECT_EQ(map->find(0)->master, (HostPort{"127.0.0.1", 7000}));
    EXPECT_EQ(map->find(8191)->replicas.at(0), (HostPort{"127.0.0.1", 7003}));
    EXPECT_EQ(map->find(8192)->master, (HostPort{"10.0.0.5", 7001}));  // "" is who answered
    EXPECT_EQ(map->masters().size(), 2u);
    EXPECT_EQ(map->nodes().size(), 3u);

    // Every split: a prefix is incomplete, never a wrong map.
    for (std::size_t cut = 0; cut < slots_reply.size(); ++cut)
        EXPECT_FALSE(cluster::decode_reply(std::string_view(slots_reply).substr(0, cut))) << cut;

    // Gaps are allowed (a failed master's slots) and found as gaps.
    Reply partial = *reply;
    partial.elements.pop_back();
    auto gap = cluster::parse_slots(partial, HostPort{"h", 1});
    ASSERT_TRUE(gap);
    EXPECT_FALSE(gap->covers_all());
    EXPECT_EQ(gap->find(9000), nullptr);

    // Malformed: overlap, slot out of range, not an array, bad port.
    Reply overlap = *reply;
    overlap.elements[1].elements[0].integer = 8000;
    EXPECT_FALSE(cluster::parse_slots(overlap, HostPort{"h", 1}, &error));
    EXPECT_EQ(error, "overlapping slot ranges");
    Reply out_of_range = *reply;
    out_of_range.elements[1].elements[1].integer = 16384;
    EXPECT_FALSE(cluster::parse_slots(out_of_range, HostPort{"h", 1}));
    Reply bad_port = *reply;
    bad_port.elements[0].elements[2].elements[1].integer = 0;
    EXPECT_FALSE(cluster::parse_slots(bad_port, HostPort{"h", 1}));
    // An array header larger than the reader's bound is refused, not
    // allocated (found by fuzzing: hiredis' own reader callocs it).
    EXPECT_FALSE(cluster::decode_reply("*1555555555\r\n:0\r\n"));
    Reply not_array;
    not_array.type = Reply::Type::string;
    EXPECT_FALSE(cluster::parse_slots(not_array, HostPort{"h", 1}));
}

std::string bulk(const std::string& text) {
    return "$" + std::to_string(text.size()) + "\r\n" + text + "\r\n";
}

std::string shard_node(const std::string& ip, int port, const std::string& role, const std::string& health) {
    return "*14\r\n" + bulk("id") + bulk(std::string(40, 'a')) + bulk("port") + ":" + std::to_string(port) +
           "\r\n" + bulk("ip") + bulk(ip) + bulk("endpoint") + bulk(ip) + bulk("role") + bulk(role) +
           bulk("replication-offset") + ":72156\r\n" + bulk("health") + bulk(health);
}

TEST(RedisClusterCodec, ParsesClusterShards) {
    std::string shards = "*2\r\n"
                         "*4\r\n" + bulk("slots") + "*4\r\n:0\r\n:99\r\n:200\r\n:8191\r\n" + bulk("nodes") +
                         "*2\r\n" + shard_node("127.0.0.1", 7000, "master", "online") +
                         shard_node("127.0.0.1", 7003, "replica", "online") +
                         "*4\r\n" + bulk("slots") + "*2\r\n:8192\r\n:16383\r\n" + bulk("nodes") +
                         "*2\r\n" + shard_node("127.0.0.1", 7001, "master", "fail") +
                         shard_node("127.0.0.1", 7004, "master", "online");
    auto reply = cluster::decode_reply(shards);
    ASSERT_TRUE(reply);
    std::string error;
    auto map = cluster::parse_shards(*reply, HostPort{"h", 1}, false, &error);
    ASSERT_TRUE(map) << error;
    ASSERT_EQ(map->ranges.size(), 3u);
    EXPECT_EQ(map->find(50)->master, (HostPort{"127.0.0.1", 7000}));
    EXPECT_EQ(map->find(150), nullptr);
    EXPECT_EQ(map->find(300)->replicas.at(0), (HostPort{"127.0.0.1", 7003}));
    EXPECT_EQ(map->find(9000)->master, (HostPort{"127.0.0.1", 7004}));  // the failed one is left out
}

TEST(RedisClusterCodec, ClassifiesErrors) {
    auto error = [](const std::string& text) {
        Reply r;
        r.type = Reply::Type::error;
        r.str = text;
        return cluster::classify(r);
    };
    auto moved = error("MOVED 3999 127.0.0.1:6381");
    EXPECT_EQ(moved.kind, cluster::ErrorKind::moved);
    EXPECT_EQ(moved.slot, 3999);
    EXPECT_EQ(moved.target, (HostPort{"127.0.0.1", 6381}));
    auto ask = error("ASK 12182 :7002");
    EXPECT_EQ(ask.kind, cluster::ErrorKind::ask);
    EXPECT_EQ(ask.target, (HostPort{"", 7002}));  // the host of the node asked
    auto v6 = error("MOVED 1 ::1:7000");
    EXPECT_EQ(v6.target, (HostPort{"::1", 7000}));
    EXPECT_EQ(error("TRYAGAIN Multiple keys request during rehashing of slot").kind,
              cluster::ErrorKind::tryagain);
    EXPECT_EQ(error("CLUSTERDOWN The cluster is down").kind, cluster::ErrorKind::clusterdown);
    EXPECT_EQ(error("NOSCRIPT No matching script. Please use EVAL.").kind, cluster::ErrorKind::noscript);
    EXPECT_EQ(error("READONLY You can't write against a read only replica.").kind,
              cluster::ErrorKind::readonly);
    EXPECT_EQ(error("LOADING Redis is loading the dataset in memory").kind, cluster::ErrorKind::loading);
    EXPECT_EQ(error("MASTERDOWN Link with MASTER is down").kind, cluster::ErrorKind::masterdown);
    EXPECT_EQ(error("ERR unknown command").kind, cluster::ErrorKind::other);
    for (const char* bad : {"MOVED", "MOVED 16384 h:1", "MOVED x h:1", "MOVED 1 h", "MOVED 1 h:0", "ASK 1 h:x"})
        EXPECT_EQ(error(bad).kind, cluster::ErrorKind::other) << bad;
    Reply ok;
    ok.type = Reply::Type::status;
    ok.str = "MOVED 1 h:1";
    EXPECT_EQ(cluster::classify(ok).kind, cluster::ErrorKind::none);
}

}  // namespace
