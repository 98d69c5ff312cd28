// The rate store on a real 3+3 Redis Cluster (support/redis_cluster.h):
// exactness from two connections (two daemons) with 200 concurrent requests,
// rules whose buckets live in different slots, decided bucket by bucket
// with reservations given back when a later rule refuses, and the operator
// command's show and reset through the cluster.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "daemon/clock.h"
#include "daemon/config.h"
#include "daemon/metrics.h"
#include "decider.h"
#include "program.h"
#include "redis/cluster.h"
#include "redis_store.h"
#include "support/redis_cluster.h"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace ratelimit;
using proto::policy::Request;
using Attrs = std::map<std::string, std::string>;
using std::chrono::steady_clock;

Request make_request(const Attrs& overrides) {
    Attrs a{{"request", "smtpd_access_policy"}, {"protocol_state", "RCPT"},
            {"client_address", "192.0.2.10"},   {"client_name", "mail.example.org"},
            {"sasl_username", "alice"},         {"sender", "alice@example.org"},
            {"recipient", "bob@example.net"},   {"size", "0"}};
    for (const auto& [k, v] : overrides) a[k] = v;
    Request r;
    for (const auto& [k, v] : a) r.append(k, v);
    return r;
}

nlohmann::json rule(const std::string& name, std::vector<std::string> key, std::int64_t limit) {
    return {{"name", name}, {"key", key}, {"count", "recipients"}, {"limit", limit}, {"window", 3600}};
}

class RateClusterTest : public ::testing::Test {
protected:
    void SetUp() override {
        for (auto& client : clients_) {
            client = std::make_unique<proto::redis::Client>(io_.get_executor(),
                                                            proto::redis::Url::parse(cluster_.url()));
            client->start();
        }
    }
    void TearDown() override {
        for (auto& client : clients_) client->stop();
    }

    void configure(nlohmann::json config) {
        proto::config::Reader reader(config);
        settings_ = read_settings(reader);
        reader.finish();
        for (int i = 0; i < 2; ++i)
            deciders_[i] = std::make_unique<RateDecider>(
                settings_, std::make_shared<RedisRateStore>(*clients_[i], 2000ms), clock_, registries_[i]);
    }

    // n concurrent requests, alternating between the two deciders; returns how many passed.
    int concurrent(const Attrs& attrs, int n) {
        int done = 0, passed = 0;
        Request r = make_request(attrs);
        for (int i = 0; i < n; ++i) {
            asio::co_spawn(io_, deciders_[i % 2]->decide(r), [&](std::exception_ptr e, proto::policy::Decision d) {
                ASSERT_FALSE(e);
                ++done;
                passed += d.action.to_string() == "DUNNO";
            });
        }
        auto deadline = steady_clock::now() + 20s;
        while (done < n && steady_clock::now() < deadline) io_.run_one_for(50ms);
        EXPECT_EQ(done, n);
        return passed;
    }

    int sequential(const Attrs& attrs, int n) {
        int passed = 0;
        for (int i = 0; i < n; ++i) passed += concurrent(attrs, 1);
        io_.run_for(50ms);  // let give-backs finish
        return passed;
    }

    std::string key(const std::string& rule_name, const std::string& value) {
        return settings_->namer.name(rule_name, {value});
    }

    testsupport::RedisCluster cluster_;
    asio::io_context io_;
    std::array<std::unique_ptr<proto::redis::Client>, 2> clients_;
    proto::ManualClock clock_;
    std::shared_ptr<Settings> settings_;
    std::array<proto::metrics::Registry, 2> registries_;
    std::array<std::unique_ptr<RateDecider>, 2> deciders_;
};

TEST_F(RateClusterTest, TwoDaemonsLetExactlyTheLimitThrough) {
    const auto started = steady_clock::now();
    configure({{"rules", {rule("rcpt", {"sasl_username"}, 100)}}});
    EXPECT_EQ(concurrent({}, 200), 100);
    EXPECT_EQ(concurrent({}, 10), 0);
    // The operator commands' helpers reach the bucket through the cluster too.
    const auto url = proto::redis::Url::parse(cluster_.url());
    BucketUsage usage = read_usage(url, key("rcpt", "alice"), 100, 3600 * 1000, clock_.now_ms());
    EXPECT_TRUE(usage.exists);
    EXPECT_NEAR(usage.level, 100, 1e-6);
    EXPECT_TRUE(reset_bucket(url, key("rcpt", "alice")));
    EXPECT_EQ(concurrent({}, 10), 10);
    EXPECT_LT(steady_clock::now() - started, 45s);
}

TEST_F(RateClusterTest, RulesInDifferentSlotsReserveAndGiveBack) {
    const auto started = steady_clock::now();
    configure({{"rules", {rule("user", {"sasl_username"}, 5), rule("client", {"client_address"}, 3)}}});
    ASSERT_NE(proto::redis::cluster::key_slot(key("user", "alice")),
              proto::redis::cluster::key_slot(key("client", "192.0.2.10")));
    // The client rule refuses after 3; the user bucket's reservations for
    // the 7 refused requests are given back, so alice has 2 left elsewhere.
    EXPECT_EQ(sequential({}, 10), 3);
    EXPECT_EQ(sequential({{"client_address", "192.0.2.11"}}, 10), 2);
    // Concurrent: every bucket stays exact.
    EXPECT_EQ(concurrent({{"sasl_username", "carol"}, {"client_address", "192.0.2.12"}}, 200), 3);
    configure({{"rules", {rule("user", {"sasl_username"}, 100), rule("client", {"client_address"}, 1000)}}});
    EXPECT_EQ(concurrent({{"sasl_username", "dave"}, {"client_address", "192.0.2.13"}}, 200), 100);
    EXPECT_LT(steady_clock::now() - started, 45s);
}

}  // namespace
