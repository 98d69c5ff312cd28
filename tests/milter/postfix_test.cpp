// The daemons as milters behind a real Postfix 3.7 (smtpd_milters), with a
// real Redis, swaks as the SMTP client and smtp-sink as the next hop, which
// dumps each relayed message with its envelope. Needs root (Postfix).
//
// Greylisting uses delay 0 (a first sight is refused, the next attempt
// passes), so nothing sleeps to let time pass; waiting for a relayed message
// polls the sink's directory with a deadline.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/daemon_process.h"
#include "support/dns_namespace.h"
#include "support/postfix_instance.h"
#include "support/process.h"
#include "support/redis_server.h"

namespace {

using namespace std::chrono_literals;
using Daemon = testsupport::DaemonProcess;

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

std::size_t occurrences(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

class PostfixMilterTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_EQ(::geteuid(), 0u) << "these tests need root for Postfix";
        // Postfix's daemons run as postfix and must reach their directories in here.
        std::filesystem::permissions(dir_.path(), std::filesystem::perms(0755));
        std::filesystem::create_directories(dir_.file("sink"));
        sink_port_ = testsupport::free_port();
        sink_ = testsupport::Process({"smtp-sink", "-u", "root", "-d", dir_.file("sink") + "/%M.",
                                      "127.0.0.1:" + std::to_string(sink_port_), "20"},
                                     dir_.file("sink.log"));
        testsupport::wait_for_tcp("127.0.0.1", sink_port_);
    }

    // A daemon whose milter listens on a free port; returns it.
    Daemon& daemon(const std::string& program, nlohmann::json config) {
        milter_port_ = testsupport::free_port();
        config["milter"] = "inet:" + std::to_string(milter_port_) + "@127.0.0.1";
        Daemon::Options options{.program = program, .name = "d", .redis_url = redis_.url()};
        daemon_ = std::make_unique<Daemon>(dir_, std::move(options), std::move(config));
        testsupport::wait_for_tcp("127.0.0.1", milter_port_);
        return *daemon_;
    }

    // Postfix relaying example.org to the sink, with the daemon as its milter
    // (Postfix's notation for the same socket: inet:HOST:PORT).
    // milter: Postfix's name of the daemon's socket.
    void start_postfix(std::string milter = "") {
        if (milter.empty()) milter = "inet:127.0.0.1:" + std::to_string(milter_port_);
        smtp_port_ = testsupport::free_port();
        postfix_ = std::make_unique<testsupport::PostfixInstance>(dir_);
        std::string main_cf = postfix_->base_main_cf() +
                              "myhostname = mx.test\n"
                              "mydestination =\n"
                              "relay_domains = example.org\n"
                              "mynetworks = 127.0.0.2/32\n"
                              "relayhost = [127.0.0.1]:" + std::to_string(sink_port_) + "\n"
                              "smtpd_milters = " + milter + "\n"
                              "milter_default_action = tempfail\n"
                              "milter_protocol = 6\n";
        postfix_->write_config(main_cf, testsupport::PostfixInstance::master_cf(smtp_port_));
        try {
            postfix_->start(smtp_port_);
        } catch (const std::exception& e) {
            FAIL() << e.what() << "\n" << postfix_->maillog();
        }
    }

    // One SMTP transaction with swaks; its transcript.
    std::string send(const std::vector<std::string>& to, const std::string& subject,
                     const std::string& from = "alice@example.net") {
        std::string rcpts;
        for (const auto& t : to) rcpts += (rcpts.empty() ? "" : ",") + t;
        auto r = testsupport::run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(smtp_port_),
                                   "--helo", "client.example.net", "--from", from, "--to", rcpts,
                                   "--header", "Subject: " + subject, "--body", "Hello through the milter.",
                                   "--timeout", "30"});
        return r.output;
    }

    // The relayed message with this subject, as the sink dumped it ("" if
    // none arrives within the deadline).
    std::string wait_for_message(const std::string& subject) {
        auto end = std::chrono::steady_clock::now() + 20s;
        while (std::chrono::steady_clock::now() < end) {
            for (const auto& f : std::filesystem::directory_iterator(dir_.file("sink"))) {
                std::string text = testsupport::read_file(f.path().string());
                if (contains(text, "Subject: " + subject + "\n")) return text;
            }
            std::this_thread::sleep_for(50ms);  // polling a directory, with a deadline
        }
        return "";
    }

    std::string diagnostics() const {
        return "maillog:\n" + (postfix_ ? postfix_->maillog() : std::string()) + "\ndaemon log:\n" +
               (daemon_ ? daemon_->log() : std::string());
    }

    testsupport::TempDir dir_;
    testsupport::RedisServer redis_;
    testsupport::Process sink_;
    std::unique_ptr<Daemon> daemon_;
    std::unique_ptr<testsupport::PostfixInstance> postfix_;
    int sink_port_ = 0, milter_port_ = 0, smtp_port_ = 0;
};

