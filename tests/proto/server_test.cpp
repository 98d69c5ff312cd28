// The policy server and client over real TCP and unix sockets, in process:
// answering, limits, hostile input beside healthy connections, idle and
// decision timeouts, faults, drain, the pooled client and /metrics.
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <sys/resource.h>
#include <sys/wait.h>

#include <charconv>
#include <filesystem>
#include <future>
#include <thread>

#include "daemon/metrics.h"
#include "daemon/metrics_http.h"
#include "policy/client.h"
#include "policy/decider.h"
#include "policy/server.h"
#include "support/policy_conn.h"
#include "support/process.h"

namespace asio = boost::asio;
using namespace proto;
using namespace std::chrono_literals;
using testsupport::PolicyConn;
using testsupport::rcpt_request;

namespace {

class ScriptedDecider final : public policy::Decider {
public:
    asio::awaitable<policy::Decision> decide(const policy::Request& r) override {
        if (r.get("test_fault") == "1") throw std::runtime_error("requested fault");
        auto delay = r.get("test_delay_ms");
        if (!delay.empty()) {
            int ms = 0;
            std::from_chars(delay.data(), delay.data() + delay.size(), ms);
            asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
            co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        auto answer = r.get("test_answer");
        if (!answer.empty()) co_return policy::Decision{*policy::parse_action(answer).action, "t"};
        co_return policy::Decision{policy::Action::dunno(), "test"};
    }
};

class ServerTest : public ::testing::Test {
protected:
    void start(policy::ServerOptions options = {}) {
        options.log_decisions = false;
        server_ = std::make_unique<policy::Server>(io_, options, registry_,
                                                   [this] { return decider_; });
        port_ = testsupport::free_port();
        server_->listen(*net::parse_endpoint("inet:127.0.0.1:" + std::to_string(port_)).endpoint);
        unix_path_ = dir_.file("policy.sock");
        server_->listen(*net::parse_endpoint("unix:" + unix_path_).endpoint);
        thread_ = std::thread([this] { io_.run(); });
    }

    void TearDown() override {
        work_.reset();
        io_.stop();
        if (thread_.joinable()) thread_.join();
        server_.reset();
    }

    std::uint64_t counter(const std::string& name, const metrics::Labels& labels = {}) {
        return registry_.counter(name, "", labels).value();
    }

    // Run a coroutine on the server's io_context and wait for its result.
    template <typename T>
    T run_on_io(asio::awaitable<T> a) {
        return asio::co_spawn(io_, std::move(a), asio::use_future).get();
    }

    // Run f on the server's io_context and wait until it has run, so what it
    // touches is neither raced by nor outlived by this thread.
    template <typename F>
    void on_io(F f) {
        asio::post(io_, asio::use_future(std::move(f))).get();
    }

