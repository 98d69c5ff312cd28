// Contract tests of the rate store on a real redis-server, with time as an
// argument (a ManualClock, never a sleep), driven through the decider so that
// every count kind is counted at its own stage: recipients at RCPT, messages
// and size at END-OF-MESSAGE, connections at CONNECT. Also: the window
// sliding, overrides, empty keys, `match`, a refused request consuming no
// quota, a TTL on every key, atomicity under 200 concurrent requests from
// one and from two connections, and failure within the deadline.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <optional>

#include "daemon/clock.h"
#include "daemon/config.h"
#include "daemon/metrics.h"
#include "decider.h"
#include "program.h"
#include "redis_store.h"
#include "support/redis_store_test.h"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace ratelimit;
using proto::policy::Request;
using Attrs = std::map<std::string, std::string>;

const std::string kDefer = "DEFER_IF_PERMIT 4.7.1 Rate limit exceeded, try again later";

Request make_request(const Attrs& attrs) {
    Request r;
    for (const auto& [k, v] : attrs) r.append(k, v);
    return r;
}

Attrs rcpt(Attrs overrides = {}) {
    Attrs a{{"request", "smtpd_access_policy"},
            {"protocol_state", "RCPT"},
            {"client_address", "192.0.2.10"},
            {"client_name", "mail.example.org"},
            {"sasl_username", "alice"},
            {"sender", "alice@example.org"},
            {"recipient", "bob@example.net"},
            {"size", "0"}};
    for (auto& [k, v] : overrides) a[k] = v;
    return a;
}

Attrs at(const std::string& state, Attrs overrides = {}) {
    overrides["protocol_state"] = state;
    return rcpt(std::move(overrides));
}

class RateStoreTest : public testsupport::RedisStoreTest {
protected:
    void SetUp() override {
        connect_client();
        store_ = std::make_shared<RedisRateStore>(*client_, 150ms);
    }

    void configure(nlohmann::json config) {
        proto::config::Reader reader(config);
        settings_ = read_settings(reader);
        reader.finish();
        registry_ = std::make_unique<proto::metrics::Registry>();
        decider_ = std::make_unique<RateDecider>(settings_, store_, clock_, *registry_);
    }

    static nlohmann::json rule(const std::string& name, std::vector<std::string> key,
                               const std::string& count, std::int64_t limit,
                               std::int64_t window) {
        return {{"name", name}, {"key", key}, {"count", count}, {"limit", limit},
                {"window", window}};
    }

    std::string ask(const Attrs& attrs) {
        Request r = make_request(attrs);
        return run(decider_->decide(r)).action.to_string();
    }

    // Ask n times, return how many passed (DUNNO).
    int passes(const Attrs& attrs, int n) {
        int ok = 0;
        for (int i = 0; i < n; ++i) ok += ask(attrs) == "DUNNO";
        return ok;
    }

    std::vector<std::string> keys() {
        std::vector<std::string> out;
        for (const auto& k : redis_.command({"KEYS", "*"}).elements) out.push_back(k.str);
        return out;
    }

    std::uint64_t counter(const std::string& name, const std::string& rule) {
        return registry_->counter(name, "", {{"rule", rule}}).value();
    }

    std::shared_ptr<RedisRateStore> store_;
    std::shared_ptr<Settings> settings_;
    std::unique_ptr<proto::metrics::Registry> registry_;
    std::unique_ptr<RateDecider> decider_;
};

