// The shared daemon lifecycle, through a real binary built on
// proto::daemon::run: flags, --check-config, SIGHUP reload (valid and
// invalid), SIGTERM drain with a request in flight, JSON logs.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "support/policy_conn.h"
#include "support/process.h"

using namespace std::chrono_literals;
using testsupport::PolicyConn;
using testsupport::Process;
using testsupport::rcpt_request;
using testsupport::run;

namespace {

class DaemonTest : public ::testing::Test {
protected:
    void start(const std::string& config_json, std::vector<std::string> extra = {}) {
        dir_.write("config.json", config_json);
        port_ = testsupport::free_port();
        std::vector<std::string> argv = {TEST_POLICYD, "--config", dir_.file("config.json"),
                                         "--listen", "inet:127.0.0.1:" + std::to_string(port_)};
        argv.insert(argv.end(), extra.begin(), extra.end());
        daemon_ = Process(argv, dir_.file("log"));
        testsupport::wait_for_tcp("127.0.0.1", port_);
    }

    bool log_contains(const std::string& text, std::chrono::milliseconds within = 5s) {
        auto end = std::chrono::steady_clock::now() + within;
        while (std::chrono::steady_clock::now() < end) {
            if (testsupport::read_file(dir_.file("log")).find(text) != std::string::npos) return true;
            std::this_thread::sleep_for(5ms);
        }
        return false;
    }

    testsupport::TempDir dir_;
    Process daemon_;
    int port_ = 0;
};

}  // namespace

