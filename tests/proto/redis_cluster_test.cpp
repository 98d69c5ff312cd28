// The Redis Cluster client against a real 3+3 cluster (support/redis_cluster.h):
// routing by the first key (each key lands on the master serving its slot),
// scripts by their first key with one-slot keys enforced, NOSCRIPT after
// SCRIPT FLUSH on one node, a live slot migration (ASK, then MOVED) while
// calls flow, and a master killed under load: every call answered within its
// deadline plus 50 ms, and answers from the promoted replica within 10 s.
//
// Each test has a time budget; the io_context is driven until a condition
// holds or the budget ends.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <set>

#include "redis/client.h"
#include "redis/cluster.h"
#include "support/redis_cluster.h"
#include "support/watcher.h"

namespace {

namespace asio = boost::asio;
namespace cluster = proto::redis::cluster;
using namespace std::chrono_literals;
using proto::redis::Client;
using proto::redis::Failure;
using proto::redis::Reply;
using proto::redis::Result;
using proto::redis::Script;
using proto::redis::Url;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

class RedisClusterTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() { cluster_ = std::make_unique<testsupport::RedisCluster>(); }
    static void TearDownTestSuite() { cluster_.reset(); }

    void run_until(const std::function<bool()>& done, milliseconds budget) {
        auto end = steady_clock::now() + budget;
        while (!done() && steady_clock::now() < end) io_.run_one_for(20ms);
    }

    Result call(Client& client, std::vector<std::string> args, milliseconds deadline = 2000ms) {
        std::optional<Result> out;
        asio::co_spawn(io_, client.command(std::move(args), deadline),
                       [&](std::exception_ptr, Result r) { out = std::move(r); });
        run_until([&] { return out.has_value(); }, deadline + 1000ms);
        if (!out) return Result{Failure::timeout, "test: no completion", {}};
        return std::move(*out);
    }

    Result eval(Client& client, const Script& script, std::vector<std::string> keys,
                std::vector<std::string> args, milliseconds deadline = 2000ms) {
        std::optional<Result> out;
        asio::co_spawn(io_, client.eval(script, std::move(keys), std::move(args), deadline),
                       [&](std::exception_ptr, Result r) { out = std::move(r); });
        run_until([&] { return out.has_value(); }, deadline + 1000ms);
        if (!out) return Result{Failure::timeout, "test: no completion", {}};
        return std::move(*out);
    }

    static std::unique_ptr<testsupport::RedisCluster> cluster_;
    asio::io_context io_;
};

std::unique_ptr<testsupport::RedisCluster> RedisClusterTest::cluster_;

TEST_F(RedisClusterTest, RoutesEachKeyToTheMasterOfItsSlot) {
    const auto started = steady_clock::now();
    Client client(io_.get_executor(), Url::parse(cluster_->url(1)));  // one seed finds the rest
    client.start();
    std::set<int> masters_used;
    for (int i = 0; i < 60; ++i) {
        std::string key = "route:" + std::to_string(i);
        Result set = call(client, {"SET", key, "v" + std::to_string(i)});
        ASSERT_TRUE(set.ok()) << set.error << set.reply.str;
        int owner = cluster_->master_of(cluster::key_slot(key));
        ASSERT_GE(owner, 0);
        masters_used.insert(owner);
        // Asked directly, the owner has it (any other node would say MOVED).
        Reply direct = cluster_->command(owner, {"GET", key});
        EXPECT_EQ(direct.str, "v" + std::to_string(i)) << key;
        Result get = call(client, {"GET", key});
        EXPECT_EQ(get.reply.str, "v" + std::to_string(i));
    }
    EXPECT_EQ(masters_used.size(), 3u);
    // Our slot function agrees with the server's.
    for (const char* key : {"foo", "{user1000}.following", "foo{}{bar}", "mp:g:{abc}"}) {
        Result slot = call(client, {"CLUSTER", "KEYSLOT", key});
        EXPECT_EQ(slot.reply.integer, cluster::key_slot(key)) << key;
    }
    auto stats = client.stats();
    EXPECT_GE(stats.refreshes, 1u);
    EXPECT_TRUE(client.connected());
    client.stop();
    EXPECT_LT(steady_clock::now() - started, 10s);
}

