// policyd-spf as a milter: the daemon runs in a network namespace whose DNS
// answers tests/spf/zones.yml, with its policy and milter sockets in a temp
// dir that the test reaches from outside. Needs root (ip netns); without it
// the tests fail, never skip.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "milter/codec.h"
#include "support/daemon_process.h"
#include "support/dns_namespace.h"
#include "support/milter_conn.h"
#include "support/process.h"

namespace {

using namespace std::chrono_literals;
using testsupport::MilterConn;
namespace m = proto::milter;

testsupport::DnsNamespace* g_ns = nullptr;

class MilterSpfTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        ASSERT_EQ(::geteuid(), 0u) << "these tests need root for a network namespace";
        g_ns = new testsupport::DnsNamespace(std::string(MAILPOLICY_SOURCE_DIR) + "/tests/spf/zones.yml",
                                             SUITE_DNS);
    }
    static void TearDownTestSuite() {
        delete g_ns;
        g_ns = nullptr;
    }
    void SetUp() override {
        nlohmann::json config = {{"milter", "unix:" + milter_socket()}};
        daemon_ = std::make_unique<testsupport::DaemonProcess>(
            dir_,
            testsupport::DaemonProcess::Options{.program = POLICYD_SPF,
                                                .name = "spf",
                                                .wrapper = {"ip", "netns", "exec", g_ns->name()},
                                                .unix_socket = true},
            std::move(config));
        testsupport::wait_for_unix(milter_socket());
    }
    std::string milter_socket() const { return dir_.file("milter.sock"); }

    testsupport::TempDir dir_;
    std::unique_ptr<testsupport::DaemonProcess> daemon_;
};

// The milter asks at every stage, so the decider sees the sender at MAIL
// and refuses there, as it would in smtpd_sender_restrictions.
TEST_F(MilterSpfTest, AnSpfFailIsRefusedWithTheDaemonsText) {
    MilterConn c(milter_socket());
    c.open_session("192.0.2.99", "client.example.net", "none.example");
    auto t = c.transaction("alice@fail.example", {"bob@example.net"});
    // The same reply the policy protocol gives (tests/spf/daemon_test.cpp),
    // explanation included, through SMFIR_REPLYCODE.
    EXPECT_EQ(t.mail.text(), "550 5.7.23 alice@fail.example may not send from 192.0.2.99");
    EXPECT_TRUE(t.rcpts.empty());
    EXPECT_FALSE(t.eom);
    // The next message of the session is judged on its own.
    auto next = c.transaction("alice@pass.example", {"bob@example.net"});
    EXPECT_TRUE(next.mail.is_continue()) << next.mail.text();
}

// Each identity checked gets its Received-SPF header (RFC 7208 9.1): the
// HELO identity at HELO, the MAIL FROM identity once per message.
TEST_F(MilterSpfTest, AnSpfPassInsertsReceivedSpfAtTheTop) {
    MilterConn c(milter_socket());
    c.open_session("192.0.2.99", "client.example.net", "none.example");
    for (int message = 0; message < 2; ++message) {
        auto t = c.transaction("alice@pass.example", {"bob@example.net", "carol@example.net"});
        ASSERT_EQ(t.rcpts.size(), 2u);
        EXPECT_TRUE(t.rcpts[0].is_continue()) << t.rcpts[0].text();
        EXPECT_TRUE(t.rcpts[1].is_continue()) << t.rcpts[1].text();
        ASSERT_TRUE(t.eom);
        std::vector<std::string> values;
        for (const auto& e : t.eom->edits) {
            auto* h = std::get_if<m::InsertHeader>(&e);
            ASSERT_NE(h, nullptr);
            EXPECT_EQ(h->index, 0u);
            EXPECT_EQ(h->name, "Received-SPF");
            values.push_back(h->value);
        }
        ASSERT_EQ(values.size(), 2u);
        EXPECT_EQ(values[0].rfind("None ", 0), 0u) << values[0];
        EXPECT_NE(values[0].find("identity=helo"), std::string::npos) << values[0];
        EXPECT_EQ(values[1].rfind("Pass ", 0), 0u) << values[1];
        EXPECT_NE(values[1].find("identity=mailfrom"), std::string::npos) << values[1];
    }
}

TEST_F(MilterSpfTest, MiltertestSeesTheSpfFailAndPass) {
    auto r = testsupport::run({"env", "MILTERTEST_DIR=" MILTERTEST_DIR, "MILTER_SOCKET=unix:" + milter_socket(),
                               "miltertest", "-v", "-s", MILTERTEST_DIR "/spf.lua"});
    EXPECT_EQ(r.exit_code, 0) << r.output << daemon_->log();
}

}  // namespace
