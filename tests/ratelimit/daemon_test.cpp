// Tests of the built policyd-ratelimit over the policy protocol with a real
// redis-server: each count kind deferred at the stages that can stop mail,
// per-user and per-client rules, match, overrides and their SIGHUP reload,
// dry run, on_store_error with Redis hung, stopped and restarted, malformed
// requests, 200 concurrent requests through two daemons against a limit of
// 100, and the operator command.
//
// The daemon runs on the real clock, so windows are long (an hour or more)
// and nothing waits for time to pass: within a test run, nothing drains.

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "support/daemon_process.h"
#include "support/policy_conn.h"
#include "support/process.h"
#include "support/redis_server.h"

namespace {

using namespace std::chrono_literals;
using testsupport::PolicyConn;
using Attrs = std::map<std::string, std::string>;

const std::string kDefer = "DEFER_IF_PERMIT 4.7.1 Rate limit exceeded, try again later";

Attrs request(const std::string& state, Attrs overrides = {}) {
    Attrs r{{"request", "smtpd_access_policy"},
            {"protocol_state", state},
            {"protocol_name", "ESMTP"},
            {"client_address", "192.0.2.10"},
            {"client_name", "mail.example.org"},
            {"reverse_client_name", "mail.example.org"},
            {"helo_name", "mail.example.org"},
            {"sasl_method", "PLAIN"},
            {"sasl_username", "alice"},
            {"sender", "alice@example.org"},
            {"recipient", "bob@example.net"},
            {"recipient_count", "0"},
            {"queue_id", "ABC123"},
            {"instance", "1a2b.3c4d.1"},
            {"size", "0"}};
    for (auto& [k, v] : overrides) r[k] = v;
    return r;
}

Attrs rcpt(Attrs overrides = {}) { return request("RCPT", std::move(overrides)); }

nlohmann::json rule(const std::string& name, std::vector<std::string> key,
                    const std::string& count, std::int64_t limit, const std::string& window) {
    return {{"name", name}, {"key", key}, {"count", count}, {"limit", limit}, {"window", window}};
}

using Daemon = testsupport::DaemonProcess;

std::string serialize(const Attrs& attrs) {
    std::string out;
    for (const auto& [k, v] : attrs) out += k + "=" + v + "\n";
    return out + "\n";
}

// The action of a reply block ("" when the connection closed).
std::string action_of(const std::string& reply) {
    if (!reply.starts_with("action=")) return "";
    auto end = reply.find('\n');
    return reply.substr(7, end - 7);
}

class RateDaemonTest : public ::testing::Test {
protected:
    std::unique_ptr<Daemon> start(nlohmann::json config, const std::string& name = "rl") {
        Daemon::Options options{.program = POLICYD_RATELIMIT, .name = name, .redis_url = redis_.url()};
        return std::make_unique<Daemon>(dir_, std::move(options), std::move(config));
    }
    int passes(PolicyConn& c, const Attrs& attrs, int n) {
        int ok = 0;
        for (int i = 0; i < n; ++i) ok += c.ask(attrs) == "DUNNO";
        return ok;
    }
    // Poll with requests until the reply is `want` (after a reload), bounded.
    std::string ask_until(PolicyConn& c, const Attrs& attrs, const std::string& want) {
        std::string reply;
        auto deadline = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < deadline) {
            reply = c.ask(attrs);
            if (reply == want) break;
        }
        return reply;
    }
    std::size_t key_count() { return redis_.command({"KEYS", "*"}).elements.size(); }

    testsupport::TempDir dir_;
    testsupport::RedisServer redis_;
};

TEST_F(RateDaemonTest, SubmissionPerSaslUserRecipients) {
    auto d = start({{"rules", {rule("user_rcpt", {"sasl_username"}, "recipients", 3, "1h")}}});
    auto c = d->connect();
    EXPECT_EQ(passes(*c, rcpt(), 3), 3);
    EXPECT_EQ(c->ask(rcpt({{"recipient", "carol@example.net"}})), kDefer);
    EXPECT_EQ(c->ask(rcpt({{"sasl_username", "Alice"}})), kDefer);
    EXPECT_EQ(c->ask(rcpt({{"sasl_username", "bob"}})), "DUNNO");
    // Unauthenticated mail is not this rule's business.
    EXPECT_EQ(passes(*c, rcpt({{"sasl_username", ""}, {"sasl_method", ""}}), 5), 5);
    EXPECT_EQ(key_count(), 2u);
    EXPECT_NE(d->log().find("rule user_rcpt exceeded, key alice"), std::string::npos) << d->log();
}