TEST_F(RedisClusterTest, ScriptsRouteByFirstKeyAndReloadOnNoscript) {
    const auto started = steady_clock::now();
    Client client(io_.get_executor(), Url::parse(cluster_->url()));
    client.start();
    Script incr("return redis.call('INCR', KEYS[1]) + redis.call('INCR', KEYS[2]) * 0");
    Result first = eval(client, incr, {"s:{t1}:a", "s:{t1}:b"}, {});
    ASSERT_TRUE(first.ok()) << first.error << first.reply.str;
    EXPECT_EQ(first.reply.integer, 1);
    // The script cache is per node: flush it where the key lives.
    int owner = cluster_->master_of(cluster::key_slot("{t1}"));
    ASSERT_EQ(cluster_->command(owner, {"SCRIPT", "FLUSH"}).str, "OK");
    Result second = eval(client, incr, {"s:{t1}:a", "s:{t1}:b"}, {});
    ASSERT_TRUE(second.ok()) << second.error << second.reply.str;
    EXPECT_EQ(second.reply.integer, 2);
    // Keys in two slots are refused before they reach Redis.
    Result cross = eval(client, incr, {"s:{t1}:a", "s:{t2}:b"}, {});
    EXPECT_TRUE(cross.reply.is_error());
    EXPECT_TRUE(cross.reply.str.starts_with("CROSSSLOT")) << cross.reply.str;
    client.stop();
    EXPECT_LT(steady_clock::now() - started, 5s);
}

// Moves one slot, with its keys, from its master to another, the way
// redis-cli --cluster reshard does (cluster spec, "Live reconfiguration"),
// while script calls for keys of that slot keep flowing.
TEST_F(RedisClusterTest, LiveSlotMigrationFollowsAskAndMoved) {
    const auto started = steady_clock::now();
    Client client(io_.get_executor(), Url::parse(cluster_->url()));
    client.start();
    const std::string tag = "{mig}";
    const int slot = cluster::key_slot(tag);
    const int source = cluster_->master_of(slot);
    ASSERT_GE(source, 0);
    int target = -1;
    for (int i = 0; i < testsupport::RedisCluster::size && target < 0; ++i) {
        Reply role = cluster_->command(i, {"ROLE"});
        if (i != source && role.elements.at(0).str == "master") target = i;
    }
    ASSERT_GE(target, 0);
    auto node_id = [&](int node) { return cluster_->command(node, {"CLUSTER", "MYID"}).str; };
    const std::string source_id = node_id(source), target_id = node_id(target);

    for (int i = 0; i < 20; ++i)
        ASSERT_TRUE(call(client, {"SET", "k:" + tag + std::to_string(i), "x"}).ok());

    // Calls in flight all along: a script that counts, each call answered by
    // Redis. The target has never seen the script: NOSCRIPT under ASK too.
    Script incr("return redis.call('INCR', KEYS[1])");
    int issued = 0, answered = 0, errors = 0;
    bool stop_load = false;
    std::string last_error;
    std::function<void()> issue = [&] {
        if (stop_load) return;
        ++issued;
        asio::co_spawn(io_, client.eval(incr, {"n:" + tag}, {}, 2000ms), [&](std::exception_ptr, Result r) {
            ++answered;
            if (!r.ok()) {
                ++errors;
                last_error = r.error + r.reply.str;
            }
            issue();
        });
    };
    for (int i = 0; i < 4; ++i) issue();
    run_until([&] { return answered > 50; }, 5s);

    auto check = [](const Reply& r) { ASSERT_FALSE(r.is_error()) << r.str; };
    check(cluster_->command(target, {"CLUSTER", "SETSLOT", std::to_string(slot), "IMPORTING", source_id}));
    check(cluster_->command(source, {"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", target_id}));
    // Move keys a few at a time, letting calls run in between (ASK happens here).
    for (;;) {
        Reply keys = cluster_->command(source, {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), "5"});
        if (keys.elements.empty()) break;
        std::vector<std::string> migrate{"MIGRATE", "127.0.0.1", std::to_string(cluster_->port(target)), "", "0",
                                         "5000", "KEYS"};
        for (const auto& key : keys.elements) migrate.push_back(key.str);
        check(cluster_->command(source, migrate));
        const int before = answered;
        run_until([&] { return answered > before + 10; }, 2s);
    }
    std::vector<int> order{target, source};
    for (int node = 0; node < testsupport::RedisCluster::size; ++node)
        if (node != target && node != source) order.push_back(node);
    for (int node : order) cluster_->command(node, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", target_id});
    const int before = answered;
    run_until([&] { return answered > before + 100; }, 5s);
    stop_load = true;
    run_until([&] { return answered == issued; }, 3s);

    EXPECT_EQ(answered, issued);
    EXPECT_EQ(errors, 0) << last_error;
    // Every INCR counted once: the counter equals the calls answered.
    Result count = call(client, {"GET", "n:" + tag});
    EXPECT_EQ(count.reply.str, std::to_string(answered));
    EXPECT_EQ(cluster_->master_of(slot), target);
    auto stats = client.stats();
    EXPECT_GT(stats.moved + stats.ask, 0u);
    std::cerr << "migration: " << answered << " calls, " << stats.ask << " ASK, " << stats.moved
              << " MOVED, " << stats.refreshes << " refreshes\n";
    client.stop();
    EXPECT_LT(steady_clock::now() - started, 20s);
}

