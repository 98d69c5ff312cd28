// Contract tests of the greylist store on a real redis-server, with time as
// an argument (a ManualClock, never a sleep): every rule and limit of
// greylisting, the TTL of every key, atomicity under 200 concurrent first
// sights, privacy of keys, and failure within the deadline.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <optional>

#include "daemon/clock.h"
#include "redis_store.h"
#include "support/redis_store_test.h"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using greylist::Outcome;
using greylist::Rules;
using greylist::Triplet;
using greylist::Verdict;

class StoreTest : public testsupport::RedisStoreTest {
protected:
    void SetUp() override { make_store(Rules{}); }

    void make_store(Rules rules, std::optional<greylist::KeyedHash> privacy = std::nullopt) {
        rules_ = rules;
        connect_client();
        keys_.emplace("gl", privacy);
        store_ = std::make_unique<greylist::RedisGreylistStore>(*client_, *keys_, rules, 150ms);
    }

    Outcome check(const Triplet& t) {
        auto r = run(store_->check(t, clock_.now_seconds()));
        EXPECT_TRUE(r.outcome.has_value()) << r.error;
        return r.outcome.value_or(Outcome{});
    }

    long long ttl(const std::string& key) { return redis_.command({"TTL", key}).integer; }
    std::string get(const std::string& key) { return redis_.command({"GET", key}).str; }

    std::optional<greylist::StoreKeys> keys_;
    std::unique_ptr<greylist::RedisGreylistStore> store_;
    Rules rules_;
    Triplet t_{"192.0.2.0/24", "alice@example.com", "bob@example.org"};
};

TEST_F(StoreTest, FirstSightDefersForTheDelay) {
    Outcome o = check(t_);
    EXPECT_EQ(o.verdict, Verdict::new_triplet);
    EXPECT_EQ(o.seconds, 300);
    std::string key = keys_->triplet(t_);
    EXPECT_EQ(key, "gl:t:{192.0.2.0/24}:17:alice@example.com/bob@example.org");
    EXPECT_EQ(get(key), std::to_string(clock_.now_seconds()));
    EXPECT_EQ(ttl(key), 2 * 86400);  // a first sight matters only for retry_window
}

TEST_F(StoreTest, EarlyRetryIsDeferredWithTimeLeftAndKeepsFirstSeen) {
    check(t_);
    std::string first = get(keys_->triplet(t_));
    clock_.advance_seconds(100);
    Outcome o = check(t_);
    EXPECT_EQ(o.verdict, Verdict::early_retry);
    EXPECT_EQ(o.seconds, 200);
    clock_.advance_seconds(199);
    o = check(t_);
    EXPECT_EQ(o.verdict, Verdict::early_retry);
    EXPECT_EQ(o.seconds, 1);
    EXPECT_EQ(get(keys_->triplet(t_)), first);
}

TEST_F(StoreTest, RetryAfterDelayPassesThenTripletIsKnown) {
    check(t_);
    clock_.advance_seconds(300);  // exactly the delay
    Outcome o = check(t_);
    EXPECT_EQ(o.verdict, Verdict::passed);
    EXPECT_EQ(o.seconds, 300);
    std::string key = keys_->triplet(t_);
    EXPECT_EQ(get(key), std::to_string(-clock_.now_seconds()));
    EXPECT_EQ(ttl(key), 35 * 86400);
    clock_.advance_seconds(5);
    EXPECT_EQ(check(t_).verdict, Verdict::known);
}

TEST_F(StoreTest, RetryAfterTheRetryWindowStartsOver) {
    check(t_);
    clock_.advance_seconds(2 * 86400 + 1);
    Outcome o = check(t_);
    EXPECT_EQ(o.verdict, Verdict::new_triplet);
    EXPECT_EQ(get(keys_->triplet(t_)), std::to_string(clock_.now_seconds()));
    clock_.advance_seconds(299);
    EXPECT_EQ(check(t_).verdict, Verdict::early_retry);
}

TEST_F(StoreTest, RetryAtTheEndOfTheRetryWindowStillPasses) {
    check(t_);
    clock_.advance_seconds(2 * 86400);
    EXPECT_EQ(check(t_).verdict, Verdict::passed);
}

TEST_F(StoreTest, KnownTripletIsForgottenAfterMaxAgeAndRefreshedWhenSeen) {
    check(t_);
    clock_.advance_seconds(300);
    check(t_);
    // Seen again just within max_age: refreshed, so it lives another max_age.
    clock_.advance_seconds(35 * 86400);
    EXPECT_EQ(check(t_).verdict, Verdict::known);
    clock_.advance_seconds(35 * 86400);
    EXPECT_EQ(check(t_).verdict, Verdict::known);
    // Not seen for longer than max_age: forgotten, greylisted anew.
    clock_.advance_seconds(35 * 86400 + 1);
    EXPECT_EQ(check(t_).verdict, Verdict::new_triplet);
}