TEST_F(RateDaemonTest, MessagesAreDeferredAtRcptDataAndEndOfMessage) {
    auto d = start({{"rules", {rule("msgs", {"sasl_username"}, "messages", 2, "1d")}}});
    auto c = d->connect();
    for (int m = 0; m < 2; ++m) {
        EXPECT_EQ(c->ask(request("MAIL")), "DUNNO");
        EXPECT_EQ(c->ask(rcpt()), "DUNNO");
        EXPECT_EQ(c->ask(rcpt({{"recipient", "carol@example.net"}})), "DUNNO");
        EXPECT_EQ(c->ask(request("DATA", {{"recipient", ""}, {"recipient_count", "2"}})), "DUNNO");
        EXPECT_EQ(c->ask(request("END-OF-MESSAGE",
                                 {{"recipient", ""}, {"recipient_count", "2"}, {"size", "900"}})),
                  "DUNNO");
    }
    EXPECT_EQ(c->ask(request("MAIL")), kDefer);
    EXPECT_EQ(c->ask(rcpt()), kDefer);
    EXPECT_EQ(c->ask(request("DATA", {{"recipient", ""}})), kDefer);
    EXPECT_EQ(c->ask(request("END-OF-MESSAGE", {{"recipient", ""}})), kDefer);
    EXPECT_EQ(c->ask(rcpt({{"sasl_username", "bob"}})), "DUNNO");
}

TEST_F(RateDaemonTest, SizeIsCountedAtEndOfMessage) {
    // The longest window: a million bytes drain at one byte per 31 s, so the
    // real clock frees nothing while the test runs.
    auto d = start({{"rules", {rule("bytes", {"sasl_username"}, "size", 1000000, "366d")}}});
    auto c = d->connect();
    EXPECT_EQ(c->ask(rcpt({{"size", "1500000"}})), kDefer);  // declared SIZE= too big
    EXPECT_EQ(c->ask(rcpt({{"size", "700000"}})), "DUNNO");
    EXPECT_EQ(c->ask(request("END-OF-MESSAGE", {{"size", "700000"}})), "DUNNO");
    EXPECT_EQ(c->ask(request("DATA", {{"size", "300001"}})), kDefer);
    EXPECT_EQ(c->ask(request("END-OF-MESSAGE", {{"size", "300001"}})), kDefer);
    EXPECT_EQ(c->ask(request("END-OF-MESSAGE", {{"size", "300000"}})), "DUNNO");
    EXPECT_EQ(c->ask(rcpt()), kDefer);  // full: no room for any message
}

TEST_F(RateDaemonTest, InboundConnectionsPerClientAtConnect) {
    auto conn = rule("client_conn", {"client_address"}, "connections", 2, "1h");
    conn["action"] = "421 4.7.0 Too many connections from you";
    auto d = start({{"rules", {conn, rule("client_rcpt", {"client_network"}, "recipients", 4,
                                           "1h")}}});
    auto c = d->connect();
    Attrs connect = request("CONNECT", {{"sasl_username", ""}, {"sasl_method", ""},
                                        {"sender", ""}, {"recipient", ""}});
    EXPECT_EQ(c->ask(connect), "DUNNO");
    EXPECT_EQ(c->ask(connect), "DUNNO");
    EXPECT_EQ(c->ask(connect), "421 4.7.0 Too many connections from you");
    // The connections rule counts only at CONNECT; the recipients rule
    // groups a /24 (the default ipv4_prefix).
    EXPECT_EQ(passes(*c, rcpt({{"client_address", "192.0.2.11"}}), 4), 4);
    EXPECT_EQ(c->ask(rcpt({{"client_address", "192.0.2.200"}})), kDefer);
    EXPECT_EQ(c->ask(rcpt({{"client_address", "198.51.100.1"}})), "DUNNO");
}

TEST_F(RateDaemonTest, MatchLimitsWhichRequestsARuleSees) {
    auto r = rule("freemail", {"sasl_username"}, "recipients", 1, "1h");
    r["match"] = {{"recipient_domain", {"Gmail.com", "/^(outlook|hotmail)\\.[a-z.]+$/"}}};
    auto d = start({{"rules", {r}}});
    auto c = d->connect();
    EXPECT_EQ(c->ask(rcpt({{"recipient", "x@GMAIL.COM"}})), "DUNNO");
    EXPECT_EQ(c->ask(rcpt({{"recipient", "y@hotmail.co.uk"}})), kDefer);
    EXPECT_EQ(passes(*c, rcpt({{"recipient", "z@example.net"}}), 5), 5);
}

