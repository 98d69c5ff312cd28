// The Sentinel client against a real setup of one master, two replicas and
// three sentinels (support/redis_sentinel.h): calls go to the master the
// sentinels name; under load, a forced failover (the old master turns
// read-only: READONLY sends the client back to the sentinels) and a master
// killed with SIGKILL: every call answered within its deadline plus 50 ms,
// and answers from the new master within 10 s of the switch.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <iostream>
#include <memory>
#include <optional>

#include "redis/client.h"
#include "support/redis_sentinel.h"
#include "support/watcher.h"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using proto::redis::Client;
using proto::redis::Failure;
using proto::redis::Result;
using proto::redis::Url;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

class RedisSentinelTest : public ::testing::Test {
protected:
    void run_until(const std::function<bool()>& done, milliseconds budget) {
        auto end = steady_clock::now() + budget;
        while (!done() && steady_clock::now() < end) io_.run_one_for(20ms);
    }

    // Paced INCR calls from 8 workers, each with a 150 ms deadline.
    struct Load {
        int issued = 0, answered = 0, late = 0, failed = 0;
        milliseconds worst{0};
        bool stop = false;
        std::optional<steady_clock::time_point> switch_at;
        std::optional<steady_clock::time_point> first_success_after_switch;
    };
    static constexpr milliseconds deadline = 150ms;

    void start_load(Client& client, Load& load) {
        issue_ = [this, &client, &load] {
            if (load.stop) return;
            ++load.issued;
            const auto sent = steady_clock::now();
            asio::co_spawn(io_, client.command({"INCR", "sentinel:n"}, deadline),
                           [this, &load, sent](std::exception_ptr, Result r) {
                               auto took = std::chrono::duration_cast<milliseconds>(steady_clock::now() - sent);
                               load.worst = std::max(load.worst, took);
                               ++load.answered;
                               if (took > deadline + 50ms) ++load.late;
                               if (!r.ok()) ++load.failed;
                               if (r.ok() && load.switch_at && sent > *load.switch_at &&
                                   !load.first_success_after_switch)
                                   load.first_success_after_switch = steady_clock::now();
                               auto timer = std::make_shared<asio::steady_timer>(io_, 2ms);
                               timer->async_wait([timer, this](auto) { issue_(); });
                           });
        };
        for (int i = 0; i < 8; ++i) issue_();
    }

    // Waits (driving the loop) until the sentinels name another master.
    int wait_for_switch(int old_master, milliseconds budget) {
        testsupport::Watcher watch([&] {
            int now_master = setup_.master();
            return now_master >= 0 && now_master != old_master ? now_master : -1;
        });
        run_until([&] { return watch.done(); }, budget);
        return watch.result();
    }

    void finish(Load& load) {
        const int before = load.answered;
        run_until([&] { return load.answered > before + 100; }, 3s);
        load.stop = true;
        run_until([&] { return load.answered == load.issued; }, 2s);
    }

    testsupport::RedisSentinel setup_;
    asio::io_context io_;
    std::function<void()> issue_;
};

TEST_F(RedisSentinelTest, WritesGoToTheMasterTheSentinelsName) {
    const auto started = steady_clock::now();
    Client client(io_.get_executor(), Url::parse(setup_.url()));
    client.start();
    std::optional<Result> out;
    asio::co_spawn(io_, client.command({"SET", "where", "master"}, 2000ms),
                   [&](std::exception_ptr, Result r) { out = std::move(r); });
    run_until([&] { return out.has_value(); }, 3s);
    ASSERT_TRUE(out && out->ok()) << (out ? out->error + out->reply.str : "no answer");
    EXPECT_EQ(setup_.command(0, {"GET", "where"}).str, "master");
    EXPECT_TRUE(client.connected());
    client.stop();
    EXPECT_LT(steady_clock::now() - started, 40s);
}