TEST_F(StoreTest, FirstSeenInTheFutureCountsAsNow) {
    // Another MX host's clock ran ahead: never pass early because of it.
    redis_.command({"SET", keys_->triplet(t_), std::to_string(clock_.now_seconds() + 1000)});
    Outcome o = check(t_);
    EXPECT_EQ(o.verdict, Verdict::early_retry);
    EXPECT_EQ(o.seconds, 300);
}

TEST_F(StoreTest, TripletsAreIndependent) {
    check(t_);
    clock_.advance_seconds(300);
    check(t_);
    Triplet other_rcpt = t_;
    other_rcpt.recipient = "carol@example.org";
    EXPECT_EQ(check(other_rcpt).verdict, Verdict::new_triplet);
    Triplet other_client = t_;
    other_client.client = "198.51.100.0/24";
    EXPECT_EQ(check(other_client).verdict, Verdict::new_triplet);
    Triplet null_sender = t_;
    null_sender.sender = "";
    EXPECT_EQ(check(null_sender).verdict, Verdict::new_triplet);
    EXPECT_EQ(check(t_).verdict, Verdict::known);
}


TEST_F(StoreTest, AutoWhitelistAfterSuccessfulRetriesAtMostOnePerInterval) {
    make_store(Rules{300, 2 * 86400, 35 * 86400, 3, 3600});
    int n = 0;
    auto pass_new_triplet = [&] {
        Triplet t = t_;
        t.recipient = "r" + std::to_string(n++) + "@example.org";
        EXPECT_EQ(check(t).verdict, Verdict::new_triplet);
        clock_.advance_seconds(300);
        return check(t);
    };
    Outcome o = pass_new_triplet();  // counted (1)
    EXPECT_EQ(o.verdict, Verdict::passed);
    EXPECT_FALSE(o.client_now_whitelisted);
    o = pass_new_triplet();  // 300 s later: same interval, not counted
    EXPECT_EQ(o.verdict, Verdict::passed);
    std::string client_key = keys_->client(t_.client);
    EXPECT_EQ(redis_.command({"HGET", client_key, "n"}).str, "1");
    EXPECT_EQ(ttl(client_key), 35 * 86400);
    clock_.advance_seconds(3600);
    pass_new_triplet();  // counted (2)
    clock_.advance_seconds(3600);
    o = pass_new_triplet();  // counted (3): threshold reached
    EXPECT_TRUE(o.client_now_whitelisted);
    // Every new triplet of the client now passes at once.
    Triplet fresh = t_;
    fresh.sender = "someone-else@example.net";
    EXPECT_EQ(check(fresh).verdict, Verdict::client_whitelisted);
    // Other clients are not affected.
    fresh.client = "198.51.100.0/24";
    EXPECT_EQ(check(fresh).verdict, Verdict::new_triplet);
}

TEST_F(StoreTest, KnownTripletsDoNotCountTowardsAutoWhitelist) {
    make_store(Rules{300, 2 * 86400, 35 * 86400, 2, 3600});
    check(t_);
    clock_.advance_seconds(300);
    EXPECT_EQ(check(t_).verdict, Verdict::passed);  // 1
    for (int i = 0; i < 5; ++i) {
        clock_.advance_seconds(3600);
        EXPECT_EQ(check(t_).verdict, Verdict::known);
    }
    EXPECT_EQ(redis_.command({"HGET", keys_->client(t_.client), "n"}).str, "1");
}

TEST_F(StoreTest, AutoWhitelistDisabledWithZero) {
    make_store(Rules{300, 2 * 86400, 35 * 86400, 0, 3600});
    for (int i = 0; i < 3; ++i) {
        Triplet t = t_;
        t.recipient = "r" + std::to_string(i) + "@example.org";
        check(t);
        clock_.advance_seconds(3600);
        EXPECT_EQ(check(t).verdict, Verdict::passed);
    }
    EXPECT_EQ(redis_.command({"EXISTS", keys_->client(t_.client)}).integer, 0);
    Triplet fresh = t_;
    fresh.recipient = "new@example.org";
    EXPECT_EQ(check(fresh).verdict, Verdict::new_triplet);
}

