// --check-config and start-up agree: each shipped program, and the lifecycle
// test daemon, is given the same configurations (file keys and flags) once
// with --check-config and once to start; a configuration is either accepted
// by both (and the daemon listens) or refused by both, with the same error.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/process.h"

using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

struct Case {
    std::string name;
    json config;
    std::vector<std::string> flags;
};

enum class Started { listening, exited };

// Start the program and see which comes first: its listener, or its exit.
std::pair<Started, int> start(const std::string& program, const testsupport::TempDir& dir,
                              std::vector<std::string> argv, int port) {
    argv.insert(argv.begin(), program);
    testsupport::Process p(argv, dir.file("start.log"));
    auto until = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < until) {
        int status = p.wait(10ms);
        if (status != -1) return {Started::exited, status};
        try {
            testsupport::wait_for_tcp("127.0.0.1", port, 10ms);
            p.stop();
            return {Started::listening, 0};
        } catch (const std::exception&) {
        }
    }
    p.stop();
    ADD_FAILURE() << program << " neither listened nor exited";
    return {Started::exited, -1};
}

void check_agreement(const std::string& program, const std::vector<Case>& cases) {
    for (const auto& c : cases) {
        SCOPED_TRACE(program + ": " + c.name);
        testsupport::TempDir dir;
        int port = testsupport::free_port();
        json config = c.config;
        if (!config.contains("listen")) config["listen"] = "inet:127.0.0.1:" + std::to_string(port);
        dir.write("c.json", config.dump());
        std::vector<std::string> argv = {"--config", dir.file("c.json")};
        argv.insert(argv.end(), c.flags.begin(), c.flags.end());

        std::vector<std::string> check = argv;
        check.insert(check.begin(), program);
        check.push_back("--check-config");
        auto checked = testsupport::run(check);

        auto [how, status] = start(program, dir, argv, port);
        std::string start_log = testsupport::read_file(dir.file("start.log"));
        if (checked.exit_code == 0) {
            EXPECT_EQ(how, Started::listening) << "--check-config said OK:\n"
                                               << checked.output << "start:\n" << start_log;
        } else {
            EXPECT_EQ(checked.exit_code, 1) << checked.output;
            EXPECT_EQ(how, Started::exited) << "--check-config refused:\n" << checked.output;
            EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << start_log;
            // The same reason, word for word.
            EXPECT_NE(start_log.find(checked.output.substr(0, checked.output.find('\n'))),
                      std::string::npos)
                << "check: " << checked.output << "start: " << start_log;
        }
    }
}

std::vector<Case> common_cases() {
    return {
        {"defaults", json::object(), {}},
        {"milter key", {{"milter", "inet:127.0.0.1:8891"}}, {}},
        {"milter flag", json::object(), {"--milter", "inet:127.0.0.1:8891"}},
        {"milter key, bad address", {{"milter", "tcp:foo"}}, {}},
        {"unknown scheme", {{"listen", "tcp:foo"}}, {}},
        {"unknown key", {{"no_such_key", 1}}, {}},
        {"bad number", {{"max_connections", 0}}, {}},
        {"read timeout", {{"read_timeout_ms", 2000}}, {}},
        {"no such user", {{"user", "no-such-user-mailpolicy"}}, {}},
        {"bad log format flag", json::object(), {"--log-format", "xml"}},
        {"metrics", {{"metrics", "inet:127.0.0.1:" + std::to_string(testsupport::free_port())}}, {}},
    };
}

}  // namespace

TEST(CheckConfigAgreesWithStart, TestPolicyd) { check_agreement(TEST_POLICYD, common_cases()); }

TEST(CheckConfigAgreesWithStart, PolicydGreylist) {
    auto cases = common_cases();
    cases.push_back({"bad delay", {{"delay", "soon"}}, {}});
    cases.push_back({"missing whitelist file", {{"whitelist_clients", {"/nonexistent/list"}}}, {}});
    for (auto& c : cases) c.flags.insert(c.flags.end(), {"--redis", "redis://127.0.0.1:1"});
    check_agreement(POLICYD_GREYLIST, cases);
}

TEST(CheckConfigAgreesWithStart, PolicydRatelimit) {
    auto cases = common_cases();
    cases.push_back({"bad rule", {{"rules", {{{"name", "r"}}}}}, {}});
    for (auto& c : cases) c.flags.insert(c.flags.end(), {"--redis", "redis://127.0.0.1:1"});
    check_agreement(POLICYD_RATELIMIT, cases);
}

TEST(CheckConfigAgreesWithStart, PolicydSpf) {
    auto cases = common_cases();
    cases.push_back({"bad choice", {{"header_type", "XML"}}, {}});
    check_agreement(POLICYD_SPF, cases);
}

TEST(CheckConfigAgreesWithStart, DeliveryMaildir) {
    auto cases = common_cases();
    cases.push_back({"missing mailbox list",
                     {{"mailbox_mode", "virtual"}, {"virtual_base", "/tmp"},
                      {"virtual_mailboxes", "/nonexistent/vmailbox"}},
                     {}});
    check_agreement(DELIVERY_MAILDIR, cases);
}