TEST_F(RateStoreTest, RecipientsCountOnePerRcptAndOnlyAtRcpt) {
    configure({{"rules", {rule("rcpt", {"sasl_username"}, "recipients", 3, 3600)}}});
    for (const char* state : {"CONNECT", "EHLO", "MAIL", "DATA", "END-OF-MESSAGE", "VRFY"})
        EXPECT_EQ(ask(at(state)), "DUNNO") << state;
    EXPECT_TRUE(keys().empty());
    EXPECT_EQ(passes(rcpt(), 3), 3);
    EXPECT_EQ(ask(rcpt()), kDefer);
    EXPECT_EQ(ask(rcpt({{"recipient", "other@example.net"}})), kDefer);
    // A DATA or END-OF-MESSAGE request of the message whose recipients
    // filled the bucket is not refused after the fact.
    EXPECT_EQ(ask(at("DATA")), "DUNNO");
    EXPECT_EQ(ask(at("END-OF-MESSAGE")), "DUNNO");
    // Keys are independent, and case-insensitive.
    EXPECT_EQ(ask(rcpt({{"sasl_username", "carol"}})), "DUNNO");
    EXPECT_EQ(ask(rcpt({{"sasl_username", "ALICE"}})), kDefer);
    EXPECT_EQ(counter("ratelimit_rule_refused_total", "rcpt"), 3u);
}

TEST_F(RateStoreTest, MessagesCountAtEndOfMessageAndAreCheckedBefore) {
    configure({{"rules", {rule("msg", {"sasl_username"}, "messages", 2, 3600)}}});
    // RCPT and DATA only check: any number of them consume nothing.
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(ask(rcpt()), "DUNNO");
        EXPECT_EQ(ask(at("DATA")), "DUNNO");
    }
    EXPECT_TRUE(keys().empty());
    EXPECT_EQ(ask(at("END-OF-MESSAGE")), "DUNNO");
    EXPECT_EQ(ask(at("END-OF-MESSAGE")), "DUNNO");
    // Full: the next message is deferred at every stage that can stop it.
    EXPECT_EQ(ask(at("MAIL")), kDefer);
    EXPECT_EQ(ask(rcpt()), kDefer);
    EXPECT_EQ(ask(at("DATA")), kDefer);
    EXPECT_EQ(ask(at("END-OF-MESSAGE")), kDefer);
    EXPECT_EQ(ask(at("CONNECT")), "DUNNO");
    EXPECT_EQ(ask(at("EHLO")), "DUNNO");
}

TEST_F(RateStoreTest, SizeCountsTheMessageSizeAtEndOfMessage) {
    configure({{"rules", {rule("bytes", {"sender"}, "size", 10000, 3600)}}});
    // The declared SIZE= is checked before the data: too big for what is left.
    EXPECT_EQ(ask(rcpt({{"size", "10001"}})), kDefer);
    EXPECT_EQ(ask(rcpt({{"size", "6000"}})), "DUNNO");
    EXPECT_TRUE(keys().empty());
    EXPECT_EQ(ask(at("END-OF-MESSAGE", {{"size", "6000"}})), "DUNNO");
    // 4000 left: a 4001-byte message does not fit, a 4000-byte one does.
    EXPECT_EQ(ask(at("END-OF-MESSAGE", {{"size", "4001"}})), kDefer);
    EXPECT_EQ(ask(rcpt({{"size", "4001"}})), kDefer);
    EXPECT_EQ(ask(at("DATA", {{"size", "4000"}})), "DUNNO");
    EXPECT_EQ(ask(at("END-OF-MESSAGE", {{"size", "4000"}})), "DUNNO");
    // Full: even a message of unknown size (no SIZE=) is refused before the data.
    EXPECT_EQ(ask(rcpt({{"size", "0"}})), kDefer);
    EXPECT_EQ(ask(at("END-OF-MESSAGE", {{"size", "1"}})), kDefer);
}