    testsupport::TempDir dir_;
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
    metrics::Registry registry_;
    std::shared_ptr<policy::Decider> decider_ = std::make_shared<ScriptedDecider>();
    std::unique_ptr<policy::Server> server_;
    std::thread thread_;
    int port_ = 0;
    std::string unix_path_;
};

}  // namespace

TEST_F(ServerTest, AnswersOverTcpAndUnixOnPersistentConnections) {
    start();
    PolicyConn tcp("127.0.0.1", port_);
    PolicyConn local(unix_path_);
    for (int i = 0; i < 50; ++i) {
        EXPECT_EQ(tcp.ask(rcpt_request()), "DUNNO");
        EXPECT_EQ(local.ask(rcpt_request({{"test_answer", "REJECT no"}})), "REJECT no");
    }
    EXPECT_EQ(counter("policy_requests_total", {{"action", "DUNNO"}}), 50u);
    EXPECT_EQ(counter("policy_requests_total", {{"action", "REJECT"}}), 50u);
}

TEST_F(ServerTest, ListensOnIpv6) {
    policy::ServerOptions o;
    start(o);
    int port6 = testsupport::free_port();
    on_io([&] {
        server_->listen(*net::parse_endpoint("inet:[::1]:" + std::to_string(port6)).endpoint);
    });
    testsupport::wait_for_tcp("::1", port6);
    PolicyConn c("::1", port6);
    EXPECT_EQ(c.ask(rcpt_request()), "DUNNO");
}

TEST_F(ServerTest, PipelinedRequestsInOneWriteAreEachAnswered) {
    start();
    PolicyConn c("127.0.0.1", port_);
    c.send_raw("protocol_state=RCPT\ntest_answer=OK\n\nprotocol_state=RCPT\n\n");
    EXPECT_EQ(c.read_reply(), "action=OK\n\n");
    EXPECT_EQ(c.read_reply(), "action=DUNNO\n\n");
}

TEST_F(ServerTest, HostileInputClosesOnlyItsConnection) {
    start();
    std::vector<std::unique_ptr<PolicyConn>> healthy;
    for (int i = 0; i < 100; ++i) healthy.push_back(std::make_unique<PolicyConn>("127.0.0.1", port_));
    for (auto& h : healthy) ASSERT_EQ(h->ask(rcpt_request()), "DUNNO");

    std::vector<std::string> attacks = {
        "garbage without equals\n\n",
        std::string(9000, 'A') + "\n",           // line over 8 KiB
        "=novalue\n\n",
        std::string("a=b\0c\n\n", 7),
    };
    std::string many;  // 129 attributes
    for (int i = 0; i < 129; ++i) many += "a" + std::to_string(i) + "=x\n";
    attacks.push_back(many + "\n");
    std::string huge;  // 70 KB request of short lines
    for (int i = 0; i < 100; ++i) huge += "x" + std::to_string(i) + "=" + std::string(700, 'v') + "\n";
    attacks.push_back(huge);

    for (const auto& attack : attacks) {
        PolicyConn bad("127.0.0.1", port_);
        bad.send_raw(attack);
        EXPECT_TRUE(bad.closed_by_peer()) << attack.substr(0, 40);
        for (auto& h : healthy) ASSERT_EQ(h->ask(rcpt_request()), "DUNNO");
    }
    EXPECT_EQ(counter("policy_malformed_requests_total"), attacks.size());
}

TEST_F(ServerTest, IdleConnectionIsClosedAfterIdleTimeout) {
    policy::ServerOptions o;
    o.idle_timeout = 300ms;
    start(o);
    PolicyConn idle("127.0.0.1", port_);
    PolicyConn busy("127.0.0.1", port_);
    auto started = std::chrono::steady_clock::now();
    // The busy one keeps talking past the idle timeout and stays open.
    while (std::chrono::steady_clock::now() - started < 600ms) ASSERT_EQ(busy.ask(rcpt_request()), "DUNNO");
    EXPECT_TRUE(idle.closed_by_peer(2s));
    EXPECT_EQ(busy.ask(rcpt_request()), "DUNNO");
    EXPECT_GE(counter("policy_idle_timeouts_total"), 1u);
}

TEST_F(ServerTest, MaxConnectionsOfBusyConnectionsClosesTheExtraOnes) {
    policy::ServerOptions o;
    o.max_connections = 5;
    start(o);
    std::vector<std::unique_ptr<PolicyConn>> conns;
    for (int i = 0; i < 5; ++i) {
        conns.push_back(std::make_unique<PolicyConn>("127.0.0.1", port_));
        conns.back()->send_raw("protocol_state=RCPT\ntest_delay_ms=1000\n\n");
    }
    for (int i = 0; i < 1000 && registry_.gauge("policy_requests_in_flight", "").value() < 5; ++i)
        std::this_thread::sleep_for(1ms);
    // Every slot busy: nothing may be evicted, the new one is refused.
    PolicyConn extra("127.0.0.1", port_);
    EXPECT_TRUE(extra.closed_by_peer());
    EXPECT_EQ(counter("policy_connections_refused_total"), 1u);
    EXPECT_EQ(counter("policy_connections_evicted_total"), 0u);
    for (auto& c : conns) EXPECT_EQ(c->read_reply(3s), "action=DUNNO\n\n");
    conns.pop_back();
    // A slot is free again once the server has seen the close.
    bool answered = false;
    for (int i = 0; i < 100 && !answered; ++i) {
        PolicyConn again("127.0.0.1", port_);
        answered = again.ask(rcpt_request(), 1s) == "DUNNO";
    }
    EXPECT_TRUE(answered);
}

TEST_F(ServerTest, FullTableClosesTheConnectionIdleLongestForANewOne) {
    policy::ServerOptions o;
    o.max_connections = 5;
    start(o);
    std::vector<std::unique_ptr<PolicyConn>> conns;
    for (int i = 0; i < 5; ++i) {
        conns.push_back(std::make_unique<PolicyConn>("127.0.0.1", port_));
        ASSERT_EQ(conns.back()->ask(rcpt_request()), "DUNNO");
    }
    // The first one is idle longest: it goes, the new client is answered.
    for (int round = 0; round < 20; ++round) {
        auto fresh = std::make_unique<PolicyConn>("127.0.0.1", port_);
        ASSERT_EQ(fresh->ask(rcpt_request(), 2s), "DUNNO") << round;
        EXPECT_TRUE(conns.front()->closed_by_peer()) << round;
        conns.erase(conns.begin());
        conns.push_back(std::move(fresh));
    }
    for (auto& c : conns) EXPECT_EQ(c->ask(rcpt_request()), "DUNNO");
    EXPECT_EQ(counter("policy_connections_evicted_total"), 20u);
    EXPECT_EQ(counter("policy_connections_refused_total"), 0u);
}

TEST_F(ServerTest, BusyConnectionsAreNeverEvictedAndPartialOnesOnlyWithNoIdleOne) {
    policy::ServerOptions o;
    o.max_connections = 3;
    start(o);
    PolicyConn idle("127.0.0.1", port_);
    ASSERT_EQ(idle.ask(rcpt_request()), "DUNNO");
    PolicyConn busy("127.0.0.1", port_);
    PolicyConn partial("127.0.0.1", port_);
    busy.send_raw("protocol_state=RCPT\ntest_delay_ms=1500\ntest_answer=OK\n\n");
    partial.send_raw("protocol_state=RCPT\n");
    for (int i = 0; i < 1000 && registry_.gauge("policy_requests_in_flight", "").value() < 1; ++i)
        std::this_thread::sleep_for(1ms);
    // Full: the idle one goes, not the busy or the partial one.
    PolicyConn second("127.0.0.1", port_);
    EXPECT_EQ(second.ask(rcpt_request()), "DUNNO");
    EXPECT_TRUE(idle.closed_by_peer());
    // Full again, `second` idle: it goes, not the partial request.
    PolicyConn third("127.0.0.1", port_);
    EXPECT_EQ(third.ask(rcpt_request()), "DUNNO");
    EXPECT_TRUE(second.closed_by_peer());
    // Busy and partial left besides `third`, now with a request partly sent:
    // the oldest partial request goes, the busy one is answered.
    // (The partial request follows a whole one in the same write: once its
    // answer is back, the server holds the rest as the next, partial, one.)
    third.send_raw("protocol_state=RCPT\n\nprotocol_state=RCPT\n");
    EXPECT_EQ(third.read_reply(), "action=DUNNO\n\n");
    PolicyConn fourth("127.0.0.1", port_);
    EXPECT_EQ(fourth.ask(rcpt_request()), "DUNNO");
    EXPECT_TRUE(partial.closed_by_peer());
    EXPECT_EQ(busy.read_reply(3s), "action=OK\n\n");
    third.send_raw("\n");
    EXPECT_EQ(third.read_reply(), "action=DUNNO\n\n");
    EXPECT_EQ(counter("policy_connections_evicted_total"), 3u);
}

TEST_F(ServerTest, ADrippedRequestIsClosedAtTheReadDeadline) {
    policy::ServerOptions o;
    o.read_timeout = 300ms;
    o.idle_timeout = 30s;
    start(o);
    PolicyConn drip("127.0.0.1", port_);
    PolicyConn healthy("127.0.0.1", port_);
    auto started = std::chrono::steady_clock::now();
    std::string request = "protocol_state=RCPT\nsender=a@example.org\nrecipient=b@example.org\n";
    bool closed = false;
    for (char ch : request) {
        // One byte at a time, each well within any per-read timeout.
        try {
            drip.send_raw(std::string(1, ch));
        } catch (const std::exception&) {
            closed = true;
            break;
        }
        if (drip.closed_by_peer(50ms)) {
            closed = true;
            break;
        }
    }
    if (!closed) closed = drip.closed_by_peer(2s);
    EXPECT_TRUE(closed);
    auto took = std::chrono::steady_clock::now() - started;
    EXPECT_GE(took, 300ms);
    EXPECT_LT(took, 3s);
    EXPECT_EQ(counter("policy_read_timeouts_total"), 1u);
    EXPECT_EQ(healthy.ask(rcpt_request()), "DUNNO");
}

TEST_F(ServerTest, OutOfFilesTheListenersPauseInsteadOfSpinningAndRecover) {
    start();
    int mport = testsupport::free_port();
    std::unique_ptr<metrics::MetricsServer> ms;
    on_io([&] {
        ms = std::make_unique<metrics::MetricsServer>(
            io_, *net::parse_endpoint("inet:127.0.0.1:" + std::to_string(mport)).endpoint, registry_);
    });
    // Clients in another process (it raises its own file limit back):
    // policy requests and metrics scrapes, each waiting for its answer.
    const std::string script = R"(
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
port, mport = int(sys.argv[1]), int(sys.argv[2])
conns = []
for i in range(30):
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(30)
    s.sendall(b"protocol_state=RCPT\n\n"); conns.append((s, b"action=DUNNO\n\n"))
    m = socket.create_connection(("127.0.0.1", mport)); m.settimeout(30)
    m.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"); conns.append((m, b"HTTP/1.1 200"))
answered = 0
for s, want in conns:
    got = b""
    while len(got) < len(want):
        b = s.recv(4096)
        if not b: break
        got += b
    answered += got.startswith(want)
print("answered", answered)
sys.exit(0 if answered == len(conns) else 1)
)";
    rlimit normal{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &normal), 0);
    std::size_t in_use = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++in_use;
    rlimit low = normal;
    low.rlim_cur = in_use + 4;  // a few accepts succeed, then EMFILE
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
    testsupport::Process clients({"/usr/bin/python3", "-c", script, std::to_string(port_),
                                  std::to_string(mport)});
    // Both listeners now have connections they cannot accept.
    for (int i = 0; i < 5000 && counter("policy_accept_errors_total") == 0; ++i)
        std::this_thread::sleep_for(1ms);
    ASSERT_GT(counter("policy_accept_errors_total"), 0u);
    auto cpu = [] {
        rusage u{};
        ::getrusage(RUSAGE_SELF, &u);
        return std::chrono::seconds(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
               std::chrono::microseconds(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
    };
    auto before = cpu();
    std::this_thread::sleep_for(500ms);  // a measuring window, not a wait for an event
    auto used = cpu() - before;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &normal), 0);
    EXPECT_LT(used, 150ms) << "the process spun while out of files";
    int status = clients.wait(30s);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    on_io([&] { ms.reset(); });
}