TEST_F(StoreTest, OperatorAllowedClientPassesEvenWithAutoWhitelistOff) {
    make_store(Rules{300, 2 * 86400, 35 * 86400, 0, 3600});
    redis_.command({"HSET", keys_->client(t_.client), "a", "1"});
    EXPECT_EQ(check(t_).verdict, Verdict::client_whitelisted);
}

TEST_F(StoreTest, ConcurrentFirstSightsMakeExactlyOneRecord) {
    constexpr int kRequests = 200;
    int done = 0, fresh = 0, retries = 0, failed = 0;
    const std::int64_t now = clock_.now_seconds();
    for (int i = 0; i < kRequests; ++i) {
        asio::co_spawn(io_, store_->check(t_, now),
                       [&](std::exception_ptr e, greylist::StoreResult r) {
                           ++done;
                           if (e || !r.outcome)
                               ++failed;
                           else if (r.outcome->verdict == Verdict::new_triplet)
                               ++fresh;
                           else if (r.outcome->verdict == Verdict::early_retry)
                               ++retries;
                       });
    }
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (done < kRequests && std::chrono::steady_clock::now() < deadline) io_.run_one_for(50ms);
    ASSERT_EQ(done, kRequests);
    EXPECT_EQ(failed, 0);
    EXPECT_EQ(fresh, 1);
    EXPECT_EQ(retries, kRequests - 1);
    auto keys = redis_.command({"KEYS", "gl:t:*"});
    EXPECT_EQ(keys.elements.size(), 1u);
    EXPECT_EQ(get(keys_->triplet(t_)), std::to_string(now));
}

TEST_F(StoreTest, EveryKeyHasATtl) {
    make_store(Rules{300, 2 * 86400, 35 * 86400, 1, 3600});
    check(t_);
    clock_.advance_seconds(300);
    check(t_);  // writes the client key too
    auto keys = redis_.command({"KEYS", "*"});
    ASSERT_EQ(keys.elements.size(), 2u);
    for (const auto& k : keys.elements) {
        long long t = ttl(k.str);
        EXPECT_GT(t, 0) << k.str;
        EXPECT_LE(t, 35 * 86400) << k.str;
    }
}

TEST_F(StoreTest, ExpiredKeysAreForgotten) {
    // TTLs collect garbage: once Redis drops the key, the triplet is new again.
    check(t_);
    clock_.advance_seconds(300);
    check(t_);
    redis_.command({"PEXPIRE", keys_->triplet(t_), "1"});
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (redis_.command({"EXISTS", keys_->triplet(t_)}).integer == 1 &&
           std::chrono::steady_clock::now() < deadline) {
    }
    EXPECT_EQ(check(t_).verdict, Verdict::new_triplet);
}

TEST_F(StoreTest, PrivacyStoresOnlyKeyedHashes) {
    make_store(Rules{}, greylist::KeyedHash::from_secret("a-secret-for-this-test"));
    check(t_);
    clock_.advance_seconds(300);
    EXPECT_EQ(check(t_).verdict, Verdict::passed);
    auto keys = redis_.command({"KEYS", "*"});
    ASSERT_EQ(keys.elements.size(), 2u);
    for (const auto& k : keys.elements) {
        EXPECT_EQ(k.str.find("example"), std::string::npos) << k.str;
        EXPECT_EQ(k.str.find("192.0.2"), std::string::npos) << k.str;
    }
}

TEST_F(StoreTest, FailsWithinTheDeadlineWhenRedisHangs) {
    check(t_);  // connected
    redis_.pause();
    auto started = std::chrono::steady_clock::now();
    auto r = run(store_->check(t_, clock_.now_seconds()));
    auto took = std::chrono::steady_clock::now() - started;
    redis_.resume();
    EXPECT_FALSE(r.outcome.has_value());
    EXPECT_FALSE(r.error.empty());
    EXPECT_LT(took, 200ms);
}

TEST_F(StoreTest, FailsFastWhenRedisIsDownAndRecovers) {
    check(t_);
    redis_.stop();
    auto r = run(store_->check(t_, clock_.now_seconds()));
    EXPECT_FALSE(r.outcome.has_value());
    redis_.start();  // empty again: no persistence
    auto deadline = std::chrono::steady_clock::now() + 10s;
    std::optional<Outcome> o;
    while (!o && std::chrono::steady_clock::now() < deadline)
        o = run(store_->check(t_, clock_.now_seconds())).outcome;
    ASSERT_TRUE(o.has_value());
    EXPECT_EQ(o->verdict, Verdict::new_triplet);  // the script was loaded again (NOSCRIPT)
}

}  // namespace
