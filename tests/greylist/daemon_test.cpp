// Tests of the built policyd-greylist over the policy protocol with a real
// redis-server: each behaviour (stages, triplet rules, sender normalisation,
// pool-aware and network client keys, whitelists and their SIGHUP reload,
// auto-whitelisting, header, dry run, privacy), malformed requests, Redis
// stopped, hung and restarted, two daemons sharing one Redis, a restart
// keeping state, and the operator commands.
//
// The daemon runs on the real clock, so passing retries use delay 0 (a first
// sight is still deferred, the next attempt passes) or a first-seen time
// written into Redis; nothing sleeps to wait for time to pass.

#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "support/daemon_process.h"
#include "support/policy_conn.h"
#include "support/process.h"
#include "support/redis_server.h"

namespace {

using namespace std::chrono_literals;
using testsupport::PolicyConn;
using testsupport::rcpt_request;
using Attrs = std::map<std::string, std::string>;

const std::string kDefer = "DEFER_IF_PERMIT Greylisted, please try again in ";

std::string request_text(const Attrs& attrs) {
    std::string out;
    for (const auto& [k, v] : attrs) out += k + "=" + v + "\n";
    return out + "\n";
}

std::size_t occurrences(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

using Daemon = testsupport::DaemonProcess;

class GreylistDaemonTest : public ::testing::Test {
protected:
    std::unique_ptr<Daemon> start(nlohmann::json config, const std::string& name = "gl") {
        Daemon::Options options{.program = POLICYD_GREYLIST, .name = name, .redis_url = redis_.url()};
        return std::make_unique<Daemon>(dir_, std::move(options), std::move(config));
    }
    std::size_t key_count(const std::string& pattern) {
        return redis_.command({"KEYS", pattern}).elements.size();
    }
    // Nothing in Redis may grow without bound: every key expires.
    void expect_every_key_has_a_ttl(long long max_age = 35 * 86400) {
        auto keys = redis_.command({"KEYS", "*"});
        EXPECT_FALSE(keys.elements.empty());
        for (const auto& k : keys.elements) {
            long long ttl = redis_.command({"TTL", k.str}).integer;
            EXPECT_GT(ttl, 0) << k.str;
            EXPECT_LE(ttl, max_age) << k.str;
        }
    }

    testsupport::TempDir dir_;
    testsupport::RedisServer redis_;
};

TEST_F(GreylistDaemonTest, NewTripletAndEarlyRetryAreDeferred) {
    auto d = start({});
    auto c = d->connect();
    EXPECT_EQ(c->ask(rcpt_request()), kDefer + "300 seconds");
    std::string reply = c->ask(rcpt_request());
    ASSERT_TRUE(reply.starts_with(kDefer)) << reply;
    int left = std::stoi(reply.substr(kDefer.size()));
    EXPECT_GE(left, 298);
    EXPECT_LE(left, 300);
    EXPECT_EQ(key_count("gl:t:*"), 1u);
}

TEST_F(GreylistDaemonTest, RetryAfterDelayPassesWithOneHeaderPerMessage) {
    auto d = start({{"delay", 0}});
    auto c = d->connect();
    Attrs bob = rcpt_request({{"instance", "m1"}});
    Attrs carol = rcpt_request({{"instance", "m1"}, {"recipient", "carol@example.net"}});
    EXPECT_EQ(c->ask(bob), kDefer + "0 seconds");
    EXPECT_EQ(c->ask(carol), kDefer + "0 seconds");
    bob["instance"] = carol["instance"] = "m2";
    std::string first = c->ask(bob);
    EXPECT_TRUE(first.starts_with("PREPEND X-Greylist: delayed ")) << first;
    EXPECT_NE(first.find(" seconds by policyd-greylist at "), std::string::npos) << first;
    EXPECT_EQ(c->ask(carol), "DUNNO");  // same message: one header
    bob["instance"] = "m3";
    EXPECT_EQ(c->ask(bob), "DUNNO");  // known triplet
}

TEST_F(GreylistDaemonTest, RetryPassesAfterTheConfiguredDelay) {
    auto d = start({{"delay", 300}, {"x_greylist_header", false}});
    auto c = d->connect();
    EXPECT_EQ(c->ask(rcpt_request()), kDefer + "300 seconds");
    // Move the first sight 301 s into the past, as a real retry would find it.
    auto keys = redis_.command({"KEYS", "gl:t:*"});
    ASSERT_EQ(keys.elements.size(), 1u);
    long long first = std::stoll(redis_.command({"GET", keys.elements[0].str}).str);
    redis_.command({"SET", keys.elements[0].str, std::to_string(first - 301), "KEEPTTL"});
    EXPECT_EQ(c->ask(rcpt_request()), "DUNNO");
}

TEST_F(GreylistDaemonTest, OnlyRcptAndDataAreGreylisted) {
    auto d = start({});
    auto c = d->connect();
    for (const char* state : {"CONNECT", "EHLO", "MAIL", "END-OF-MESSAGE", "VRFY", "ETRN"})
        EXPECT_EQ(c->ask(rcpt_request({{"protocol_state", state}})), "DUNNO") << state;
    EXPECT_EQ(c->ask(rcpt_request({{"recipient", ""}})), "DUNNO");
    EXPECT_EQ(key_count("gl:t:*"), 0u);
    // DATA without a recipient (several recipients): greylisted per sender.
    EXPECT_EQ(c->ask(rcpt_request({{"protocol_state", "DATA"}, {"recipient", ""}})),
              kDefer + "300 seconds");
    EXPECT_EQ(key_count("gl:t:*"), 1u);
}

TEST_F(GreylistDaemonTest, SenderVariantsOfOneSenderAreOneTriplet) {
    auto d = start({{"delay", 0}, {"x_greylist_header", false}});
    auto c = d->connect();
    EXPECT_EQ(c->ask(rcpt_request({{"sender", "prvs=1234abcdef=Alice@Example.org"}})),
              kDefer + "0 seconds");
    EXPECT_EQ(c->ask(rcpt_request({{"sender", "prvs=5678fedcba=alice@example.org"}})), "DUNNO");
    EXPECT_EQ(c->ask(rcpt_request({{"sender", "bounce-1234@lists.example"}})),
              kDefer + "0 seconds");
    EXPECT_EQ(c->ask(rcpt_request({{"sender", "bounce-9876@lists.example"}})), "DUNNO");
    EXPECT_EQ(c->ask(rcpt_request({{"sender", "SRS0=ab12=TT=example.org=alice@fwd.example"}})),
              "DUNNO");
}

TEST_F(GreylistDaemonTest, PoolAwareClientKeyMatchesRetryFromAnotherNetwork) {
    auto d = start({{"delay", 0}, {"x_greylist_header", false}, {"whitelist_clients", {}}});
    auto c = d->connect();
    EXPECT_EQ(c->ask(rcpt_request({{"client_address", "198.51.100.1"},
                                   {"client_name", "out1.bigsender.example.com"}})),
              kDefer + "0 seconds");
    EXPECT_EQ(c->ask(rcpt_request({{"client_address", "203.0.113.77"},
                                   {"client_name", "out9.bigsender.example.com"}})),
              "DUNNO");
    // Without a verified name the network is the key.
    EXPECT_EQ(c->ask(rcpt_request({{"client_address", "203.0.113.77"},
                                   {"client_name", "unknown"}})),
              kDefer + "0 seconds");
}

TEST_F(GreylistDaemonTest, NetworkClientKeyAndPrefixes) {
    auto d = start({{"delay", 0}, {"x_greylist_header", false}, {"client_key", "network"},
                    {"ipv4_prefix", 32}, {"ipv6_prefix", 48}});
    auto c = d->connect();
    EXPECT_EQ(c->ask(rcpt_request({{"client_address", "192.0.2.1"}})), kDefer + "0 seconds");
    // Same name, other host of the /24: a new triplet with lookup by host.
    EXPECT_EQ(c->ask(rcpt_request({{"client_address", "192.0.2.2"}})), kDefer + "0 seconds");
    EXPECT_EQ(c->ask(rcpt_request({{"client_address", "192.0.2.2"}})), "DUNNO");
    EXPECT_EQ(c->ask(rcpt_request({{"client_address", "2001:db8:1:1::1"}})), kDefer + "0 seconds");
    EXPECT_EQ(c->ask(rcpt_request({{"client_address", "2001:db8:1:ffff::9"}})), "DUNNO");
    EXPECT_EQ(redis_.command({"EXISTS", "gl:t:{2001:db8:1::/48}:17:alice@example.org/bob@example.net"})
                  .integer,
              1);
}

TEST_F(GreylistDaemonTest, TripletsWhoseJoinedAddressesAreEqualAreDistinct) {
    auto d = start({{"delay", 0}, {"x_greylist_header", false}});
    auto c = d->connect();
    auto ask = [&](std::string sender, std::string recipient) {
        return c->ask(rcpt_request({{"sender", sender}, {"recipient", recipient}}));
    };
    EXPECT_EQ(ask("q@x.example/bob", "z@example.org"), kDefer + "0 seconds");
    // Another triplet: its first sight, not a retry of the one above.
    EXPECT_EQ(ask("q@x.example", "bob/z@example.org"), kDefer + "0 seconds");
    EXPECT_EQ(ask("q@x.example/bob", "z@example.org"), "DUNNO");
    EXPECT_EQ(ask("q@x.example", "bob/z@example.org"), "DUNNO");
}

TEST_F(GreylistDaemonTest, CommandErrorNamesRedisOnce) {
    auto r = testsupport::run({POLICYD_GREYLIST, "--redis", "redis://127.0.0.1:1", "show",
                               "192.0.2.1", "a@example.org", "b@example.net"});
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_EQ(occurrences(r.output, "redis://127.0.0.1:1"), 1u) << r.output;
    EXPECT_NE(r.output.find("policyd-greylist: redis://127.0.0.1:1: connect failed"),
              std::string::npos)
        << r.output;
}

TEST_F(GreylistDaemonTest, WhitelistsAndTheirReloadOnSighup) {
    dir_.write("clients", "# postgrey format\ntrusted.example\n198.51.100.0/24\n/^relay[0-9]+\\./\n");
    dir_.write("recipients", "postmaster@\nspamlovers.example\n");
    nlohmann::json config{{"whitelist_clients", {dir_.file("clients")}},
                          {"whitelist_recipients", {dir_.file("recipients")}}};
    auto d = start(config);
    auto c = d->connect();
    EXPECT_EQ(c->ask(rcpt_request({{"client_name", "mx.trusted.example"}})), "DUNNO");
    EXPECT_EQ(c->ask(rcpt_request({{"client_name", "unknown"}, {"client_address", "198.51.100.9"}})),
              "DUNNO");
    EXPECT_EQ(c->ask(rcpt_request({{"client_name", "relay7.other.example"}})), "DUNNO");
    EXPECT_EQ(c->ask(rcpt_request({{"recipient", "postmaster@example.net"}})), "DUNNO");
    EXPECT_EQ(c->ask(rcpt_request({{"recipient", "x@spamlovers.example"}})), "DUNNO");
    EXPECT_EQ(key_count("gl:t:*"), 0u);
    EXPECT_EQ(c->ask(rcpt_request({{"client_name", "mail.example.org"}})), kDefer + "300 seconds");

    // Add an entry and reload: connections stay, the new list applies.
    dir_.write("clients", "example.org\n");
    d->signal(SIGHUP);
    std::string reply;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        reply = c->ask(rcpt_request({{"sender", "other@example.org"}}));
        if (reply == "DUNNO") break;
    }
    EXPECT_EQ(reply, "DUNNO");
    // A broken list is refused and the running one kept.
    dir_.write("clients", "not a host name\n");
    d->signal(SIGHUP);
    deadline = std::chrono::steady_clock::now() + 10s;
    while (d->log().find("reload refused") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
        c->ask(rcpt_request());
    }
    EXPECT_TRUE(d->log_has("clients:1"));
    EXPECT_EQ(c->ask(rcpt_request({{"sender", "third@example.org"}})), "DUNNO");
}

TEST_F(GreylistDaemonTest, AutoWhitelistedClientPassesNewTriplets) {
    auto d = start({{"delay", 0}, {"x_greylist_header", false}, {"auto_whitelist_clients", 1},
                    {"auto_whitelist_interval", 0}});
    auto c = d->connect();
    EXPECT_EQ(c->ask(rcpt_request()), kDefer + "0 seconds");
    EXPECT_EQ(c->ask(rcpt_request()), "DUNNO");
    EXPECT_EQ(c->ask(rcpt_request({{"recipient", "never-seen@example.net"}})), "DUNNO");
    EXPECT_TRUE(d->log_has("client auto-whitelisted"));
    // The client record and its triplets share one hash tag (one Cluster slot).
    auto keys = redis_.command({"KEYS", "*"});
    ASSERT_EQ(keys.elements.size(), 2u);
    for (const auto& k : keys.elements)
        EXPECT_NE(k.str.find(":{example.org}"), std::string::npos) << k.str;
    expect_every_key_has_a_ttl();
}

TEST_F(GreylistDaemonTest, DryRunAnswersDunnoButRecords) {
    auto d = start({{"dry_run", true}});
    auto c = d->connect();
    EXPECT_EQ(c->ask(rcpt_request()), "DUNNO");
    EXPECT_EQ(key_count("gl:t:*"), 1u);
    EXPECT_TRUE(d->log_has("dry run, would defer: new triplet"));
}

TEST_F(GreylistDaemonTest, CustomActionAndText) {
    auto d = start({{"greylist_action", "450 4.2.0"},
                    {"greylist_text", "Come back in %s s to %r"}});
    auto c = d->connect();
    EXPECT_EQ(c->ask(rcpt_request()), "450 4.2.0 Come back in 300 s to example.net");
}

TEST_F(GreylistDaemonTest, PrivacyKeepsAddressesOutOfRedis) {
    dir_.write("key", "0123456789abcdef0123456789abcdef\n");
    auto d = start({{"privacy", true}, {"privacy_key_file", dir_.file("key")}, {"delay", 0},
                    {"x_greylist_header", false}});
    auto c = d->connect();
    EXPECT_EQ(c->ask(rcpt_request()), kDefer + "0 seconds");
    EXPECT_EQ(c->ask(rcpt_request()), "DUNNO");
    auto keys = redis_.command({"KEYS", "*"});
    ASSERT_FALSE(keys.elements.empty());
    for (const auto& k : keys.elements) {
        EXPECT_EQ(k.str.find("example"), std::string::npos) << k.str;
        EXPECT_EQ(k.str.find("192.0.2"), std::string::npos) << k.str;
        EXPECT_EQ(k.str.find("alice"), std::string::npos) << k.str;
    }
    expect_every_key_has_a_ttl();
}

TEST_F(GreylistDaemonTest, MalformedRequestsCloseOnlyThatConnection) {
    auto d = start({});
    auto good = d->connect();
    auto bad = d->connect();
    bad->send_raw("protocol_state=RCPT\n" + std::string(10000, 'x') + "\n\n");
    EXPECT_TRUE(bad->closed_by_peer());
    auto bad2 = d->connect();
    bad2->send_raw("no equals sign here\n\n");
    EXPECT_TRUE(bad2->closed_by_peer());
    // Well-formed but useless values get DUNNO, never a crash.
    EXPECT_EQ(good->ask(rcpt_request({{"client_address", "not-an-ip"}})), "DUNNO");
    EXPECT_EQ(good->ask(rcpt_request({{"client_address", ""}})), "DUNNO");
    EXPECT_EQ(good->ask(rcpt_request({{"sender", std::string(7000, 'a') + "@x"}})),
              kDefer + "300 seconds");
    EXPECT_EQ(good->ask(rcpt_request()), kDefer + "300 seconds");
}

TEST_F(GreylistDaemonTest, RedisDownAnswersFallbackInTimeAndRecovers) {
    const int metrics_port = testsupport::free_port();
    const std::string metrics_url = "http://127.0.0.1:" + std::to_string(metrics_port) + "/metrics";
    auto d = start({{"on_store_error", "DEFER_IF_PERMIT Service temporarily unavailable"},
                    {"metrics", "inet:127.0.0.1:" + std::to_string(metrics_port)}});
    auto c = d->connect();
    EXPECT_EQ(c->ask(rcpt_request()), kDefer + "300 seconds");

    redis_.pause();  // hung: connections open, nothing answered
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(c->ask(rcpt_request({{"recipient", "x@example.net"}})),
              "DEFER_IF_PERMIT Service temporarily unavailable");
    EXPECT_LT(std::chrono::steady_clock::now() - started, 200ms);
    redis_.resume();

    redis_.stop();
    started = std::chrono::steady_clock::now();
    EXPECT_EQ(c->ask(rcpt_request({{"recipient", "y@example.net"}})),
              "DEFER_IF_PERMIT Service temporarily unavailable");
    EXPECT_LT(std::chrono::steady_clock::now() - started, 200ms);
    EXPECT_TRUE(d->log_has("greylist store unavailable"));
    auto metrics = testsupport::run({"curl", "-sS", "--max-time", "5", metrics_url});
    EXPECT_NE(metrics.output.find("greylist_store_errors_total 2"), std::string::npos)
        << metrics.output;

    redis_.start();  // empty (no persistence): the triplet is new again
    std::string reply;
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
        reply = c->ask(rcpt_request({{"recipient", "z@example.net"}}));
        if (reply.starts_with(kDefer)) break;
    }
    EXPECT_EQ(reply, kDefer + "300 seconds");
}