TEST_F(ServerTest, DecisionTimeoutClosesWithoutReply) {
    policy::ServerOptions o;
    o.decision_timeout = 200ms;
    start(o);
    PolicyConn slow("127.0.0.1", port_);
    PolicyConn fast("127.0.0.1", port_);
    slow.send_raw("protocol_state=RCPT\ntest_delay_ms=3000\n\n");
    EXPECT_EQ(fast.ask(rcpt_request()), "DUNNO");
    EXPECT_TRUE(slow.closed_by_peer(2s));
    EXPECT_EQ(counter("policy_decision_timeouts_total"), 1u);
    EXPECT_EQ(fast.ask(rcpt_request()), "DUNNO");
}

TEST_F(ServerTest, DeciderFaultClosesThatConnectionOnly) {
    start();
    PolicyConn bad("127.0.0.1", port_);
    PolicyConn good("127.0.0.1", port_);
    bad.send_raw("protocol_state=RCPT\ntest_fault=1\n\n");
    EXPECT_EQ(bad.read_reply(), "");  // closed, nothing sent
    EXPECT_EQ(good.ask(rcpt_request()), "DUNNO");
    EXPECT_EQ(counter("policy_internal_faults_total"), 1u);
}

TEST_F(ServerTest, DrainAnswersInFlightAndClosesIdle) {
    start();
    PolicyConn inflight("127.0.0.1", port_);
    PolicyConn idle("127.0.0.1", port_);
    ASSERT_EQ(idle.ask(rcpt_request()), "DUNNO");
    inflight.send_raw("protocol_state=RCPT\ntest_delay_ms=500\ntest_answer=OK\n\n");
    // Wait until the server holds the request in flight.
    for (int i = 0; i < 1000 && registry_.gauge("policy_requests_in_flight", "").value() < 1; ++i)
        std::this_thread::sleep_for(1ms);
    std::promise<void> drained;
    asio::post(io_, [&] {
        server_->drain(5s, [&] { drained.set_value(); });
    });
    EXPECT_TRUE(idle.closed_by_peer(2s));
    EXPECT_EQ(inflight.read_reply(3s), "action=OK\n\n");
    EXPECT_TRUE(inflight.closed_by_peer(2s));
    EXPECT_EQ(drained.get_future().wait_for(5s), std::future_status::ready);
    EXPECT_THROW(PolicyConn("127.0.0.1", port_), std::runtime_error);  // not listening
    EXPECT_EQ(registry_.gauge("policy_connections_open", "").value(), 0);
}