TEST_F(RateStoreTest, ConnectionsCountAtConnect) {
    configure({{"rules", {rule("conn", {"client_address"}, "connections", 2, 60)}}});
    EXPECT_EQ(ask(rcpt()), "DUNNO");
    EXPECT_EQ(ask(at("END-OF-MESSAGE")), "DUNNO");
    EXPECT_TRUE(keys().empty());
    EXPECT_EQ(ask(at("CONNECT")), "DUNNO");
    EXPECT_EQ(ask(at("CONNECT")), "DUNNO");
    EXPECT_EQ(ask(at("CONNECT")), kDefer);
    // Another client is another bucket; IPv6 text forms are one address.
    EXPECT_EQ(ask(at("CONNECT", {{"client_address", "2001:db8::1"}})), "DUNNO");
    EXPECT_EQ(ask(at("CONNECT", {{"client_address", "2001:DB8:0::1"}})), "DUNNO");
    EXPECT_EQ(ask(at("CONNECT", {{"client_address", "2001:db8::0:1"}})), kDefer);
}

TEST_F(RateStoreTest, TheWindowSlides) {
    configure({{"rules", {rule("rcpt", {"sasl_username"}, "recipients", 10, 60)}}});
    EXPECT_EQ(passes(rcpt(), 10), 10);
    EXPECT_EQ(ask(rcpt()), kDefer);
    // One event drains every window/limit = 6 s.
    clock_.advance_ms(5999);
    EXPECT_EQ(ask(rcpt()), kDefer);
    clock_.advance_ms(1);
    EXPECT_EQ(ask(rcpt()), "DUNNO");
    EXPECT_EQ(ask(rcpt()), kDefer);
    // Half a window later, half the limit is free again.
    clock_.advance_seconds(30);
    EXPECT_EQ(passes(rcpt(), 6), 5);
    // A full window after the last event the whole limit is back.
    clock_.advance_seconds(60);
    EXPECT_EQ(passes(rcpt(), 11), 10);
    // A clock behind the stored time (another host) drains nothing.
    clock_.advance_seconds(-120);
    EXPECT_EQ(ask(rcpt()), kDefer);
}

TEST_F(RateStoreTest, ExactlyLimitPassPerWindowOverAnyPeriod) {
    configure({{"rules", {rule("rcpt", {"sasl_username"}, "recipients", 50, 100)}}});
    // One request every 500 ms for 10 windows: 50 (burst) + 50 per window after.
    int passed = 0;
    for (int i = 0; i < 2000; ++i) {
        passed += ask(rcpt()) == "DUNNO";
        clock_.advance_ms(500);
    }
    EXPECT_GE(passed, 50 + 50 * 10 - 1);
    EXPECT_LE(passed, 50 + 50 * 10);
}

TEST_F(RateStoreTest, ARefusedRequestConsumesNoQuota) {
    configure({{"rules",
                {rule("short", {"sasl_username"}, "recipients", 2, 60),
                 rule("long", {"sasl_username"}, "recipients", 5, 3600)}}});
    EXPECT_EQ(passes(rcpt(), 2), 2);
    // Refused by "short": "long" must not count these.
    for (int i = 0; i < 20; ++i) EXPECT_EQ(ask(rcpt()), kDefer);
    clock_.advance_seconds(60);
    EXPECT_EQ(passes(rcpt(), 3), 2);  // short's burst is back
    clock_.advance_seconds(60);
    // long has 4 counted (of 5): one more passes, then long refuses.
    EXPECT_EQ(ask(rcpt()), "DUNNO");
    EXPECT_EQ(ask(rcpt()), kDefer);
    EXPECT_EQ(counter("ratelimit_rule_refused_total", "long"), 1u);
}

TEST_F(RateStoreTest, TheFirstExceededRuleDecidesWithItsAction) {
    auto user = rule("user", {"sasl_username"}, "recipients", 2, 60);
    user["action"] = "450 4.7.1 user limit";
    auto domain = rule("domain", {"sender_domain"}, "recipients", 3, 60);
    domain["action"] = "DEFER domain limit";
    configure({{"rules", {user, domain}}});
    EXPECT_EQ(passes(rcpt(), 2), 2);
    EXPECT_EQ(ask(rcpt()), "450 4.7.1 user limit");
    EXPECT_EQ(ask(rcpt({{"sasl_username", "bob"}, {"sender", "bob@EXAMPLE.org."}})), "DUNNO");
    EXPECT_EQ(ask(rcpt({{"sasl_username", "carol"}, {"sender", "carol@example.org"}})),
              "DEFER domain limit");
}