TEST_F(GreylistDaemonTest, ConcurrentFirstSightsOnTwoDaemonsMakeOneRecord) {
    // 200 connections, half on each of two daemons sharing Redis, send the
    // same new triplet at once: one first sight, 199 early retries.
    auto a = start({}, "a");
    auto b = start({}, "b");
    constexpr int kConnections = 200;
    std::vector<std::unique_ptr<PolicyConn>> conns;
    for (int i = 0; i < kConnections; ++i) conns.push_back((i % 2 ? a : b)->connect());
    const std::string request = request_text(rcpt_request());
    for (auto& c : conns) c->send_raw(request);
    for (auto& c : conns) {
        std::string reply = c->read_reply();
        EXPECT_TRUE(reply.starts_with("action=" + kDefer)) << reply;
    }
    EXPECT_EQ(key_count("*"), 1u);
    std::size_t fresh = 0, early = 0;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        std::string logs = a->log() + b->log();
        fresh = occurrences(logs, "new triplet");
        early = occurrences(logs, "early retry");
        if (fresh + early >= static_cast<std::size_t>(kConnections)) break;
    }
    EXPECT_EQ(fresh, 1u);
    EXPECT_EQ(early, static_cast<std::size_t>(kConnections - 1));
}

TEST_F(GreylistDaemonTest, StaleRecordsStartOver) {
    // retry_window and max_age on the real clock: age the stored records.
    auto d = start({{"delay", 60}, {"retry_window", 3600}, {"max_age", 86400},
                    {"x_greylist_header", false}});
    auto c = d->connect();
    EXPECT_EQ(c->ask(rcpt_request()), kDefer + "60 seconds");
    auto keys = redis_.command({"KEYS", "gl:t:*"});
    ASSERT_EQ(keys.elements.size(), 1u);
    const std::string key = keys.elements[0].str;
    EXPECT_LE(redis_.command({"TTL", key}).integer, 3600);
    long long first = std::stoll(redis_.command({"GET", key}).str);
    // A retry after the retry window is a first sight again.
    redis_.command({"SET", key, std::to_string(first - 3700), "KEEPTTL"});
    EXPECT_EQ(c->ask(rcpt_request()), kDefer + "60 seconds");
    // A retry inside the window, after the delay, passes; the record now lives max_age.
    first = std::stoll(redis_.command({"GET", key}).str);
    redis_.command({"SET", key, std::to_string(first - 61), "KEEPTTL"});
    EXPECT_EQ(c->ask(rcpt_request()), "DUNNO");
    long long ttl = redis_.command({"TTL", key}).integer;
    EXPECT_GT(ttl, 3600);
    EXPECT_LE(ttl, 86400);
    // Passed, but not seen for longer than max_age: forgotten.
    long long last = -std::stoll(redis_.command({"GET", key}).str);
    redis_.command({"SET", key, std::to_string(-(last - 86401)), "KEEPTTL"});
    EXPECT_EQ(c->ask(rcpt_request()), kDefer + "60 seconds");
}