TEST_F(ServerTest, ClientQueriesReusesAndFallsBack) {
    start();
    policy::ClientOptions o;
    o.timeout = 2s;
    auto service = *net::parse_endpoint("inet:127.0.0.1:" + std::to_string(port_)).endpoint;
    policy::Client client(io_.get_executor(), service, o);
    policy::Request r;
    r.set("protocol_state", "RCPT");
    r.set("test_answer", "DEFER_IF_PERMIT later");
    for (int i = 0; i < 10; ++i) {
        auto out = run_on_io(client.query(r));
        EXPECT_TRUE(out.from_service) << out.error;
        EXPECT_EQ(out.action.to_string(), "DEFER_IF_PERMIT later");
    }
    EXPECT_EQ(counter("policy_connections_total"), 1u);  // one pooled connection reused

    // A reply that is not a valid action is a service failure: default action.
    r.set("test_answer", "");
    r.set("test_delay_ms", "5000");
    o.timeout = 200ms;
    policy::Client impatient(io_.get_executor(), service, o);
    auto timed_out = run_on_io(impatient.query(r));
    EXPECT_FALSE(timed_out.from_service);
    EXPECT_EQ(timed_out.action.to_string(), "451 4.3.5 Server configuration problem");
    EXPECT_NE(timed_out.error.find("timeout"), std::string::npos);
}