TEST_F(DaemonTest, VersionHelpAndBadFlags) {
    auto v = run({TEST_POLICYD, "--version"});
    EXPECT_EQ(v.exit_code, 0);
    EXPECT_EQ(v.output.rfind("test-policyd ", 0), 0u) << v.output;
    auto h = run({TEST_POLICYD, "--help"});
    EXPECT_EQ(h.exit_code, 0);
    EXPECT_NE(h.output.find("--check-config"), std::string::npos);
    auto bad = run({TEST_POLICYD, "--no-such-flag"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.output.find("unknown option --no-such-flag"), std::string::npos);
    auto missing = run({TEST_POLICYD, "--listen"});
    EXPECT_EQ(missing.exit_code, 2);
}

TEST_F(DaemonTest, CheckConfigValidatesAndNamesTheKey) {
    dir_.write("ok.json", R"({"answer": "REJECT nope", "max_connections": 10, "idle_timeout": "10m"})");
    auto ok = run({TEST_POLICYD, "--config", dir_.file("ok.json"), "--check-config"});
    EXPECT_EQ(ok.exit_code, 0) << ok.output;
    EXPECT_NE(ok.output.find("configuration OK"), std::string::npos);

    struct Case {
        std::string json;
        std::string expect;
    };
    for (const auto& c : std::vector<Case>{
             {R"({"answr": "OK"})", "\"answr\": unknown key"},
             {R"({"answer": "MAYBE"})", "\"answer\""},
             {R"({"max_connections": 0})", "\"max_connections\""},
             {R"({"listen": "inet:nohost"})", "\"listen\""},
             {R"({"listen": "tcp:foo"})", "\"listen\": \"tcp:foo\": unknown scheme \"tcp:\""},
             {R"({"log_format": "xml"})", "\"log_format\""},
             {R"({"unix_socket_mode": "999"})", "\"unix_socket_mode\""},
             {R"({"answer": )", "parse error"},
             {R"([1,2])", "expected a JSON object"},
         }) {
        dir_.write("bad.json", c.json);
        auto res = run({TEST_POLICYD, "--config", dir_.file("bad.json"), "--check-config"});
        EXPECT_EQ(res.exit_code, 1) << c.json;
        EXPECT_NE(res.output.find(c.expect), std::string::npos) << c.json << " -> " << res.output;
    }
    auto nofile = run({TEST_POLICYD, "--config", dir_.file("absent.json"), "--check-config"});
    EXPECT_EQ(nofile.exit_code, 1);
    EXPECT_NE(nofile.output.find("cannot open"), std::string::npos);
}

// --help offers exactly what the build has: a policy daemon serves milter
// too; a program that makes no decisions (mta-core, delivery-maildir) does not.
TEST_F(DaemonTest, HelpAdvertisesMilterOnlyWhereItIsServed) {
    auto h = run({TEST_POLICYD, "--help"});
    EXPECT_NE(h.output.find("--milter ADDR"), std::string::npos) << h.output;
}

TEST_F(DaemonTest, MalformedRequestWarningNamesTheClient) {
    start("{}");
    PolicyConn bad("127.0.0.1", port_);
    bad.send_raw("garbage without equals\n\n");
    EXPECT_TRUE(bad.closed_by_peer());
    EXPECT_TRUE(log_contains("malformed request; closing the connection client=127.0.0.1:"));
}

TEST_F(DaemonTest, RaisesItsFileLimitToTheHardLimit) {
    int port = testsupport::free_port();
    Process p({"prlimit", "--nofile=256:4096", TEST_POLICYD, "--listen",
               "inet:127.0.0.1:" + std::to_string(port)},
              dir_.file("log"));
    testsupport::wait_for_tcp("127.0.0.1", port);
    std::string limits = testsupport::read_file("/proc/" + std::to_string(p.pid()) + "/limits");
    std::istringstream lines(limits);
    std::string line;
    bool seen = false;
    while (std::getline(lines, line)) {
        if (!line.starts_with("Max open files")) continue;
        seen = true;
        std::istringstream fields(line.substr(std::string("Max open files").size()));
        std::string soft, hard;
        fields >> soft >> hard;
        EXPECT_EQ(soft, "4096") << line;
        EXPECT_EQ(hard, "4096") << line;
    }
    EXPECT_TRUE(seen) << limits;
}

TEST_F(DaemonTest, MaxConnectionsIsClampedToTheFileLimitAndAFullTableStillAnswers) {
    dir_.write("config.json", R"({"max_connections": 1000})");
    int port = testsupport::free_port();
    Process p({"prlimit", "--nofile=200:200", TEST_POLICYD, "--config", dir_.file("config.json"),
               "--listen", "inet:127.0.0.1:" + std::to_string(port)},
              dir_.file("log"));
    testsupport::wait_for_tcp("127.0.0.1", port);
    EXPECT_TRUE(log_contains("max_connections 1000 does not fit in the file limit; using 100"));
    // Three times what fits, idle, from one address: the daemon never runs
    // out of files, and a new client is answered.
    std::vector<std::unique_ptr<PolicyConn>> idle;
    for (int i = 0; i < 300; ++i) idle.push_back(std::make_unique<PolicyConn>("127.0.0.1", port));
    for (int i = 0; i < 20; ++i) {
        PolicyConn fresh("127.0.0.1", port);
        EXPECT_EQ(fresh.ask(rcpt_request(), 2s), "DUNNO") << i;
    }
    EXPECT_TRUE(p.running());
    EXPECT_EQ(testsupport::read_file(dir_.file("log")).find("Too many open files"), std::string::npos);
}

TEST_F(DaemonTest, RunsWithNoConfigFile) {
    int port = testsupport::free_port();
    Process p({TEST_POLICYD, "--listen", "127.0.0.1:" + std::to_string(port)}, dir_.file("log"));
    testsupport::wait_for_tcp("127.0.0.1", port);
    PolicyConn c("127.0.0.1", port);
    EXPECT_EQ(c.ask(rcpt_request()), "DUNNO");
    EXPECT_EQ(WEXITSTATUS(p.stop()), 0);
}

TEST_F(DaemonTest, SighupReloadsWithoutDroppingConnections) {
    start(R"({"answer": "DUNNO"})");
    PolicyConn c("127.0.0.1", port_);
    ASSERT_EQ(c.ask(rcpt_request()), "DUNNO");
    dir_.write("config.json", R"({"answer": "REJECT reloaded"})");
    daemon_.signal(SIGHUP);
    ASSERT_TRUE(log_contains("configuration reloaded"));
    EXPECT_EQ(c.ask(rcpt_request()), "REJECT reloaded");  // same connection
}

TEST_F(DaemonTest, InvalidReloadIsRefusedAndOldConfigKept) {
    start(R"({"answer": "OK"})");
    PolicyConn c("127.0.0.1", port_);
    ASSERT_EQ(c.ask(rcpt_request()), "OK");
    dir_.write("config.json", R"({"answer": "NOT_AN_ACTION"})");
    daemon_.signal(SIGHUP);
    ASSERT_TRUE(log_contains("reload refused"));
    EXPECT_EQ(c.ask(rcpt_request()), "OK");
    EXPECT_TRUE(daemon_.running());
    dir_.write("config.json", R"({"answer": "OK", "surprise": 1})");
    daemon_.signal(SIGHUP);
    ASSERT_TRUE(log_contains("\"surprise\": unknown key"));
    EXPECT_EQ(c.ask(rcpt_request()), "OK");
}

TEST_F(DaemonTest, SigtermDrainsInFlightRequestAndExitsZero) {
    start(R"({"answer": "OK"})");
    PolicyConn inflight("127.0.0.1", port_);
    PolicyConn idle("127.0.0.1", port_);
    ASSERT_EQ(idle.ask(rcpt_request()), "OK");
    auto req = rcpt_request({{"test_delay_ms", "700"}});
    std::string wire;
    for (auto& [k, v] : req) wire += k + "=" + v + "\n";
    inflight.send_raw(wire + "\n");
    ASSERT_TRUE(log_contains("deciding slowly"));
    daemon_.signal(SIGTERM);
    EXPECT_TRUE(idle.closed_by_peer(3s));
    EXPECT_EQ(inflight.read_reply(5s), "action=OK\n\n");
    int status = daemon_.wait(10s);
    ASSERT_NE(status, -1);
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_TRUE(log_contains("stopped"));
}

TEST_F(DaemonTest, JsonDecisionLog) {
    start(R"({"answer": "DEFER_IF_PERMIT wait"})", {"--log-format", "json"});
    PolicyConn c("127.0.0.1", port_);
    ASSERT_EQ(c.ask(rcpt_request({{"queue_id", "Q1"}})), "DEFER_IF_PERMIT wait");
    ASSERT_TRUE(log_contains("\"msg\":\"decision\""));
    std::istringstream lines(testsupport::read_file(dir_.file("log")));
    std::string line;
    bool found = false;
    while (std::getline(lines, line)) {
        auto j = nlohmann::json::parse(line);  // every line is valid JSON
        if (j.value("msg", "") == "decision") {
            EXPECT_EQ(j["queue_id"], "Q1");
            EXPECT_EQ(j["action"], "DEFER_IF_PERMIT wait");
            EXPECT_EQ(j["client"], "192.0.2.10");
            EXPECT_TRUE(j["latency_ms"].is_number());
            found = true;
        }
    }
    EXPECT_TRUE(found);
}

namespace {

// The inverse of log.h's scheme on a decoded value: \\ is one backslash,
// \xNN the byte NN; everything else stands for itself.
std::string unescape_log_value(const std::string& v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '\\' && i + 1 < v.size() && v[i + 1] == '\\') {
            out += '\\';
            ++i;
        } else if (v[i] == '\\' && i + 3 < v.size() && v[i + 1] == 'x') {
            out += static_cast<char>(std::stoi(v.substr(i + 2, 2), nullptr, 16));
            i += 3;
        } else {
            out += v[i];
        }
    }
    return out;
}

}  // namespace