TEST_F(GreylistDaemonTest, DataStageWithOneRecipientUsesIt) {
    auto d = start({{"delay", 0}, {"x_greylist_header", false}});
    auto c = d->connect();
    EXPECT_EQ(c->ask(rcpt_request()), kDefer + "0 seconds");
    EXPECT_EQ(c->ask(rcpt_request()), "DUNNO");
    // smtpd_data_restrictions for a one-recipient message: the same triplet.
    EXPECT_EQ(c->ask(rcpt_request({{"protocol_state", "DATA"}, {"recipient_count", "1"}})),
              "DUNNO");
    EXPECT_EQ(key_count("gl:t:*"), 1u);
}

TEST_F(GreylistDaemonTest, TwoDaemonsShareOneRedis) {
    auto a = start({{"delay", 0}, {"x_greylist_header", false}}, "a");
    auto b = start({{"delay", 0}, {"x_greylist_header", false}}, "b");
    auto ca = a->connect();
    auto cb = b->connect();
    EXPECT_EQ(ca->ask(rcpt_request()), kDefer + "0 seconds");
    EXPECT_EQ(cb->ask(rcpt_request()), "DUNNO");  // the retry reached the other MX
    EXPECT_EQ(cb->ask(rcpt_request({{"recipient", "new@example.net"}})), kDefer + "0 seconds");
    EXPECT_EQ(ca->ask(rcpt_request({{"recipient", "new@example.net"}})), "DUNNO");
}