TEST_F(RateDaemonTest, OverridesFileIsReloadedOnSighup) {
    dir_.write("overrides", "user_rcpt vip 5\n");
    auto d = start({{"rules", {rule("user_rcpt", {"sasl_username"}, "recipients", 1, "1h")}},
                    {"overrides", dir_.file("overrides")}});
    auto c = d->connect();
    EXPECT_EQ(passes(*c, rcpt({{"sasl_username", "vip"}}), 6), 5);
    EXPECT_EQ(passes(*c, rcpt(), 2), 1);

    dir_.write("overrides", "user_rcpt vip 5\nuser_rcpt alice 3\n");
    d->signal(SIGHUP);
    // alice used 1 of her new 3: the first pass after the reload is the proof.
    EXPECT_EQ(ask_until(*c, rcpt(), "DUNNO"), "DUNNO");
    EXPECT_EQ(c->ask(rcpt()), "DUNNO");
    EXPECT_EQ(c->ask(rcpt()), kDefer);

    // A broken file is refused and the running overrides kept.
    dir_.write("overrides", "user_rcpt alice lots\n");
    d->signal(SIGHUP);
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (d->log().find("reload refused") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline)
        c->ask(rcpt({{"sasl_username", "nobody"}}));
    EXPECT_NE(d->log().find("line 1"), std::string::npos) << d->log();
    EXPECT_EQ(c->ask(rcpt({{"sasl_username", "vip"}})), kDefer);
}

TEST_F(RateDaemonTest, MetricsArePerRule) {
    const int metrics_port = testsupport::free_port();
    auto d = start({{"metrics", "inet:127.0.0.1:" + std::to_string(metrics_port)},
                    {"rules", {rule("user_rcpt", {"sasl_username"}, "recipients", 2, "1h"),
                               rule("client_msgs", {"client_address"}, "messages", 9, "1h")}}});
    auto c = d->connect();
    EXPECT_EQ(passes(*c, rcpt(), 5), 2);
    EXPECT_EQ(c->ask(rcpt({{"sasl_username", ""}})), "DUNNO");
    auto m = testsupport::run({"curl", "-sS", "--max-time", "5",
                               "http://127.0.0.1:" + std::to_string(metrics_port) + "/metrics"});
    ASSERT_EQ(m.exit_code, 0) << m.output;
    EXPECT_NE(m.output.find("ratelimit_rule_applied_total{rule=\"user_rcpt\"} 5"),
              std::string::npos) << m.output;
    EXPECT_NE(m.output.find("ratelimit_rule_refused_total{rule=\"user_rcpt\"} 3"),
              std::string::npos) << m.output;
    // The messages rule checks at RCPT: applied to all six, refused none.
    EXPECT_NE(m.output.find("ratelimit_rule_applied_total{rule=\"client_msgs\"} 6"),
              std::string::npos) << m.output;
    EXPECT_NE(m.output.find("ratelimit_rule_refused_total{rule=\"client_msgs\"} 0"),
              std::string::npos) << m.output;
    EXPECT_NE(m.output.find("ratelimit_store_errors_total 0"), std::string::npos) << m.output;
}

TEST_F(RateDaemonTest, HashKeyKeepsNamesOutOfRedisAndLogs) {
    dir_.write("secret", "0123456789abcdef0123456789abcdef\n");
    nlohmann::json config{{"hash_key_file", dir_.file("secret")},
                          {"key_prefix", "mx1rl"},
                          {"rules", {rule("user_rcpt", {"sasl_username"}, "recipients", 1, "1h")}}};
    auto d = start(config);
    auto c = d->connect();
    EXPECT_EQ(c->ask(rcpt({{"sasl_username", "secret-user"}})), "DUNNO");
    EXPECT_EQ(c->ask(rcpt({{"sasl_username", "secret-user"}})), kDefer);
    auto keys = redis_.command({"KEYS", "*"});
    ASSERT_EQ(keys.elements.size(), 1u);
    EXPECT_TRUE(keys.elements[0].str.starts_with("mx1rl:b:{")) << keys.elements[0].str;
    EXPECT_EQ(keys.elements[0].str.find("secret"), std::string::npos);
    // Another secret names other buckets: the same user starts empty.
    dir_.write("secret2", "another secret of enough length\n");
    config["hash_key_file"] = dir_.file("secret2");
    auto d2 = start(config, "rl2");
    auto c2 = d2->connect();
    EXPECT_EQ(c2->ask(rcpt({{"sasl_username", "secret-user"}})), "DUNNO");
    // The operator command finds the bucket through the same configuration.
    auto r = d->command({"show", "user_rcpt", "secret-user"});
    EXPECT_NE(r.output.find("used:      1 of 1"), std::string::npos) << r.output;
    // The reason names no key (the decision line itself still shows the
    // request's attributes, unless log_decisions is off).
    EXPECT_NE(d->log().find("rule user_rcpt exceeded, key (hashed)"), std::string::npos)
        << d->log();
}

