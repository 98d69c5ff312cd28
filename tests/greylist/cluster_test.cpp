// The greylist store on a real 3+3 Redis Cluster (support/redis_cluster.h):
// 200 concurrent first sights of one triplet, through two connections (two
// daemons), make exactly one first-seen record, on the master of its slot.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <optional>

#include "daemon/clock.h"
#include "redis/cluster.h"
#include "redis_store.h"
#include "support/redis_cluster.h"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using greylist::Verdict;

TEST(GreylistClusterTest, ConcurrentFirstSightsFromTwoDaemonsMakeOneRecord) {
    const auto started = std::chrono::steady_clock::now();
    testsupport::RedisCluster cluster;
    asio::io_context io;
    proto::ManualClock clock;
    greylist::StoreKeys keys("gl", std::nullopt);
    std::array<std::unique_ptr<proto::redis::Client>, 2> clients;
    std::array<std::unique_ptr<greylist::RedisGreylistStore>, 2> stores;
    for (int i = 0; i < 2; ++i) {
        clients[i] = std::make_unique<proto::redis::Client>(io.get_executor(),
                                                            proto::redis::Url::parse(cluster.url()));
        clients[i]->start();
        stores[i] = std::make_unique<greylist::RedisGreylistStore>(*clients[i], keys, greylist::Rules{}, 2000ms);
    }
    const greylist::Triplet triplet{"192.0.2.0/24", "alice@example.com", "bob@example.org"};
    constexpr int requests = 200;
    int done = 0, fresh = 0, retries = 0, failed = 0;
    const std::int64_t now = clock.now_seconds();
    for (int i = 0; i < requests; ++i) {
        asio::co_spawn(io, stores[i % 2]->check(triplet, now), [&](std::exception_ptr e, greylist::StoreResult r) {
            ++done;
            if (e || !r.outcome)
                ++failed;
            else if (r.outcome->verdict == Verdict::new_triplet)
                ++fresh;
            else if (r.outcome->verdict == Verdict::early_retry)
                ++retries;
        });
    }
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (done < requests && std::chrono::steady_clock::now() < deadline) io.run_one_for(50ms);
    ASSERT_EQ(done, requests);
    EXPECT_EQ(failed, 0);
    EXPECT_EQ(fresh, 1);
    EXPECT_EQ(retries, requests - 1);
    const std::string key = keys.triplet(triplet);
    int owner = cluster.master_of(proto::redis::cluster::key_slot(key));
    ASSERT_GE(owner, 0);
    EXPECT_EQ(cluster.command(owner, {"GET", key}).str, std::to_string(now));
    for (auto& client : clients) client->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - started, 45s);
}

}  // namespace