TEST_F(RateStoreTest, EmptyKeysDoNotApply) {
    configure({{"rules",
                {rule("user", {"sasl_username"}, "recipients", 1, 60),
                 rule("pair", {"sender", "client_network"}, "recipients", 1, 60)}}});
    // No SASL login: the per-user rule does not apply, the pair rule does.
    EXPECT_EQ(ask(rcpt({{"sasl_username", ""}})), "DUNNO");
    EXPECT_EQ(ask(rcpt({{"sasl_username", ""}})), kDefer);
    // Null sender, no client address: nothing applies, nothing is stored.
    EXPECT_EQ(passes(rcpt({{"sasl_username", ""}, {"sender", ""}}), 5), 5);
    EXPECT_EQ(passes(rcpt({{"sasl_username", ""}, {"client_address", ""}}), 5), 5);
    Attrs bare{{"protocol_state", "RCPT"}};
    EXPECT_EQ(passes(bare, 5), 5);
    EXPECT_EQ(keys().size(), 1u);
    EXPECT_EQ(counter("ratelimit_rule_applied_total", "user"), 0u);
}

TEST_F(RateStoreTest, ClientNetworkGroupsByPrefix) {
    auto r = rule("net", {"client_network"}, "recipients", 2, 60);
    r["ipv4_prefix"] = 24;
    r["ipv6_prefix"] = 48;
    configure({{"rules", {r}}});
    EXPECT_EQ(ask(rcpt({{"client_address", "198.51.100.1"}})), "DUNNO");
    EXPECT_EQ(ask(rcpt({{"client_address", "198.51.100.254"}})), "DUNNO");
    EXPECT_EQ(ask(rcpt({{"client_address", "198.51.100.7"}})), kDefer);
    EXPECT_EQ(ask(rcpt({{"client_address", "198.51.101.7"}})), "DUNNO");
    EXPECT_EQ(ask(rcpt({{"client_address", "2001:db8:1:1::1"}})), "DUNNO");
    EXPECT_EQ(ask(rcpt({{"client_address", "2001:db8:1:ffff::2"}})), "DUNNO");
    EXPECT_EQ(ask(rcpt({{"client_address", "2001:db8:1::3"}})), kDefer);
}

TEST_F(RateStoreTest, MatchExactCaseInsensitiveAndRegex) {
    auto external = rule("external", {"recipient_domain"}, "recipients", 1, 60);
    external["match"] = {{"sasl_method", {"PLAIN", "login"}},
                         {"recipient", "/@(gmail|outlook)\\.com$/"}};
    configure({{"rules", {external}}});
    Attrs gmail = rcpt({{"sasl_method", "plain"}, {"recipient", "x@GMAIL.com"}});
    EXPECT_EQ(ask(gmail), "DUNNO");
    EXPECT_EQ(ask(gmail), kDefer);
    EXPECT_EQ(ask(rcpt({{"sasl_method", "LOGIN"}, {"recipient", "y@gmail.com"}})), kDefer);
    // Either condition failing: the rule does not apply.
    EXPECT_EQ(passes(rcpt({{"sasl_method", "CRAM-MD5"}, {"recipient", "x@gmail.com"}}), 3), 3);
    EXPECT_EQ(passes(rcpt({{"sasl_method", "PLAIN"}, {"recipient", "x@gmail.community"}}), 3), 3);
    EXPECT_EQ(passes(rcpt({{"recipient", "x@gmail.com"}}), 3), 3);  // no sasl_method
    EXPECT_EQ(ask(rcpt({{"sasl_method", "PLAIN"}, {"recipient", "x@outlook.com"}})), "DUNNO");
    EXPECT_EQ(keys().size(), 2u);
}