TEST_F(RateDaemonTest, CommandErrorNamesRedisOnce) {
    nlohmann::json config{{"rules", {rule("user_rcpt", {"sasl_username"}, "recipients", 3, "1h")}}};
    dir_.write("down.json", config.dump());
    for (std::string verb : {"show", "reset"}) {
        auto r = testsupport::run({POLICYD_RATELIMIT, "--config", dir_.file("down.json"), "--redis",
                                   "redis://127.0.0.1:1", verb, "user_rcpt", "someone"});
        EXPECT_EQ(r.exit_code, 1) << r.output;
        std::size_t n = 0;
        for (auto at = r.output.find("redis://127.0.0.1:1"); at != std::string::npos;
             at = r.output.find("redis://127.0.0.1:1", at + 1))
            ++n;
        EXPECT_EQ(n, 1u) << r.output;
    }
}

TEST_F(RateDaemonTest, DryRunAnswersDunnoAndLogs) {
    auto d = start({{"dry_run", true},
                    {"rules", {rule("user_rcpt", {"sasl_username"}, "recipients", 1, "1h")}}});
    auto c = d->connect();
    EXPECT_EQ(passes(*c, rcpt(), 4), 4);
    EXPECT_EQ(key_count(), 1u);
    std::string log = d->log();
    EXPECT_NE(log.find("dry run: rate limit exceeded"), std::string::npos) << log;
    EXPECT_NE(log.find("dry run: rule user_rcpt exceeded"), std::string::npos) << log;
}

TEST_F(RateDaemonTest, RedisDownAnswersFallbackInTimeAndRecovers) {
    auto d = start({{"rules", {rule("user_rcpt", {"sasl_username"}, "recipients", 1, "1h")}},
                    {"on_store_error", "DEFER_IF_PERMIT 4.3.0 Service temporarily unavailable"}});
    auto c = d->connect();
    EXPECT_EQ(c->ask(rcpt()), "DUNNO");
    EXPECT_EQ(c->ask(rcpt()), kDefer);
    const std::string fallback = "DEFER_IF_PERMIT 4.3.0 Service temporarily unavailable";

    redis_.pause();  // hung: the connection stays open, nothing is answered
    for (int i = 0; i < 3; ++i) {
        auto started = std::chrono::steady_clock::now();
        EXPECT_EQ(c->ask(rcpt()), fallback);
        EXPECT_LT(std::chrono::steady_clock::now() - started, 200ms);
    }
    redis_.resume();

    redis_.stop();
    for (int i = 0; i < 3; ++i) {
        auto started = std::chrono::steady_clock::now();
        EXPECT_EQ(c->ask(rcpt({{"sasl_username", "bob"}})), fallback);
        EXPECT_LT(std::chrono::steady_clock::now() - started, 200ms);
    }
    EXPECT_NE(d->log().find("store error"), std::string::npos) << d->log();

    redis_.start();  // empty (no persistence): alice starts again
    EXPECT_EQ(ask_until(*c, rcpt(), "DUNNO"), "DUNNO");
    EXPECT_EQ(c->ask(rcpt()), kDefer);
}

TEST_F(RateDaemonTest, DefaultFallbackIsDunno) {
    auto d = start({{"rules", {rule("user_rcpt", {"sasl_username"}, "recipients", 0, "1h")}}});
    auto c = d->connect();
    EXPECT_EQ(c->ask(rcpt()), kDefer);
    redis_.stop();
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(c->ask(rcpt()), "DUNNO");
    EXPECT_LT(std::chrono::steady_clock::now() - started, 200ms);
}