TEST_F(DaemonTest, JsonLogLinesAreValidJsonWhateverBytesTheRequestCarries) {
    start("{}", {"--log-format", "json"});
    PolicyConn c("127.0.0.1", port_);
    std::mt19937 random(20261130);
    // Every byte a request value may hold (the parser refuses NUL and CR; LF
    // ends the line), many not UTF-8, in every logged attribute.
    auto junk = [&] {
        std::string s;
        std::size_t n = 1 + random() % 24;
        while (s.size() < n) {
            char b = static_cast<char>(random() % 256);
            if (b != '\0' && b != '\n' && b != '\r') s += b;
        }
        return s;
    };
    const std::vector<std::string> logged = {"queue_id", "protocol_state", "client_address",
                                             "client_name", "sasl_username", "sender",
                                             "recipient"};
    const std::map<std::string, std::string> as_logged = {
        {"protocol_state", "state"}, {"client_address", "client"}};
    std::vector<std::map<std::string, std::string>> sent;
    sent.push_back(rcpt_request({{"sender", "\xff\xfe\xc3\x28@x.example"},
                                 {"recipient", "a\\x41\xe2\x80\xae@example.org"}}));
    for (int i = 0; i < 300; ++i) {
        auto r = rcpt_request();
        for (const auto& k : logged) r[k] = junk();
        sent.push_back(r);
    }
    for (const auto& r : sent) ASSERT_EQ(c.ask(r), "DUNNO");
    std::vector<nlohmann::json> decisions;
    auto until = std::chrono::steady_clock::now() + 10s;
    while (decisions.size() < sent.size() && std::chrono::steady_clock::now() < until) {
        decisions.clear();
        std::istringstream lines(testsupport::read_file(dir_.file("log")));
        std::string line;
        while (std::getline(lines, line)) {
            nlohmann::json j;
            ASSERT_NO_THROW(j = nlohmann::json::parse(line)) << line;
            if (j.value("msg", "") == "decision") decisions.push_back(j);
        }
        if (decisions.size() < sent.size()) std::this_thread::sleep_for(5ms);
    }
    ASSERT_EQ(decisions.size(), sent.size());
    for (std::size_t i = 0; i < sent.size(); ++i) {
        for (const auto& k : logged) {
            auto it = as_logged.find(k);
            std::string field = it == as_logged.end() ? k : it->second;
            EXPECT_EQ(unescape_log_value(decisions[i][field].get<std::string>()), sent[i][k])
                << "request " << i << " " << k;
        }
    }
    EXPECT_EQ(decisions[0]["sender"], "\\xff\\xfe\\xc3(@x.example");
}