// Last: it kills a master (the first node of the URL when it is one).
TEST_F(RedisClusterTest, MasterKilledUnderLoadAnswersInTimeAndRecovers) {
    const auto started = steady_clock::now();
    Client client(io_.get_executor(), Url::parse(cluster_->url()));
    client.start();
    // A key on node 0's slots if node 0 is a master, so the node given first dies.
    std::string key;
    for (int i = 0; key.empty() && i < 10000; ++i) {
        std::string candidate = "kill:{" + std::to_string(i) + "}";
        if (cluster_->master_of(cluster::key_slot(candidate)) == 0) key = candidate;
    }
    if (key.empty()) key = "kill:{0}";
    const int slot = cluster::key_slot(key);
    const int victim = cluster_->master_of(slot);
    ASSERT_GE(victim, 0);

    constexpr milliseconds deadline = 150ms;
    int issued = 0, answered = 0, late = 0, failed = 0;
    milliseconds worst{0};
    bool stop_load = false;
    std::optional<steady_clock::time_point> first_success_after_kill;
    std::optional<steady_clock::time_point> killed_at;
    std::function<void()> issue = [&] {
        if (stop_load) return;
        ++issued;
        const auto sent = steady_clock::now();
        asio::co_spawn(io_, client.command({"INCR", key}, deadline), [&, sent](std::exception_ptr, Result r) {
            auto took = std::chrono::duration_cast<milliseconds>(steady_clock::now() - sent);
            worst = std::max(worst, took);
            ++answered;
            if (took > deadline + 50ms) ++late;
            if (!r.ok()) ++failed;
            if (r.ok() && killed_at && sent > *killed_at && !first_success_after_kill)
                first_success_after_kill = steady_clock::now();
            // Pace the load: one call per millisecond or so per worker.
            auto timer = std::make_shared<asio::steady_timer>(io_, 2ms);
            timer->async_wait([timer, &issue](auto) { issue(); });
        });
    };
    for (int i = 0; i < 8; ++i) issue();
    run_until([&] { return answered > 200; }, 5s);
    ASSERT_EQ(failed, 0);

    killed_at = steady_clock::now();
    cluster_->kill9(victim);
    // Watch for the promotion on another thread, so the load goes on undisturbed.
    testsupport::Watcher watch([&] { return cluster_->new_master(slot, victim); });
    run_until([&] { return watch.done(); }, 20s);
    int promoted = watch.result();
    ASSERT_GE(promoted, 0) << "no replica took over";
    const auto promoted_seen = steady_clock::now();
    run_until([&] { return first_success_after_kill.has_value(); }, 10s);
    // Some answers from the new master, then stop.
    const int before = answered;
    run_until([&] { return answered > before + 100; }, 3s);
    stop_load = true;
    run_until([&] { return answered == issued; }, 2s);

    ASSERT_TRUE(first_success_after_kill.has_value());
    auto recovery = std::chrono::duration_cast<milliseconds>(
        std::max(*first_success_after_kill, promoted_seen) - promoted_seen);
    auto outage = std::chrono::duration_cast<milliseconds>(promoted_seen - *killed_at);
    std::cerr << "master kill: " << answered << " calls, " << failed << " failed (store error), worst "
              << worst.count() << " ms, promotion after " << outage.count() << " ms, first answer "
              << recovery.count() << " ms after promotion was seen, failovers counted "
              << client.stats().failovers << "\n";
    EXPECT_EQ(answered, issued);
    EXPECT_EQ(late, 0) << "worst " << worst.count() << " ms";
    EXPECT_LT(recovery, 10s);
    EXPECT_GE(client.stats().failovers, 1u);
    client.stop();
    EXPECT_LT(steady_clock::now() - started, 40s);
}

}  // namespace