TEST_F(RateDaemonTest, MalformedRequestsCloseOnlyThatConnection) {
    auto d = start({{"rules", {rule("user_rcpt", {"sasl_username"}, "recipients", 2, "1h")}}});
    auto good = d->connect();
    EXPECT_EQ(good->ask(rcpt()), "DUNNO");
    auto bad = d->connect();
    bad->send_raw("protocol_state=RCPT\n" + std::string(10000, 'x') + "\n\n");
    EXPECT_TRUE(bad->closed_by_peer());
    auto bad2 = d->connect();
    bad2->send_raw("no equals sign here\n\n");
    EXPECT_TRUE(bad2->closed_by_peer());
    // Well-formed but odd values never crash the daemon.
    EXPECT_EQ(good->ask(rcpt({{"sasl_username", std::string(7000, 'a')}})), "DUNNO");
    EXPECT_EQ(good->ask(rcpt({{"client_address", "not-an-ip"}, {"size", "-5x"}})), "DUNNO");
    EXPECT_EQ(good->ask(rcpt({{"protocol_state", "NONSENSE"}})), "DUNNO");
    EXPECT_EQ(good->ask({{"request", "smtpd_access_policy"}}), "DUNNO");
    EXPECT_EQ(good->ask(rcpt()), kDefer);  // alice: 1 before + the 7000-a user was another key
}

TEST_F(RateDaemonTest, TwoDaemonsLetExactlyTheLimitThroughUnderConcurrency) {
    nlohmann::json config{
        {"rules", {rule("user_rcpt", {"sasl_username"}, "recipients", 100, "1d")}},
        {"redis_timeout_ms", 5000}};
    auto a = start(config, "a");
    auto b = start(config, "b");
    std::vector<std::unique_ptr<PolicyConn>> conns;
    for (int i = 0; i < 200; ++i) conns.push_back((i % 2 ? b : a)->connect());
    // Every request is written before any reply is read: 200 in flight at once.
    const std::string wire = serialize(rcpt());
    for (auto& c : conns) c->send_raw(wire);
    int passed = 0, deferred = 0;
    for (auto& c : conns) {
        std::string action = action_of(c->read_reply(10s));
        passed += action == "DUNNO";
        deferred += action == kDefer;
    }
    EXPECT_EQ(passed, 100);
    EXPECT_EQ(deferred, 100);
    EXPECT_EQ(conns[0]->ask(rcpt()), kDefer);
}

TEST_F(RateDaemonTest, OperatorCommandShowsAndResetsABucket) {
    auto d = start({{"rules", {rule("user_rcpt", {"sasl_username"}, "recipients", 5, "1h"),
                               rule("pair", {"sender", "client_network"}, "recipients", 10,
                                    "1h")}}});
    auto c = d->connect();
    auto r = d->command({"show", "user_rcpt", "alice"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("used:      0 of 5"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("(empty)"), std::string::npos) << r.output;

    EXPECT_EQ(passes(*c, rcpt(), 6), 5);
    r = d->command({"show", "user_rcpt", "ALICE"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("used:      5 of 5"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("available: 0"), std::string::npos) << r.output;
    r = d->command({"show", "pair", "Alice@Example.org", "192.0.2.99"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("used:      5 of 10"), std::string::npos) << r.output;

    r = d->command({"reset", "user_rcpt", "alice"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("reset"), std::string::npos) << r.output;
    EXPECT_EQ(passes(*c, rcpt(), 6), 5);
    r = d->command({"reset", "user_rcpt", "nobody"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("already empty"), std::string::npos) << r.output;

    EXPECT_EQ(d->command({"show", "no_such_rule", "alice"}).exit_code, 2);
    EXPECT_EQ(d->command({"show", "pair", "alice@example.org"}).exit_code, 2);
    EXPECT_EQ(d->command({"show", "user_rcpt"}).exit_code, 2);
    r = d->command({"frobnicate"});
    EXPECT_EQ(r.exit_code, 2) << r.output;
    redis_.stop();
    r = d->command({"show", "user_rcpt", "alice"});
    EXPECT_EQ(r.exit_code, 1) << r.output;
}

TEST_F(RateDaemonTest, CheckConfigNamesTheBadKey) {
    dir_.write("bad.json", R"({"rules": [{"name": "x", "key": ["sasl_user"], "count": "recipients",
                                         "limit": 5, "window": "1h"}]})");
    auto r = testsupport::run({POLICYD_RATELIMIT, "--config", dir_.file("bad.json"),
                               "--check-config"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("rules[0].key"), std::string::npos) << r.output;
    dir_.write("good.json", nlohmann::json{{"rules", {rule("x", {"sasl_username"}, "messages",
                                                           100, "1d")}}}
                                .dump());
    r = testsupport::run({POLICYD_RATELIMIT, "--config", dir_.file("good.json"), "--check-config"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
