// Redis addresses and credentials through the built policyd-ratelimit:
// --check-config accepts every address form offline (nothing listens at the
// addresses) and refuses bad credential settings naming the key; a wrong
// password (from redis_password_file) is answered with on_store_error, named
// as an authentication failure in the log and counted in /metrics; no
// password appears in any output.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/daemon_process.h"
#include "support/policy_conn.h"
#include "support/process.h"
#include "support/redis_server.h"

namespace {

using namespace std::chrono_literals;

const std::string url_password = "url-pass-Kq93";
const std::string file_password = "file-pass-Vb27";
const std::string right_password = "right-pass-Hn55";

nlohmann::json rules() {
    return {{"rules", {{{"name", "rcpt"}, {"key", {"sasl_username"}}, {"count", "recipients"},
                        {"limit", 10}, {"window", "1h"}}}}};
}

void expect_no_secret(const std::string& text) {
    for (const auto& secret : {url_password, file_password, right_password})
        EXPECT_EQ(text.find(secret), std::string::npos) << "password in: " << text;
}

class RedisFormsTest : public ::testing::Test {
protected:
    testsupport::RunResult check(nlohmann::json config) {
        dir_.write("check.json", config.dump());
        return testsupport::run({POLICYD_RATELIMIT, "--config", dir_.file("check.json"), "--check-config"});
    }
    testsupport::TempDir dir_;
};

TEST_F(RedisFormsTest, CheckConfigTakesEveryFormOffline) {
    dir_.write("password", file_password + "\n");
    dir_.write("ca.crt", "not checked offline beyond being readable\n");
    const int dead = testsupport::free_port();  // nothing listens there
    const std::string at = "127.0.0.1:" + std::to_string(dead);
    struct Case {
        std::string url;
        nlohmann::json extra;
    };
    for (const auto& c : std::vector<Case>{
             {"redis://alice:" + url_password + "@" + at + "/2", nlohmann::json::object()},
             {"redis://alice:@" + at, {{"redis_password_file", dir_.file("password")}}},
             {"rediss://" + at, {{"redis_password_file", dir_.file("password")},
                                 {"redis_tls_ca_file", dir_.file("ca.crt")},
                                 {"redis_tls_server_name", "redis.example.org"}}},
             {"redis-sentinel://:" + url_password + "@" + at + "," + at + "/mymaster",
              {{"redis_sentinel_password_file", dir_.file("password")}, {"redis_sentinel_username", "s"}}},
             {"redis-cluster://" + at + "," + at, {{"redis_password_file", dir_.file("password")},
                                                   {"redis_tls", true}}},
         }) {
        nlohmann::json config = rules();
        config["redis"] = c.url;
        for (const auto& [k, v] : c.extra.items()) config[k] = v;
        auto res = check(config);
        EXPECT_EQ(res.exit_code, 0) << c.url << ": " << res.output;
        EXPECT_NE(res.output.find("configuration OK"), std::string::npos) << res.output;
        expect_no_secret(res.output);
    }
    struct Bad {
        nlohmann::json extra;
        std::string expect;
    };
    for (const auto& b : std::vector<Bad>{
             {{{"redis_password_file", dir_.file("absent")}}, "\"redis_password_file\""},
             {{{"redis", "redis://:" + url_password + "@" + at}, {"redis_password_file", dir_.file("password")}},
              "\"redis_password_file\""},
             {{{"redis", "redis://" + at}, {"redis_tls", true}}, "\"redis_tls\""},
             {{{"redis", "rediss://:" + url_password + "@" + at}, {"redis_tls_cert_file", dir_.file("ca.crt")}},
              "redis_tls_key_file"},
             {{{"redis", "redis-cluster://:" + url_password + "@" + at + "/3"}}, "\"redis\""},
             {{{"redis", "redis-sentinel://:" + url_password + "@" + at}}, "\"redis\""},
         }) {
        nlohmann::json config = rules();
        for (const auto& [k, v] : b.extra.items()) config[k] = v;
        auto res = check(config);
        EXPECT_EQ(res.exit_code, 1) << config.dump() << ": " << res.output;
        EXPECT_NE(res.output.find(b.expect), std::string::npos) << res.output;
        expect_no_secret(res.output);
    }
}

TEST_F(RedisFormsTest, WrongPasswordIsNamedCountedAndAnsweredWithTheFallback) {
    testsupport::RedisServer redis;
    ASSERT_EQ(redis.command({"CONFIG", "SET", "requirepass", right_password}).str, "OK");
    dir_.write("password", file_password + "\n");
    const int metrics_port = testsupport::free_port();
    nlohmann::json config = rules();
    config["redis_password_file"] = dir_.file("password");
    config["metrics"] = "inet:127.0.0.1:" + std::to_string(metrics_port);
    config["on_store_error"] = "DEFER_IF_PERMIT 4.3.0 state unavailable";
    testsupport::DaemonProcess daemon(dir_, {.program = POLICYD_RATELIMIT, .name = "rl", .redis_url = redis.url()},
                                      config);
    auto conn = daemon.connect();
    std::string reply = conn->ask({{"request", "smtpd_access_policy"}, {"protocol_state", "RCPT"},
                                   {"client_address", "192.0.2.1"}, {"sasl_username", "alice"},
                                   {"sender", "a@example.org"}, {"recipient", "b@example.net"}});
    EXPECT_EQ(reply, "DEFER_IF_PERMIT 4.3.0 state unavailable");
    EXPECT_TRUE(daemon.log_has("AUTH failed")) << daemon.log();
    EXPECT_TRUE(daemon.log_has("WRONGPASS")) << daemon.log();
    EXPECT_TRUE(daemon.log_has("redis: authentication failed")) << daemon.log();
    auto metrics = testsupport::run({"curl", "-sS", "--max-time", "5",
                                     "http://127.0.0.1:" + std::to_string(metrics_port) + "/metrics"});
    ASSERT_EQ(metrics.exit_code, 0) << metrics.output;
    EXPECT_NE(metrics.output.find("redis_connect_errors_total{cause=\"auth\"}"), std::string::npos)
        << metrics.output;
    // The operator command says the same, without the password.
    auto show = daemon.command({"show", "rcpt", "alice"});
    EXPECT_NE(show.exit_code, 0);
    EXPECT_NE(show.output.find("AUTH failed"), std::string::npos) << show.output;
    expect_no_secret(show.output);
    daemon.stop();
    expect_no_secret(daemon.log());
    expect_no_secret(metrics.output);
}

}  // namespace