TEST_F(ServerTest, ClientRetriesOnceWhenPooledConnectionDied) {
    policy::ServerOptions so;
    so.idle_timeout = 200ms;  // the server drops pooled connections quickly
    start(so);
    auto service = *net::parse_endpoint("unix:" + unix_path_).endpoint;
    policy::Client client(io_.get_executor(), service);
    policy::Request r;
    r.set("protocol_state", "RCPT");
    ASSERT_TRUE(run_on_io(client.query(r)).from_service);
    // Wait for the server to close the idle pooled connection.
    for (int i = 0; i < 2000 && counter("policy_idle_timeouts_total") == 0; ++i)
        std::this_thread::sleep_for(1ms);
    ASSERT_EQ(counter("policy_idle_timeouts_total"), 1u);
    auto out = run_on_io(client.query(r));
    EXPECT_TRUE(out.from_service) << out.error;
    EXPECT_EQ(out.action.kind, policy::ActionKind::dunno);
}

TEST_F(ServerTest, ClientUsesDefaultActionWhenNobodyListens) {
    start();
    policy::ClientOptions o;
    o.default_action = *policy::parse_action("DEFER_IF_PERMIT policy down").action;
    policy::Client client(io_.get_executor(),
                          *net::parse_endpoint("inet:127.0.0.1:" +
                                               std::to_string(testsupport::free_port())).endpoint,
                          o);
    auto out = run_on_io(client.query(policy::Request{}));
    EXPECT_FALSE(out.from_service);
    EXPECT_EQ(out.action.to_string(), "DEFER_IF_PERMIT policy down");
}