TEST_F(RateStoreTest, OverridesFromTheFileGiveOneKeyAnotherLimit) {
    testsupport::TempDir dir;
    dir.write("overrides", "# per-user limits\n"
                           "rcpt  newsletter   5\n"
                           "rcpt  Robot        unlimited\n"
                           "rcpt  @partner.example  3\n"
                           "rcpt  blocked      0\n");
    configure({{"rules", {rule("rcpt", {"sasl_username"}, "recipients", 2, 3600)}},
               {"overrides", dir.file("overrides")}});
    EXPECT_EQ(passes(rcpt(), 3), 2);
    EXPECT_EQ(passes(rcpt({{"sasl_username", "newsletter"}}), 7), 5);
    EXPECT_EQ(passes(rcpt({{"sasl_username", "robot"}}), 50), 50);
    EXPECT_EQ(passes(rcpt({{"sasl_username", "a@partner.example"}}), 5), 3);
    EXPECT_EQ(passes(rcpt({{"sasl_username", "b@partner.example"}}), 5), 3);
    EXPECT_EQ(passes(rcpt({{"sasl_username", "blocked"}}), 3), 0);
    // An unlimited key stores nothing.
    EXPECT_EQ(keys().size(), 4u);

    // A new file (as a reload reads it): the new limits apply to the same buckets.
    dir.write("overrides", "rcpt alice 4\n");
    configure({{"rules", {rule("rcpt", {"sasl_username"}, "recipients", 2, 3600)}},
               {"overrides", dir.file("overrides")}});
    EXPECT_EQ(passes(rcpt(), 5), 2);
    EXPECT_EQ(passes(rcpt({{"sasl_username", "newsletter"}}), 3), 0);
}

TEST_F(RateStoreTest, EveryKeyHasATtlOfTheTimeToDrain) {
    configure({{"rules",
                {rule("rcpt", {"sasl_username"}, "recipients", 100, 3600),
                 rule("msg", {"sender_domain"}, "messages", 10, 86400),
                 rule("bytes", {"sender"}, "size", 1000000, 600),
                 rule("conn", {"client_network"}, "connections", 20, 60)}}});
    for (int i = 0; i < 50; ++i) ask(rcpt({{"sasl_username", "u" + std::to_string(i)}}));
    ask(at("END-OF-MESSAGE", {{"size", "250000"}}));
    ask(at("CONNECT"));
    auto all = keys();
    EXPECT_EQ(all.size(), 53u);
    for (const auto& k : all) {
        EXPECT_TRUE(k.starts_with("rl:b:{")) << k;
        long long ttl = redis_.command({"PTTL", k}).integer;
        EXPECT_GT(ttl, 0) << k;
        // Level 1 of 100 per hour drains in 36 s; 1 of 10 per day in 8640 s;
        // 250000 of 10^6 per 600 s in 150 s; 1 of 20 per minute in 3 s (+1 s).
        EXPECT_LE(ttl, 8640 * 1000 + 1000) << k;
    }
    auto user_key = settings_->namer.name("rcpt", {"u0"});
    EXPECT_NEAR(redis_.command({"PTTL", user_key}).integer, 37000, 100);
    auto size_key = settings_->namer.name("bytes", {"alice@example.org"});
    EXPECT_NEAR(redis_.command({"PTTL", size_key}).integer, 151000, 100);
}

TEST_F(RateStoreTest, DryRunRulesNeverRefuseButAreCounted) {
    auto r = rule("rcpt", {"sasl_username"}, "recipients", 2, 3600);
    r["dry_run"] = true;
    configure({{"rules", {r, rule("enforced", {"sasl_username"}, "recipients", 10, 3600)}}});
    EXPECT_EQ(passes(rcpt(), 5), 5);
    EXPECT_EQ(counter("ratelimit_rule_dry_run_refused_total", "rcpt"), 3u);
    EXPECT_EQ(counter("ratelimit_rule_refused_total", "rcpt"), 0u);
    EXPECT_EQ(passes(rcpt(), 10), 5);  // the enforced rule counted all 10
}