TEST_F(GreylistDaemonTest, RestartKeepsState) {
    auto d = start({{"delay", 0}, {"x_greylist_header", false}});
    {
        auto c = d->connect();
        EXPECT_EQ(c->ask(rcpt_request()), kDefer + "0 seconds");
    }
    EXPECT_EQ(WEXITSTATUS(d->stop()), 0);
    d->start(redis_.url());
    auto c = d->connect();
    EXPECT_EQ(c->ask(rcpt_request()), "DUNNO");
}

TEST_F(GreylistDaemonTest, OperatorCommands) {
    auto d = start({});
    auto c = d->connect();
    const std::vector<std::string> triplet{"192.0.2.10", "alice@example.org", "bob@example.net",
                                           "mail.example.org"};
    auto with = [](std::string verb, std::vector<std::string> rest) {
        rest.insert(rest.begin(), verb);
        return rest;
    };
    auto r = d->command(with("show", triplet));
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("not found"), std::string::npos);

    EXPECT_EQ(c->ask(rcpt_request()), kDefer + "300 seconds");
    r = d->command(with("show", triplet));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("waiting for a retry"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("gl:t:{example.org}:17:alice@example.org/bob@example.net"),
              std::string::npos)
        << r.output;

    r = d->command(with("allow", triplet));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(c->ask(rcpt_request()), "DUNNO");
    EXPECT_NE(d->command(with("show", triplet)).output.find("state: passed"), std::string::npos);

    r = d->command(with("delete", triplet));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(c->ask(rcpt_request()), kDefer + "300 seconds");

    // A client allowed by the operator passes every triplet.
    r = d->command({"allow", "client", "203.0.113.5"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(c->ask(rcpt_request({{"client_address", "203.0.113.99"}, {"client_name", "unknown"}})),
              "DUNNO");
    r = d->command({"show", "client", "203.0.113.5"});
    EXPECT_NE(r.output.find("allowed by operator"), std::string::npos) << r.output;
    expect_every_key_has_a_ttl();
    EXPECT_EQ(d->command({"delete", "client", "203.0.113.5"}).exit_code, 0);
    EXPECT_EQ(c->ask(rcpt_request({{"client_address", "203.0.113.99"}, {"client_name", "unknown"}})),
              kDefer + "300 seconds");

    EXPECT_EQ(d->command({"show", "client"}).exit_code, 2);
    EXPECT_EQ(d->command({"show", "not-an-ip", "a@b", "c@d"}).exit_code, 2);
    r = testsupport::run({POLICYD_GREYLIST, "--redis", "redis://127.0.0.1:1", "show", "client",
                          "192.0.2.1"});
    EXPECT_EQ(r.exit_code, 2) << r.output;
}

TEST_F(GreylistDaemonTest, CheckConfigNamesTheBadKey) {
    dir_.write("bad.json", R"({"whitelist_clients": ["/nonexistent/file"]})");
    auto r = testsupport::run({POLICYD_GREYLIST, "--config", dir_.file("bad.json"),
                               "--check-config"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("whitelist_clients"), std::string::npos) << r.output;
    dir_.write("good.json", R"({"delay": "5m", "max_age": "35d", "retry_window": "2d"})");
    r = testsupport::run({POLICYD_GREYLIST, "--config", dir_.file("good.json"), "--check-config"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