// A peer that answers garbage: a fault a real policy daemon will not produce on demand.
TEST_F(ServerTest, ClientRejectsMalformedReplies) {
    start();
    asio::io_context fake_io;
    int fake_port = testsupport::free_port();
    asio::ip::tcp::acceptor acc(fake_io, {asio::ip::make_address("127.0.0.1"),
                                          static_cast<unsigned short>(fake_port)});
    std::thread fake([&] {
        asio::ip::tcp::socket s(fake_io);
        acc.accept(s);
        asio::streambuf b;
        boost::system::error_code ec;
        asio::read_until(s, b, "\n\n", ec);
        asio::write(s, asio::buffer(std::string("action=MAYBE tomorrow\n\n")), ec);
    });
    policy::Client client(io_.get_executor(),
                          *net::parse_endpoint("inet:127.0.0.1:" + std::to_string(fake_port)).endpoint);
    policy::Request r;
    r.set("protocol_state", "RCPT");
    auto out = run_on_io(client.query(r));
    EXPECT_FALSE(out.from_service);
    EXPECT_NE(out.error.find("bad reply"), std::string::npos) << out.error;
    EXPECT_EQ(out.action.kind, policy::ActionKind::smtp_4xx);
    fake.join();
}

TEST_F(ServerTest, MetricsEndpointServesPrometheusText) {
    start();
    int mport = testsupport::free_port();
    std::unique_ptr<metrics::MetricsServer> ms;
    on_io([&] {
        ms = std::make_unique<metrics::MetricsServer>(
            io_, *net::parse_endpoint("inet:127.0.0.1:" + std::to_string(mport)).endpoint, registry_);
    });
    testsupport::wait_for_tcp("127.0.0.1", mport);
    PolicyConn c("127.0.0.1", port_);
    ASSERT_EQ(c.ask(rcpt_request()), "DUNNO");
    auto res = testsupport::run({"curl", "-sf", "http://127.0.0.1:" + std::to_string(mport) + "/metrics"});
    ASSERT_EQ(res.exit_code, 0) << res.output;
    EXPECT_NE(res.output.find("policy_requests_total{action=\"DUNNO\"} 1"), std::string::npos)
        << res.output;
    EXPECT_NE(res.output.find("# TYPE policy_decision_seconds histogram"), std::string::npos);
    // Bucket bounds in their shortest form, as Prometheus's clients print them.
    for (std::string le : {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
                           "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"})
        EXPECT_NE(res.output.find("policy_decision_seconds_bucket{le=\"" + le + "\"}"),
                  std::string::npos)
            << le << "\n" << res.output;
    EXPECT_EQ(res.output.find("0000000"), std::string::npos) << res.output;
    auto missing = testsupport::run({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                     "http://127.0.0.1:" + std::to_string(mport) + "/other"});
    EXPECT_EQ(missing.output, "404");
    // Destroyed on the io thread, and before this frame (which owns ms) ends.
    on_io([&] { ms.reset(); });
}