TEST_F(RateStoreTest, ConcurrentRequestsLetExactlyTheLimitThrough) {
    configure({{"rules", {rule("rcpt", {"sasl_username"}, "recipients", 100, 3600)}}});
    // Two clients: two connections, as two daemons have. Long deadlines: this
    // tests atomicity, not speed.
    proto::redis::Client other(io_.get_executor(), redis_.parsed_url());
    other.start();
    proto::metrics::Registry one_registry, other_registry;
    RateDecider one_decider(settings_, std::make_shared<RedisRateStore>(*client_, 5000ms), clock_,
                            one_registry);
    RateDecider other_decider(settings_, std::make_shared<RedisRateStore>(other, 5000ms), clock_,
                              other_registry);

    int done = 0, passed = 0;
    Request r = make_request(rcpt());
    for (int i = 0; i < 200; ++i) {
        RateDecider& d = i % 2 ? other_decider : one_decider;
        asio::co_spawn(io_, d.decide(r),
                       [&](std::exception_ptr e, proto::policy::Decision decision) {
                           ASSERT_FALSE(e);
                           ++done;
                           passed += decision.action.to_string() == "DUNNO";
                       });
    }
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (done < 200 && std::chrono::steady_clock::now() < deadline) io_.run_one_for(50ms);
    other.stop();
    EXPECT_EQ(done, 200);
    EXPECT_EQ(passed, 100);
}

TEST_F(RateStoreTest, StoreFailureAnswersTheFallbackWithinTheDeadline) {
    configure({{"rules", {rule("rcpt", {"sasl_username"}, "recipients", 1, 3600)}},
               {"on_store_error", "DEFER_IF_PERMIT 4.3.0 try later"}});
    EXPECT_EQ(ask(rcpt()), "DUNNO");
    redis_.pause();
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(ask(rcpt()), "DEFER_IF_PERMIT 4.3.0 try later");
    EXPECT_LT(std::chrono::steady_clock::now() - started, 200ms);
    redis_.resume();
    redis_.stop();
    started = std::chrono::steady_clock::now();
    EXPECT_EQ(ask(rcpt()), "DEFER_IF_PERMIT 4.3.0 try later");
    EXPECT_LT(std::chrono::steady_clock::now() - started, 200ms);
    EXPECT_GE(registry_->counter("ratelimit_store_errors_total", "").value(), 2u);
    redis_.start();
    std::string reply;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        reply = ask(rcpt());
        if (reply == "DUNNO") break;
    }
    EXPECT_EQ(reply, "DUNNO");  // a fresh Redis: the bucket is empty again
    EXPECT_EQ(ask(rcpt()), kDefer);
}

TEST_F(RateStoreTest, OperatorHelpersReadAndResetABucket) {
    configure({{"rules", {rule("rcpt", {"sasl_username"}, "recipients", 10, 100)}}});
    EXPECT_EQ(passes(rcpt(), 4), 4);
    auto key = settings_->namer.name("rcpt", {"alice"});
    auto usage = read_usage(redis_.parsed_url(), key, 10, 100000, clock_.now_ms());
    EXPECT_TRUE(usage.exists);
    EXPECT_DOUBLE_EQ(usage.level, 4);
    EXPECT_GT(usage.ttl_ms, 0);
    usage = read_usage(redis_.parsed_url(), key, 10, 100000, clock_.now_ms() + 25000);
    EXPECT_NEAR(usage.level, 1.5, 1e-9);
    EXPECT_TRUE(reset_bucket(redis_.parsed_url(), key));
    EXPECT_FALSE(reset_bucket(redis_.parsed_url(), key));
    EXPECT_FALSE(read_usage(redis_.parsed_url(), key, 10, 100000, clock_.now_ms()).exists);
    EXPECT_EQ(passes(rcpt(), 11), 10);
}

}  // namespace