TEST_F(RedisSentinelTest, ForcedFailoverOldMasterTurnsReadOnly) {
    const auto started = steady_clock::now();
    Client client(io_.get_executor(), Url::parse(setup_.url()));
    client.start();
    Load load;
    start_load(client, load);
    run_until([&] { return load.answered > 200; }, 5s);
    ASSERT_EQ(load.failed, 0);
    load.switch_at = steady_clock::now();
    ASSERT_EQ(setup_.sentinel_command(0, {"SENTINEL", "FAILOVER", testsupport::RedisSentinel::master_name}).str, "OK");
    int promoted = wait_for_switch(0, 20s);
    ASSERT_GE(promoted, 1);
    const auto switched = steady_clock::now();
    // The old master keeps accepting writes until the sentinels demote it;
    // the client must move to the new one by itself (its periodic lookup,
    // or READONLY once the old one is demoted).
    run_until([&] { return client.stats().failovers >= 1; }, 10s);
    const auto adopted = steady_clock::now();
    const int before = load.answered;
    run_until([&] { return load.answered > before + 50; }, 3s);
    // The sentinels turn the old master into a replica of the new one.
    testsupport::Watcher demoted([&] {
        try {
            return setup_.command(0, {"SET", "x", "1"}).str.starts_with("READONLY") ? 1 : -1;
        } catch (const std::exception&) {
            return -1;
        }
    });
    run_until([&] { return demoted.done(); }, 15s);
    const bool read_only = demoted.done();
    finish(load);
    auto recovery = std::chrono::duration_cast<milliseconds>(adopted - switched);
    std::cerr << "forced failover: " << load.answered << " calls, " << load.failed << " failed, worst "
              << load.worst.count() << " ms, new master used " << recovery.count()
              << " ms after the sentinels named it; " << client.stats().failovers << " failovers, "
              << client.stats().retries << " retries\n";
    EXPECT_EQ(load.answered, load.issued);
    EXPECT_EQ(load.late, 0) << "worst " << load.worst.count() << " ms";
    EXPECT_LT(recovery, 10s);
    EXPECT_GE(client.stats().failovers, 1u);
    EXPECT_TRUE(read_only);
    // Writes now reach the new master.
    EXPECT_FALSE(setup_.command(promoted, {"INCR", "sentinel:n"}).is_error());
    client.stop();
    EXPECT_LT(steady_clock::now() - started, 60s);
}

TEST_F(RedisSentinelTest, MasterKilledUnderLoadAnswersInTimeAndRecovers) {
    const auto started = steady_clock::now();
    Client client(io_.get_executor(), Url::parse(setup_.url()));
    client.start();
    Load load;
    start_load(client, load);
    run_until([&] { return load.answered > 200; }, 5s);
    ASSERT_EQ(load.failed, 0);
    load.switch_at = steady_clock::now();
    setup_.kill9(0);
    int promoted = wait_for_switch(0, 30s);
    ASSERT_GE(promoted, 1);
    const auto switched = steady_clock::now();
    run_until([&] { return load.first_success_after_switch.has_value(); }, 10s);
    finish(load);
    ASSERT_TRUE(load.first_success_after_switch);
    auto recovery = std::chrono::duration_cast<milliseconds>(
        std::max(*load.first_success_after_switch, switched) - switched);
    auto outage = std::chrono::duration_cast<milliseconds>(switched - *load.switch_at);
    std::cerr << "sentinel master kill: " << load.answered << " calls, " << load.failed << " failed, worst "
              << load.worst.count() << " ms, switch after " << outage.count() << " ms, recovery "
              << recovery.count() << " ms after it\n";
    EXPECT_EQ(load.answered, load.issued);
    EXPECT_EQ(load.late, 0) << "worst " << load.worst.count() << " ms";
    EXPECT_LT(recovery, 10s);
    EXPECT_GE(client.stats().failovers, 1u);
    client.stop();
    EXPECT_LT(steady_clock::now() - started, 60s);
}

}  // namespace
