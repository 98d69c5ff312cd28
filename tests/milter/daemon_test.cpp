// The daemons' milter front end, end to end: the built policyd-greylist and
// policyd-ratelimit with a real redis-server, driven over the milter
// protocol by a client built on the same codec (the MTA side), beside their
// policy listeners in the same process.
//
// Delays use greylisting's delay 0 (a first sight is still refused, the next
// attempt passes), so nothing sleeps to let time pass; every wait is a read
// with a deadline.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "milter/codec.h"
#include "support/daemon_process.h"
#include "support/milter_conn.h"
#include "support/policy_conn.h"
#include "support/process.h"
#include "support/redis_server.h"

namespace {

using namespace std::chrono_literals;
using testsupport::MilterConn;
using testsupport::rcpt_request;
using Daemon = testsupport::DaemonProcess;
namespace m = proto::milter;

int thread_count(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
    return -1;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string request_text(const std::map<std::string, std::string>& attrs) {
    std::string out;
    for (const auto& [k, v] : attrs) out += k + "=" + v + "\n";
    return out + "\n";
}

class MilterDaemonTest : public ::testing::Test {
protected:
    // A daemon with its policy listener and one milter listener.
    std::unique_ptr<Daemon> start(const std::string& program, nlohmann::json config,
                                  const std::string& name = "d") {
        milter_port_ = testsupport::free_port();
        config["milter"] = "inet:" + std::to_string(milter_port_) + "@127.0.0.1";
        Daemon::Options options{.program = program, .name = name, .redis_url = redis_.url()};
        auto d = std::make_unique<Daemon>(dir_, std::move(options), std::move(config));
        testsupport::wait_for_tcp("127.0.0.1", milter_port_);
        return d;
    }
    std::unique_ptr<MilterConn> session(const std::string& client = "192.0.2.1") {
        auto c = std::make_unique<MilterConn>("127.0.0.1", milter_port_);
        c->open_session(client);
        return c;
    }

    testsupport::TempDir dir_;
    testsupport::RedisServer redis_;
    int milter_port_ = 0;
};

// Redis calls get a generous deadline so a loaded test machine never turns
// into the fail-open path by accident; tests of that path set their own.
const nlohmann::json kGreylist = {{"delay", "0s"}, {"hostname", "mx.test"}, {"redis_timeout_ms", 3000}};

TEST_F(MilterDaemonTest, MilterGreylistRefusesANewTripletThenPassesWithTheHeaderInserted) {
    auto d = start(POLICYD_GREYLIST, kGreylist);
    auto c = session();
    auto first = c->transaction("alice@example.net", {"bob@example.org"});
    ASSERT_TRUE(first.mail.is_continue());
    ASSERT_EQ(first.rcpts.size(), 1u);
    // DEFER_IF_PERMIT becomes a tempfail with a matching enhanced code.
    EXPECT_TRUE(starts_with(first.rcpts[0].text(), "450 4.7.1 Greylisted, please try again in "))
        << first.rcpts[0].text();
    EXPECT_FALSE(first.eom);

    // The retry (same SMTP session or a new one) passes, and end of message
    // inserts the header at the top.
    auto second = c->transaction("alice@example.net", {"bob@example.org"}, "4QID01");
    ASSERT_EQ(second.rcpts.size(), 1u);
    EXPECT_TRUE(second.rcpts[0].is_continue()) << second.rcpts[0].text();
    ASSERT_TRUE(second.eom);
    EXPECT_TRUE(second.eom->is_continue());
    ASSERT_EQ(second.eom->edits.size(), 1u);
    auto* h = std::get_if<m::InsertHeader>(&second.eom->edits[0]);
    ASSERT_NE(h, nullptr);
    EXPECT_EQ(h->index, 0u);
    EXPECT_EQ(h->name, "X-Greylist");
    EXPECT_TRUE(starts_with(h->value, "delayed ")) << h->value;
    EXPECT_NE(h->value.find("by policyd-greylist at mx.test"), std::string::npos) << h->value;

    // Decisions name the protocol they came through.
    EXPECT_TRUE(d->log_has("protocol=milter"));
    EXPECT_TRUE(d->log_has("reply=\"450 4.7.1 Greylisted"));
}

TEST_F(MilterDaemonTest, MilterAndPolicyProtocolShareOneGreylistState) {
    auto d = start(POLICYD_GREYLIST, kGreylist);
    auto c = session("192.0.2.10");
    auto first = c->transaction("alice@example.org", {"bob@example.net"});
    ASSERT_EQ(first.rcpts.size(), 1u);
    EXPECT_TRUE(starts_with(first.rcpts[0].text(), "450 4.7.1 Greylisted")) << first.rcpts[0].text();
    // The same triplet through the policy protocol is a retry, not a new one.
    auto policy = d->connect();
    std::string action = policy->ask(rcpt_request({{"client_name", "client.example.net"},
                                                   {"reverse_client_name", "client.example.net"}}));
    EXPECT_TRUE(starts_with(action, "PREPEND X-Greylist: delayed")) << action;
    // And a triplet first seen through the policy protocol passes through the milter.
    action = policy->ask(rcpt_request({{"client_name", "client.example.net"},
                                       {"sender", "carol@example.org"}, {"instance", "p2"}}));
    EXPECT_TRUE(starts_with(action, "DEFER_IF_PERMIT Greylisted")) << action;
    auto second = c->transaction("carol@example.org", {"bob@example.net"});
    ASSERT_EQ(second.rcpts.size(), 1u);
    EXPECT_TRUE(second.rcpts[0].is_continue()) << second.rcpts[0].text();
}

TEST_F(MilterDaemonTest, MilterRateLimitDefersOnlyTheRecipientOverTheLimit) {
    nlohmann::json rule = {{"name", "client_rcpt"}, {"key", {"client_address"}},
                           {"count", "recipients"}, {"limit", 2}, {"window", "1h"}};
    auto d = start(POLICYD_RATELIMIT, {{"rules", {rule}}, {"redis_timeout_ms", 3000}});
    auto c = session("192.0.2.10");
    auto t = c->transaction("alice@example.org", {"r1@example.net", "r2@example.net", "r3@example.net"});
    ASSERT_EQ(t.rcpts.size(), 3u);
    EXPECT_TRUE(t.rcpts[0].is_continue()) << t.rcpts[0].text();
    EXPECT_TRUE(t.rcpts[1].is_continue()) << t.rcpts[1].text();
    EXPECT_EQ(t.rcpts[2].text(), "450 4.7.1 Rate limit exceeded, try again later");
    // The message goes on for the two accepted recipients.
    ASSERT_TRUE(t.eom);
    EXPECT_TRUE(t.eom->is_continue());
    // The policy protocol counts against the same limit.
    auto policy = d->connect();
    EXPECT_TRUE(starts_with(policy->ask(rcpt_request()), "DEFER_IF_PERMIT 4.7.1 Rate limit"));
}

TEST_F(MilterDaemonTest, RedisStoppedGivesOnStoreErrorWithinTheDeadline) {
    auto config = kGreylist;
    config["on_store_error"] = "451 4.3.0 Greylisting unavailable";
    config["redis_timeout_ms"] = 200;
    auto d = start(POLICYD_GREYLIST, config);
    auto c = session();
    redis_.stop();
    auto started = std::chrono::steady_clock::now();
    auto t = c->transaction("alice@example.net", {"bob@example.org"});
    auto took = std::chrono::steady_clock::now() - started;
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_EQ(t.rcpts[0].text(), "451 4.3.0 Greylisting unavailable");
    EXPECT_LT(took, 5s);  // the whole transaction, below Sendmail's 10 s read timeout
}

TEST_F(MilterDaemonTest, AMalformedOrOversizedPacketClosesThatSessionOnly) {
    auto d = start(POLICYD_GREYLIST, kGreylist);
    auto good = session();
    auto bad = std::make_unique<MilterConn>("127.0.0.1", milter_port_);
    ASSERT_TRUE(bad->negotiate());
    // A header packet longer than libmilter's 64 KiB limit.
    bad->send(m::Command(m::Header{"X-Big", std::string(70000, 'x')}));
    EXPECT_TRUE(bad->closed_by_peer());
    auto garbage = std::make_unique<MilterConn>("127.0.0.1", milter_port_);
    garbage->send_raw(std::string("\0\0\0\2Zz", 6));  // unknown command
    EXPECT_TRUE(garbage->closed_by_peer());
    auto truncated = std::make_unique<MilterConn>("127.0.0.1", milter_port_);
    ASSERT_TRUE(truncated->negotiate());
    truncated->send_raw(std::string("\0\0\0\2Hx", 6));  // HELO without its NUL
    EXPECT_TRUE(truncated->closed_by_peer());
    // The other session goes on.
    auto t = good->transaction("alice@example.net", {"bob@example.org"});
    ASSERT_EQ(t.rcpts.size(), 1u);
    EXPECT_TRUE(starts_with(t.rcpts[0].text(), "450 4.7.1 Greylisted"));
    EXPECT_TRUE(d->log_has("malformed milter packet"));
    EXPECT_TRUE(d->log_has("malformed milter command"));
}

TEST_F(MilterDaemonTest, SessionsBeyondTheCapGetATempfailAtConnect) {
    auto config = kGreylist;
    config["max_connections"] = 2;
    auto d = start(POLICYD_GREYLIST, config);
    auto a = session();
    auto b = session();
    MilterConn extra("127.0.0.1", milter_port_);
    ASSERT_TRUE(extra.negotiate());
    auto refused = extra.ask(m::Command(m::Connect{"x", '4', 1, "192.0.2.7"}));
    ASSERT_TRUE(refused.final);
    EXPECT_TRUE(std::holds_alternative<m::Tempfail>(*refused.final));
    EXPECT_TRUE(extra.closed_by_peer());
    // Once a session ends there is room again.
    a.reset();
    auto deadline = std::chrono::steady_clock::now() + 5s;
    bool admitted = false;
    while (!admitted && std::chrono::steady_clock::now() < deadline) {
        MilterConn next("127.0.0.1", milter_port_);
        next.negotiate();
        admitted = next.ask(m::Command(m::Connect{"x", '4', 1, "192.0.2.7"})).is_continue();
    }
    EXPECT_TRUE(admitted);
}

TEST_F(MilterDaemonTest, TwoHundredSessionsWithRedisStoppedGetTheirFallbackInTimeOnFixedThreads) {
    auto config = kGreylist;
    config["on_store_error"] = "DEFER_IF_PERMIT Greylisting unavailable";
    config["redis_timeout_ms"] = 300;
    auto d = start(POLICYD_GREYLIST, config);
    std::vector<std::unique_ptr<MilterConn>> sessions;
    for (int i = 0; i < 200; ++i) {
        sessions.push_back(session("192.0.2." + std::to_string(1 + i % 250)));
        auto mail = sessions.back()->ask(m::Command(m::Mail{"<s" + std::to_string(i) + "@example.net>", {}}));
        ASSERT_TRUE(mail.is_continue());
    }
    int threads = thread_count(d->pid());
    ASSERT_GT(threads, 0);
    redis_.pause();
    auto started = std::chrono::steady_clock::now();
    for (auto& s : sessions) s->send(m::Command(m::Rcpt{"<bob@example.org>", {}}));
    int fallbacks = 0;
    for (auto& s : sessions) {
        auto r = s->read(5s);
        ASSERT_TRUE(r);
        auto* code = std::get_if<m::ReplyCode>(&*r);
        ASSERT_NE(code, nullptr);
        if (code->text == "450 4.7.1 Greylisting unavailable") ++fallbacks;
    }
    auto took = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(fallbacks, 200);
    // Every one within the Redis deadline plus scheduling, below the MTAs'
    // command timeouts (Postfix 30 s, Sendmail 10 s).
    EXPECT_LT(took, 5s);
    EXPECT_EQ(thread_count(d->pid()), threads);
    redis_.resume();
}

// SIGHUP while sessions on both protocols are mid-transaction: none is
// dropped, every verdict is answered, and the new text is in force.
TEST_F(MilterDaemonTest, SighupUnderLoadKeepsEverySessionAndAppliesTheNewConfiguration) {
    auto d = start(POLICYD_GREYLIST, kGreylist);
    std::vector<std::unique_ptr<MilterConn>> sessions;
    for (int i = 0; i < 20; ++i) {
        sessions.push_back(session());
        ASSERT_TRUE(sessions.back()->ask(m::Command(m::Mail{"<a" + std::to_string(i) + "@example.net>", {}}))
                        .is_continue());
    }
    auto policy = d->connect();
    auto config = kGreylist;
    config["greylist_text"] = "Come back in %s seconds";
    config["milter"] = "inet:" + std::to_string(milter_port_) + "@127.0.0.1";
    d->rewrite_config(config);
    // Requests in flight when the signal lands.
    for (auto& s : sessions) s->send(m::Command(m::Rcpt{"<before@example.org>", {}}));
    policy->send_raw(request_text(rcpt_request({{"recipient", "inflight@example.net"}})));
    d->signal(SIGHUP);
    EXPECT_TRUE(starts_with(policy->read_reply(), "action=DEFER_IF_PERMIT")) << "the policy session was dropped";
    for (auto& s : sessions) {
        auto r = s->read();
        ASSERT_TRUE(r) << "a session was dropped";
        EXPECT_TRUE(std::holds_alternative<m::ReplyCode>(*r));
    }
    ASSERT_TRUE(d->log_has("configuration reloaded"));
    for (std::size_t i = 0; i < sessions.size(); ++i) {
        auto a = sessions[i]->ask(m::Command(m::Rcpt{"<after" + std::to_string(i) + "@example.org>", {}}));
        EXPECT_TRUE(starts_with(a.text(), "450 4.7.1 Come back in ")) << a.text();
    }
    std::string action = policy->ask(rcpt_request({{"recipient", "new@example.net"}}));
    EXPECT_TRUE(starts_with(action, "DEFER_IF_PERMIT Come back in ")) << action;
}

// SIGTERM with sessions mid-transaction: each gets the rest of its verdicts,
// no new session is accepted, and the daemon exits 0 once the MTAs quit.
TEST_F(MilterDaemonTest, SigtermUnderLoadAnswersEverySessionInProgressAndExitsZero) {
    auto config = kGreylist;
    config["drain_timeout_ms"] = 20000;
    auto d = start(POLICYD_GREYLIST, config);
    std::vector<std::unique_ptr<MilterConn>> sessions;
    for (int i = 0; i < 20; ++i) {
        sessions.push_back(session());
        ASSERT_TRUE(sessions.back()->ask(m::Command(m::Mail{"<t" + std::to_string(i) + "@example.net>", {}}))
                        .is_continue());
    }
    for (auto& s : sessions) s->send(m::Command(m::Rcpt{"<in-flight@example.org>", {}}));
    d->signal(SIGTERM);
    for (auto& s : sessions) {
        auto r = s->read();
        ASSERT_TRUE(r);
        EXPECT_TRUE(std::holds_alternative<m::ReplyCode>(*r));
    }
    ASSERT_TRUE(d->log_has("draining"));
    // Still serving the sessions in progress: another recipient, then quit.
    for (auto& s : sessions) {
        auto a = s->ask(m::Command(m::Rcpt{"<second@example.org>", {}}));
        EXPECT_TRUE(starts_with(a.text(), "450 4.7.1 Greylisted")) << a.text();
        s->send(m::Command(m::Quit{}));
    }
    int status = d->wait(10s);
    ASSERT_TRUE(WIFEXITED(status)) << status;
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(MilterDaemonTest, MetricsAndLogLinesNameTheProtocol) {
    const int metrics_port = testsupport::free_port();
    auto config = kGreylist;
    config["metrics"] = "inet:127.0.0.1:" + std::to_string(metrics_port);
    auto d = start(POLICYD_GREYLIST, config);
    auto c = session();
    c->transaction("alice@example.net", {"bob@example.org"});
    auto policy = d->connect();
    EXPECT_TRUE(starts_with(policy->ask(rcpt_request({{"sender", "x@example.net"}})), "DEFER_IF_PERMIT"));
    auto bad = std::make_unique<MilterConn>("127.0.0.1", milter_port_);
    bad->send_raw(std::string("\0\0\0\0", 4));
    EXPECT_TRUE(bad->closed_by_peer());
    auto m = testsupport::run({"curl", "-sS", "--max-time", "5",
                               "http://127.0.0.1:" + std::to_string(metrics_port) + "/metrics"});
    // connect, helo, mail: DUNNO; rcpt: DEFER_IF_PERMIT.
    EXPECT_NE(m.output.find("milter_requests_total{action=\"DEFER_IF_PERMIT\"} 1"), std::string::npos) << m.output;
    EXPECT_NE(m.output.find("milter_requests_total{action=\"DUNNO\"} 3"), std::string::npos) << m.output;
    EXPECT_NE(m.output.find("policy_requests_total{action=\"DEFER_IF_PERMIT\"} 1"), std::string::npos) << m.output;
    EXPECT_NE(m.output.find("milter_malformed_packets_total 1"), std::string::npos) << m.output;
    EXPECT_NE(m.output.find("milter_decision_seconds_count 4"), std::string::npos) << m.output;
    EXPECT_TRUE(d->log_has("decision protocol=milter"));
    EXPECT_TRUE(d->log_has("decision protocol=policy"));
}

// SMFIC_QUIT_NC: the MTA keeps the connection for its next SMTP session,
// which starts with a new connect and is served like any other.
TEST_F(MilterDaemonTest, QuitNcKeepsTheConnectionForTheNextSmtpSession) {
    auto d = start(POLICYD_GREYLIST, kGreylist);
    auto c = session("192.0.2.1");
    auto first = c->transaction("alice@example.net", {"bob@example.org"});
    EXPECT_TRUE(starts_with(first.rcpts.at(0).text(), "450 4.7.1 Greylisted"));
    c->send(m::Command(m::QuitNewConnection{}));
    c->send(m::Command(m::Macros{'C', {{"j", "mx.example.org"}}}));
    ASSERT_TRUE(c->ask(m::Command(m::Connect{"[198.51.100.7]", '4', 1, "198.51.100.7"})).is_continue());
    ASSERT_TRUE(c->ask(m::Command(m::Helo{"other.example.net"})).is_continue());
    // A new client with no verified name (its network is the client key):
    // the same sender and recipient make a new triplet.
    auto second = c->transaction("alice@example.net", {"bob@example.org"});
    EXPECT_TRUE(starts_with(second.rcpts.at(0).text(), "450 4.7.1 Greylisted")) << second.rcpts.at(0).text();
    EXPECT_TRUE(d->log_has("client=198.51.100.7"));
}

// The same behaviours driven by miltertest, an MTA simulator built on
// libmilter's definitions that no one here wrote.
testsupport::RunResult miltertest(const std::string& script, int port) {
    return testsupport::run({"env", "MILTERTEST_DIR=" MILTERTEST_DIR,
                             "MILTER_SOCKET=inet:" + std::to_string(port) + "@127.0.0.1", "miltertest", "-v",
                             "-s", MILTERTEST_DIR "/" + script});
}

TEST_F(MilterDaemonTest, MiltertestSeesGreylistingAndTheInsertedHeader) {
    auto d = start(POLICYD_GREYLIST, kGreylist);
    auto r = miltertest("greylist.lua", milter_port_);
    EXPECT_EQ(r.exit_code, 0) << r.output << d->log();
    // A second run finds the triplet known, so the script's first RCPT
    // expectation fails: the script can tell the difference.
    EXPECT_NE(miltertest("greylist.lua", milter_port_).exit_code, 0);
}

TEST_F(MilterDaemonTest, MiltertestSeesTheRateLimitOnTheThirdRecipientOnly) {
    nlohmann::json rule = {{"name", "client_rcpt"}, {"key", {"client_address"}},
                           {"count", "recipients"}, {"limit", 2}, {"window", "1h"}};
    auto d = start(POLICYD_RATELIMIT, {{"rules", {rule}}, {"redis_timeout_ms", 3000}});
    auto r = miltertest("ratelimit.lua", milter_port_);
    EXPECT_EQ(r.exit_code, 0) << r.output << d->log();
}

// A decision later than request_timeout_ms: no reply, the session closes,
// and the MTA applies its default action at once instead of waiting for its
// own timeout. Other sessions keep their state.
TEST_F(MilterDaemonTest, ADecisionPastTheDeadlineClosesTheSessionWithoutAReply) {
    auto config = kGreylist;
    config["redis_timeout_ms"] = 20000;
    config["request_timeout_ms"] = 400;
    auto d = start(POLICYD_GREYLIST, config);
    auto c = session();
    ASSERT_TRUE(c->ask(m::Command(m::Mail{"<alice@example.net>", {}})).is_continue());
    redis_.pause();
    auto started = std::chrono::steady_clock::now();
    c->send(m::Command(m::Rcpt{"<bob@example.org>", {}}));
    EXPECT_FALSE(c->read(5s));  // closed, with no reply
    auto took = std::chrono::steady_clock::now() - started;
    EXPECT_GE(took, 400ms);
    EXPECT_LT(took, 5s);
    redis_.resume();
    EXPECT_TRUE(d->log_has("decision not made in time; closing the milter session"));
    auto next = session();
    auto t = next->transaction("carol@example.net", {"bob@example.org"});
    EXPECT_TRUE(starts_with(t.rcpts.at(0).text(), "450 4.7.1 Greylisted")) << t.rcpts.at(0).text();
}

// Each kind of verdict as the MTA receives it, from a daemon that gives one
// configured answer at every stage (tests/proto/test_policyd.cpp).
TEST_F(MilterDaemonTest, VerdictsReachTheMtaAsMilterReplies) {
    {
        auto d = start(TEST_POLICYD, {{"answer", "REJECT 100% spam\tfor sure"}}, "reject");
        MilterConn c("127.0.0.1", milter_port_);
        ASSERT_TRUE(c.negotiate());
        auto r = c.ask(m::Command(m::Connect{"client.example.net", '4', 1, "192.0.2.1"}));
        EXPECT_EQ(r.text(), "554 5.7.1 100%% spam for sure");
    }
    {
        // HOLD: every stage continues; end of message quarantines.
        auto d = start(TEST_POLICYD, {{"answer", "HOLD suspicious"}}, "hold");
        MilterConn c("127.0.0.1", milter_port_);
        c.open_session();
        auto t = c.transaction("a@example.net", {"b@example.org"});
        ASSERT_TRUE(t.eom);
        EXPECT_TRUE(t.eom->is_continue());
        ASSERT_EQ(t.eom->edits.size(), 1u);
        EXPECT_EQ(t.eom->edits[0], m::Reply(m::Quarantine{"suspicious"}));
    }
    {
        // DISCARD at CONNECT and HELO, which MTAs refuse there, comes back at MAIL.
        auto d = start(TEST_POLICYD, {{"answer", "DISCARD"}}, "discard");
        MilterConn c("127.0.0.1", milter_port_);
        c.open_session();
        auto t = c.transaction("a@example.net", {"b@example.org"});
        ASSERT_TRUE(t.mail.final);
        EXPECT_TRUE(std::holds_alternative<m::Discard>(*t.mail.final));
    }
    {
        auto d = start(TEST_POLICYD, {{"answer", "452 4.5.3 Too many recipients"}}, "code");
        MilterConn c("127.0.0.1", milter_port_);
        ASSERT_TRUE(c.negotiate());
        EXPECT_EQ(c.ask(m::Command(m::Connect{"x", '4', 1, "192.0.2.1"})).text(), "452 4.5.3 Too many recipients");
    }
}

// An MTA that never quits does not hold the daemon past drain_timeout_ms.
TEST_F(MilterDaemonTest, SigtermClosesASessionThatNeverEndsAfterTheDrainTimeout) {
    auto config = kGreylist;
    config["drain_timeout_ms"] = 300;
    auto d = start(POLICYD_GREYLIST, config);
    auto c = session();
    auto started = std::chrono::steady_clock::now();
    d->signal(SIGTERM);
    EXPECT_TRUE(c->closed_by_peer(5s));
    int status = d->wait(5s);
    auto took = std::chrono::steady_clock::now() - started;
    ASSERT_TRUE(WIFEXITED(status)) << status;
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_GE(took, 300ms);
    EXPECT_LT(took, 3s);
    EXPECT_TRUE(d->log_has("drain timeout; closing 1 busy milter connection(s)"));
}

TEST_F(MilterDaemonTest, MilterAddressesAreCheckedWithTheConfiguration) {
    auto r = testsupport::run({POLICYD_GREYLIST, "--milter", "inet:99999@127.0.0.1", "--check-config"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("not a port number"), std::string::npos) << r.output;
    r = testsupport::run({POLICYD_GREYLIST, "--milter", "inet:10025@127.0.0.1", "--milter",
                          "unix:/run/x.sock", "--check-config"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    // The LMTP server has no decisions to serve: refused by --check-config
    // as it would be at start.
    r = testsupport::run({DELIVERY_MAILDIR, "--milter", "inet:10025@127.0.0.1", "--check-config"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("makes no policy decisions"), std::string::npos) << r.output;
}

}  // namespace