TEST_F(PostfixMilterTest, GreylistingDefersANewTripletAndDeliversTheRetryWithTheHeader) {
    daemon(POLICYD_GREYLIST, {{"delay", "0s"}, {"hostname", "mx.test"}, {"redis_timeout_ms", 3000}});
    start_postfix();
    std::string first = send({"bob@example.org"}, "greylisted-then-delivered");
    EXPECT_TRUE(contains(first, "<** 450 4.7.1 Greylisted, please try again in 0 seconds")) << first << diagnostics();
    std::string retry = send({"bob@example.org"}, "greylisted-then-delivered");
    EXPECT_TRUE(contains(retry, "<-  250 2.0.0 Ok: queued")) << retry << diagnostics();
    std::string message = wait_for_message("greylisted-then-delivered");
    ASSERT_FALSE(message.empty()) << diagnostics();
    // Inserted at the top, above Postfix's own Received: header.
    auto header = message.find("\nX-Greylist: delayed ");  // 0 or 1 s, as the clock ticks
    auto received = message.find("\nReceived: from client.example.net");
    ASSERT_NE(header, std::string::npos) << message;
    EXPECT_LT(header, received) << message;
    EXPECT_TRUE(contains(message, " seconds by policyd-greylist at mx.test; ")) << message;
    EXPECT_EQ(occurrences(message, "X-Rcpt-Args:"), 1u);
    EXPECT_TRUE(daemon_->log_has("protocol=milter"));
}

TEST_F(PostfixMilterTest, RateLimitDefersTheRecipientOverTheLimitAndDeliversToTheOthers) {
    nlohmann::json rule = {{"name", "client_rcpt"}, {"key", {"client_address"}},
                           {"count", "recipients"}, {"limit", 2}, {"window", "1h"}};
    daemon(POLICYD_RATELIMIT, {{"rules", {rule}}, {"redis_timeout_ms", 3000}});
    start_postfix();
    std::string t = send({"r1@example.org", "r2@example.org", "r3@example.org"}, "rate-limited");
    EXPECT_TRUE(contains(t, "<** 450 4.7.1 Rate limit exceeded, try again later")) << t << diagnostics();
    EXPECT_TRUE(contains(t, "<-  250 2.0.0 Ok: queued")) << t << diagnostics();
    std::string message = wait_for_message("rate-limited");
    ASSERT_FALSE(message.empty()) << diagnostics();
    EXPECT_TRUE(contains(message, "X-Rcpt-Args: <r1@example.org>")) << message;
    EXPECT_TRUE(contains(message, "X-Rcpt-Args: <r2@example.org>")) << message;
    EXPECT_FALSE(contains(message, "X-Rcpt-Args: <r3@example.org>")) << message;
}

TEST_F(PostfixMilterTest, RedisStoppedGivesOnStoreErrorWithinTheDeadline) {
    daemon(POLICYD_GREYLIST, {{"delay", "0s"},
                              {"on_store_error", "451 4.3.0 Greylisting temporarily unavailable"},
                              {"redis_timeout_ms", 300}});
    start_postfix();
    redis_.stop();
    auto started = std::chrono::steady_clock::now();
    std::string t = send({"bob@example.org"}, "store-down");
    auto took = std::chrono::steady_clock::now() - started;
    EXPECT_TRUE(contains(t, "<** 451 4.3.0 Greylisting temporarily unavailable")) << t << diagnostics();
    // Far below Postfix's milter_command_timeout (30 s).
    EXPECT_LT(took, 5s);
}

// policyd-spf resolves in a network namespace with the test zones; its
// milter socket is a unix socket in the test's directory, which Postfix
// (outside the namespace) reaches as unix:/path.
TEST_F(PostfixMilterTest, AnSpfFailIsRefusedWithTheDaemonsText) {
    testsupport::DnsNamespace ns(std::string(MAILPOLICY_SOURCE_DIR) + "/tests/spf/zones.yml", SUITE_DNS);
    std::string socket = dir_.file("spf-milter.sock");
    // The test client is 127.0.0.1, which policyd-spf skips by default.
    nlohmann::json config = {{"milter", "unix:" + socket}, {"skip_addresses", nlohmann::json::array()}};
    daemon_ = std::make_unique<Daemon>(
        dir_, Daemon::Options{.program = POLICYD_SPF, .name = "spf",
                              .wrapper = {"ip", "netns", "exec", ns.name()}, .unix_socket = true},
        std::move(config));
    testsupport::wait_for_unix(socket);
    start_postfix("unix:" + socket);
    std::string t = send({"bob@example.org"}, "spf-fail", "alice@fail.example");
    EXPECT_TRUE(contains(t, "<** 550 5.7.23 alice@fail.example may not send from 127.0.0.1")) << t << diagnostics();
    EXPECT_FALSE(contains(t, "Ok: queued")) << t;
    std::string none = send({"bob@example.org"}, "spf-none", "alice@none.example");
    EXPECT_TRUE(contains(none, "<-  250 2.0.0 Ok: queued")) << none << diagnostics();
    std::string message = wait_for_message("spf-none");
    EXPECT_TRUE(contains(message, "\nReceived-SPF: None ")) << message;
}

}  // namespace
