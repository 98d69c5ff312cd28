// mta::dns::AresResolver against a real DNS server: dnsmasq on a free
// loopback port serving test zones, and small UDP servers written here for
// what dnsmasq will not do on demand (answer SERVFAIL or REFUSED, or never
// answer). Everything runs on one io_context; nothing sleeps to synchronise.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "dns/names.h"
#include "dns/resolver.h"
#include "support/process.h"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using mta::dns::AresResolver;
using mta::dns::ClientNames;
using mta::dns::MxRecord;
using mta::dns::Options;
using mta::restrictions::DnsAnswer;

// Run one awaitable on io until it completes (the resolver keeps its UDP
// sockets watched, so io.run() alone would not return).
template <class T>
T run(asio::io_context& io, asio::awaitable<T> a) {
    std::optional<T> out;
    std::exception_ptr error;
    bool done = false;
    asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
        error = e;
        if (!e) out = std::move(v);
        done = true;
    });
    io.restart();
    while (!done && io.run_one()) {
    }
    if (error) std::rethrow_exception(error);
    if (!done) throw std::runtime_error("io_context ran out of work before the query completed");
    return std::move(*out);
}

std::string dnsmasq_path() {
    for (const char* p : {"/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"})
        if (::access(p, X_OK) == 0) return p;
    return "";
}

// dnsmasq answering for *.test and the test reverse zones, with a TTL on
// its answers (local-ttl, neg-ttl) as a real zone has. Extra arguments add
// forwards for failure cases.
class Dnsmasq {
public:
    explicit Dnsmasq(const std::vector<std::string>& extra = {}) {
        std::string bin = dnsmasq_path();
        if (bin.empty())
            throw std::runtime_error("dnsmasq not found (Debian package dnsmasq-base, see deploy/install-deps.sh)");
        port_ = testsupport::free_port();
        std::vector<std::string> argv = {
            bin, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
            "--port=" + std::to_string(port_), "--listen-address=127.0.0.1", "--bind-interfaces",
            "--local-ttl=60", "--neg-ttl=60", "--pid-file=", "--log-queries",
            "--log-facility=" + dir_.file("queries.log"),
            "--local=/test/", "--local=/2.0.192.in-addr.arpa/", "--local=/8.b.d.0.1.0.0.2.ip6.arpa/",
            "--host-record=a.test,192.0.2.1,2001:db8::1",
            "--host-record=v4only.test,192.0.2.2",
            "--cname=alias.test,a.test",
            "--cname=alias2.test,alias.test",
            "--host-record=2.0.0.127.bl.test,127.0.0.2",
            "--mx-host=mx.test,mx-primary.test,5",
            "--mx-host=mx.test,mx-a.test,10",
            "--mx-host=mx.test,mx-b.test,10",
            "--mx-host=mx.test,mx-c.test,10",
            "--mx-host=mx.test,mx-backup.test,20",
            "--dns-rr=nullmx.test,15,000000",  // MX 0 "." (RFC 7505)
            "--ptr-record=5.2.0.192.in-addr.arpa,liar.test",
            "--host-record=liar.test,192.0.2.99",
            "--ptr-record=6.2.0.192.in-addr.arpa,1.2.3.4",  // a numeric PTR: a trick
            "--address=/many.test/192.0.2.7",
        };
        // More A records than fit in 512 bytes: c-ares retries over TCP.
        for (int i = 1; i <= 70; ++i) argv.push_back("--host-record=big.test,192.0.3." + std::to_string(i));
        if (::geteuid() == 0) argv.push_back("--user=root");  // no "dnsmasq" user needed
        for (const auto& e : extra) argv.push_back(e);
        proc_ = testsupport::Process(argv, dir_.file("stderr.log"));
        try {
            // dnsmasq answers TCP on the same port once it answers UDP.
            testsupport::wait_for_tcp("127.0.0.1", port_, 10s);
        } catch (const std::exception& e) {
            throw std::runtime_error(std::string("dnsmasq did not start: ") + e.what() + "\n" +
                                     testsupport::read_file(dir_.file("stderr.log")));
        }
    }
    ~Dnsmasq() { proc_.stop(5s); }
    int port() const { return port_; }
    std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
    std::string log() const { return testsupport::read_file(dir_.file("queries.log")); }

private:
    testsupport::TempDir dir_;
    int port_ = 0;
    testsupport::Process proc_;
};

// A UDP "server" on 127.0.0.1: answers every query with rcode (2 SERVFAIL,
// 5 REFUSED), or reads and drops it when rcode is negative.
class UdpResponder {
public:
    UdpResponder(asio::io_context& io, int rcode) : sock_(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        asio::co_spawn(io, serve(sock_, rcode), asio::detached);
    }
    ~UdpResponder() {
        boost::system::error_code ec;
        sock_.close(ec);
    }
    int port() const { return sock_.local_endpoint().port(); }
    std::string server() const { return "127.0.0.1:" + std::to_string(port()); }
    int received() const { return *received_; }

private:
    asio::awaitable<void> serve(asio::ip::udp::socket& sock, int rcode) {
        auto received = received_;
        std::array<unsigned char, 1500> buf{};
        asio::ip::udp::endpoint from;
        for (;;) {
            auto [ec, n] = co_await sock.async_receive_from(asio::buffer(buf), from,
                                                            asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            ++*received;
            if (rcode >= 0 && n >= 12) {
                buf[2] = static_cast<unsigned char>(buf[2] | 0x80);  // QR: a response
                buf[3] = static_cast<unsigned char>(0x80 | rcode);   // RA, RCODE
                auto [ec2, sent] = co_await sock.async_send_to(asio::buffer(buf.data(), n), from,
                                                               asio::as_tuple(asio::use_awaitable));
                if (ec2) co_return;
            }
        }
    }
    asio::ip::udp::socket sock_;
    std::shared_ptr<int> received_ = std::make_shared<int>(0);
};

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

class MtaDnsResolver : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        try {
            dns_ = std::make_unique<Dnsmasq>();
        } catch (const std::exception& e) {
            start_error_ = e.what();
        }
    }
    static void TearDownTestSuite() { dns_.reset(); }
    void SetUp() override {
        if (!dns_) FAIL() << start_error_;
    }

    AresResolver& resolver() {
        if (!resolver_) {
            Options o;
            o.timeout = 2000ms;
            o.servers = {dns_->server()};
            resolver_ = std::make_unique<AresResolver>(io_.get_executor(), o);
        }
        return *resolver_;
    }
    void TearDown() override {
        if (resolver_) {
            EXPECT_EQ(resolver_->stats().in_flight, 0u);
        }
    }
    DnsAnswer addresses(const std::string& name) { return run(io_, resolver().addresses(name)); }

    static std::unique_ptr<Dnsmasq> dns_;
    static std::string start_error_;
    asio::io_context io_;
    std::unique_ptr<AresResolver> resolver_;
};
std::unique_ptr<Dnsmasq> MtaDnsResolver::dns_;
std::string MtaDnsResolver::start_error_;

TEST_F(MtaDnsResolver, AddressesFindsAAndAaaa) {
    auto a = addresses("a.test");
    ASSERT_EQ(a.status, DnsAnswer::found);
    EXPECT_TRUE(contains(a.values, "192.0.2.1"));
    EXPECT_TRUE(contains(a.values, "2001:db8::1"));
    EXPECT_EQ(a.values.size(), 2u);
    auto dotted = addresses("a.test.");
    EXPECT_EQ(dotted.status, DnsAnswer::found);
}

TEST_F(MtaDnsResolver, AddressesOfOneFamilyOnly) {
    auto a = addresses("v4only.test");
    ASSERT_EQ(a.status, DnsAnswer::found);
    EXPECT_EQ(a.values, std::vector<std::string>{"192.0.2.2"});
}

TEST_F(MtaDnsResolver, NxdomainIsNotFound) {
    auto a = addresses("nx.test");
    EXPECT_EQ(a.status, DnsAnswer::not_found);
    EXPECT_TRUE(a.values.empty());
}

TEST_F(MtaDnsResolver, CnameChainIsFollowed) {
    auto a = addresses("alias2.test");
    ASSERT_EQ(a.status, DnsAnswer::found);
    EXPECT_TRUE(contains(a.values, "192.0.2.1"));
    EXPECT_TRUE(contains(a.values, "2001:db8::1"));
}

TEST_F(MtaDnsResolver, DnsblStyleName) {
    auto a = addresses("2.0.0.127.bl.test");
    ASSERT_EQ(a.status, DnsAnswer::found);
    EXPECT_EQ(a.values, std::vector<std::string>{"127.0.0.2"});
    EXPECT_EQ(addresses("3.0.0.127.bl.test").status, DnsAnswer::not_found);
}

TEST_F(MtaDnsResolver, LargeAnswerComesOverTcpAndIsCapped) {
    auto a = addresses("big.test");
    ASSERT_EQ(a.status, DnsAnswer::found);
    EXPECT_EQ(a.values.size(), mta::dns::max_answers);
}

TEST_F(MtaDnsResolver, InvalidNamesAreNotAsked) {
    auto& r = resolver();
    for (const char* bad : {"", ".", "a..test", "bad name.test", "a.test\r\nx", "ex\xc3\xa4mple.test",
                            "a.-.test.."}) {
        auto a = run(io_, r.addresses(bad));
        EXPECT_EQ(a.status, DnsAnswer::not_found) << bad;
    }
    std::string long_label(64, 'a');
    EXPECT_EQ(run(io_, r.addresses(long_label + ".test")).status, DnsAnswer::not_found);
    EXPECT_EQ(r.stats().queries, 0u);
}

TEST_F(MtaDnsResolver, MxInPreferenceOrderWithEqualsShuffled) {
    auto& r = resolver();
    std::set<std::vector<std::string>> middles;
    for (int i = 0; i < 30; ++i) {
        DnsAnswer::Status status = DnsAnswer::temporary;
        std::vector<MxRecord> mx = run(io_, r.mx("mx.test", status));
        ASSERT_EQ(status, DnsAnswer::found);
        ASSERT_EQ(mx.size(), 5u);
        EXPECT_EQ(mx[0].host, "mx-primary.test");
        EXPECT_EQ(mx[0].preference, 5);
        EXPECT_EQ(mx[4].host, "mx-backup.test");
        EXPECT_EQ(mx[4].preference, 20);
        std::vector<std::string> middle;
        for (int j = 1; j <= 3; ++j) {
            EXPECT_EQ(mx[static_cast<std::size_t>(j)].preference, 10);
            middle.push_back(mx[static_cast<std::size_t>(j)].host);
        }
        std::set<std::string> names(middle.begin(), middle.end());
        EXPECT_EQ(names, (std::set<std::string>{"mx-a.test", "mx-b.test", "mx-c.test"}));
        middles.insert(middle);
    }
    // 30 draws of 6 orders: all the same has probability 6^-29.
    EXPECT_GT(middles.size(), 1u);
}

TEST_F(MtaDnsResolver, MailExchangersForRestrictions) {
    auto mx = run(io_, resolver().mail_exchangers("mx.test"));
    ASSERT_EQ(mx.status, DnsAnswer::found);
    ASSERT_EQ(mx.values.size(), 5u);
    EXPECT_EQ(mx.values.front(), "mx-primary.test");
    EXPECT_EQ(mx.values.back(), "mx-backup.test");
    EXPECT_EQ(run(io_, resolver().mail_exchangers("a.test")).status, DnsAnswer::not_found);  // NODATA
    EXPECT_EQ(run(io_, resolver().mail_exchangers("nx.test")).status, DnsAnswer::not_found);
}

TEST_F(MtaDnsResolver, NullMxIsFoundWithAnEmptyHost) {
    DnsAnswer::Status status = DnsAnswer::temporary;
    auto mx = run(io_, resolver().mx("nullmx.test", status));
    ASSERT_EQ(status, DnsAnswer::found);
    ASSERT_EQ(mx.size(), 1u);
    EXPECT_EQ(mx[0].preference, 0);
    EXPECT_EQ(mx[0].host, "");
    auto answer = run(io_, resolver().mail_exchangers("nullmx.test"));
    EXPECT_EQ(answer.status, DnsAnswer::found);
    EXPECT_EQ(answer.values, std::vector<std::string>{""});
}

TEST_F(MtaDnsResolver, Ptr) {
    auto p = run(io_, resolver().ptr("192.0.2.1"));
    ASSERT_EQ(p.status, DnsAnswer::found);
    EXPECT_EQ(p.values, std::vector<std::string>{"a.test"});
    auto p6 = run(io_, resolver().ptr("2001:db8::1"));
    ASSERT_EQ(p6.status, DnsAnswer::found);
    EXPECT_EQ(p6.values, std::vector<std::string>{"a.test"});
    EXPECT_EQ(run(io_, resolver().ptr("192.0.2.200")).status, DnsAnswer::not_found);
    EXPECT_EQ(run(io_, resolver().ptr("not-an-address")).status, DnsAnswer::not_found);
    // A PTR that names an address is not believed.
    EXPECT_EQ(run(io_, resolver().ptr("192.0.2.6")).status, DnsAnswer::not_found);
}

TEST_F(MtaDnsResolver, ClientNameForwardConfirmed) {
    ClientNames n = run(io_, resolver().client_names("192.0.2.1"));
    EXPECT_EQ(n.client_name, "a.test");
    EXPECT_EQ(n.reverse_client_name, "a.test");
    EXPECT_FALSE(n.tempfail);
    ClientNames n6 = run(io_, resolver().client_names("2001:db8::1"));
    EXPECT_EQ(n6.client_name, "a.test");
    EXPECT_EQ(n6.reverse_client_name, "a.test");
    // An IPv4 client seen through an IPv6 socket.
    ClientNames mapped = run(io_, resolver().client_names("::ffff:192.0.2.1"));
    EXPECT_EQ(mapped.client_name, "a.test");
    EXPECT_EQ(mapped.reverse_client_name, "a.test");
}

TEST_F(MtaDnsResolver, ClientNameMismatchKeepsOnlyTheReverseName) {
    ClientNames n = run(io_, resolver().client_names("192.0.2.5"));  // PTR liar.test, which is 192.0.2.99
    EXPECT_EQ(n.client_name, "unknown");
    EXPECT_EQ(n.reverse_client_name, "liar.test");
    EXPECT_FALSE(n.tempfail);
}

TEST_F(MtaDnsResolver, ClientWithoutPtrOrWithANumericPtrIsUnknown) {
    for (const char* ip : {"192.0.2.200", "192.0.2.6"}) {
        ClientNames n = run(io_, resolver().client_names(ip));
        EXPECT_EQ(n.client_name, "unknown") << ip;
        EXPECT_EQ(n.reverse_client_name, "unknown") << ip;
        EXPECT_FALSE(n.tempfail) << ip;
    }
}

TEST_F(MtaDnsResolver, TwoHundredConcurrentQueries) {
    auto& r = resolver();
    constexpr int n = 200;
    int done = 0, found = 0;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
        asio::co_spawn(io_, r.addresses("n" + std::to_string(i) + ".many.test"),
                       [&](std::exception_ptr e, DnsAnswer a) {
                           ++done;
                           if (!e && a.status == DnsAnswer::found && contains(a.values, "192.0.2.7")) ++found;
                       });
    }
    io_.restart();
    while (done < n && io_.run_one()) {
    }
    EXPECT_EQ(done, n);
    EXPECT_EQ(found, n);
    EXPECT_EQ(r.stats().queries, 2u * n);  // A and AAAA each
    // No datagram lost to a burst: nothing waited for a retry (timeout 2 s).
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
}

// Failures: the resolver pointed at servers that fail in each way.
class MtaDnsFailure : public ::testing::Test {
protected:
    std::unique_ptr<AresResolver> make(const std::string& server, std::chrono::milliseconds timeout = 300ms,
                                       int tries = 2) {
        Options o;
        o.timeout = timeout;
        o.tries = tries;
        o.servers = {server};
        return std::make_unique<AresResolver>(io_.get_executor(), o);
    }
    asio::io_context io_;
};

TEST_F(MtaDnsFailure, ServfailIsTemporary) {
    UdpResponder servfail(io_, 2);
    auto r = make(servfail.server(), 2000ms);
    auto start = std::chrono::steady_clock::now();
    auto a = run(io_, r->addresses("a.test"));
    EXPECT_EQ(a.status, DnsAnswer::temporary);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1000ms);  // an answer, not a timeout
    DnsAnswer::Status status = DnsAnswer::found;
    auto mx = run(io_, r->mx("mx.test", status));
    EXPECT_EQ(status, DnsAnswer::temporary);
    EXPECT_TRUE(mx.empty());
    EXPECT_EQ(run(io_, r->ptr("192.0.2.1")).status, DnsAnswer::temporary);
    ClientNames n = run(io_, r->client_names("192.0.2.1"));
    EXPECT_TRUE(n.tempfail);
    EXPECT_EQ(n.client_name, "unknown");
    EXPECT_EQ(n.reverse_client_name, "unknown");
    EXPECT_GT(servfail.received(), 0);
    EXPECT_EQ(r->stats().in_flight, 0u);
}

TEST_F(MtaDnsFailure, RefusedIsTemporary) {
    UdpResponder refused(io_, 5);
    auto r = make(refused.server(), 2000ms);
    EXPECT_EQ(run(io_, r->addresses("a.test")).status, DnsAnswer::temporary);
}

TEST_F(MtaDnsFailure, ClosedPortIsTemporary) {
    int port = 0;
    {
        asio::ip::udp::socket s(io_, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        port = s.local_endpoint().port();
    }
    auto r = make("127.0.0.1:" + std::to_string(port));
    EXPECT_EQ(run(io_, r->addresses("a.test")).status, DnsAnswer::temporary);
}

// A server that never answers: every query ends, temporary, within
// timeout * tries (+200 ms), and the I/O thread keeps serving others.
TEST_F(MtaDnsFailure, SilentServerTimesOutWithinTimeoutTimesTries) {
    UdpResponder silent(io_, -1);
    auto r = make(silent.server(), 300ms, 2);
    int ticks = 0;
    bool stop = false;
    asio::steady_timer ticker(io_);
    std::function<void()> tick = [&] {
        ticker.expires_after(20ms);
        ticker.async_wait([&](boost::system::error_code ec) {
            if (ec || stop) return;
            ++ticks;
            tick();
        });
    };
    tick();
    constexpr int n = 20;
    int done = 0, temporary = 0;
    std::vector<std::chrono::steady_clock::duration> took(n);
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
        asio::co_spawn(io_, r->addresses("q" + std::to_string(i) + ".test"),
                       [&, i](std::exception_ptr e, DnsAnswer a) {
                           took[static_cast<std::size_t>(i)] = std::chrono::steady_clock::now() - start;
                           ++done;
                           if (!e && a.status == DnsAnswer::temporary) ++temporary;
                       });
    }
    io_.restart();
    while (done < n && io_.run_one()) {
    }
    stop = true;
    ticker.cancel();
    EXPECT_EQ(done, n);
    EXPECT_EQ(temporary, n);
    for (auto t : took) {
        EXPECT_LE(t, 600ms + 200ms);
        EXPECT_GE(t, 300ms);  // it did wait for the server
    }
    EXPECT_GE(ticks, 10);  // the loop was never blocked
    EXPECT_GT(silent.received(), 0);
    EXPECT_EQ(r->stats().in_flight, 0u);
    EXPECT_GE(r->stats().temporary, static_cast<std::uint64_t>(2 * n));
}

TEST_F(MtaDnsFailure, EveryTriesValueKeepsTheBound) {
    UdpResponder silent(io_, -1);
    for (int tries : {1, 3}) {
        auto r = make(silent.server(), 200ms, tries);
        auto start = std::chrono::steady_clock::now();
        EXPECT_EQ(run(io_, r->addresses("a.test")).status, DnsAnswer::temporary);
        auto took = std::chrono::steady_clock::now() - start;
        EXPECT_LE(took, 200ms * tries + 200ms) << tries;
        EXPECT_GE(took, 200ms * tries - 20ms) << tries;  // every try was given its time
    }
}

TEST_F(MtaDnsFailure, DestroyingTheResolverCompletesWaitingQueries) {
    UdpResponder silent(io_, -1);
    auto r = make(silent.server(), 5000ms);
    bool done = false;
    DnsAnswer answer;
    answer.status = DnsAnswer::found;
    asio::co_spawn(io_, r->addresses("a.test"), [&](std::exception_ptr e, DnsAnswer a) {
        if (!e) answer = std::move(a);
        done = true;
    });
    io_.restart();
    io_.poll();  // the query is sent
    EXPECT_EQ(r->stats().queries, 2u);
    r.reset();
    auto start = std::chrono::steady_clock::now();
    while (!done && io_.run_one()) {
    }
    EXPECT_TRUE(done);
    EXPECT_EQ(answer.status, DnsAnswer::temporary);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1000ms);
}

TEST_F(MtaDnsFailure, ForwardLookupFailureIsTempfailWithTheReverseName) {
    // dnsmasq gives the PTR and forwards the name's zone to a SERVFAIL server.
    UdpResponder servfail(io_, 2);
    Dnsmasq dns({"--ptr-record=7.2.0.192.in-addr.arpa,host.fail.test",
                 "--server=/fail.test/127.0.0.1#" + std::to_string(servfail.port())});
    auto r = make(dns.server(), 2000ms);
    ClientNames n = run(io_, r->client_names("192.0.2.7"));
    EXPECT_EQ(n.reverse_client_name, "host.fail.test");
    EXPECT_EQ(n.client_name, "unknown");
    EXPECT_TRUE(n.tempfail);
}

TEST_F(MtaDnsFailure, SystemConfigurationIsAccepted) {
    Options o;  // no servers: /etc/resolv.conf (or c-ares' default, 127.0.0.1)
    EXPECT_NO_THROW(AresResolver(io_.get_executor(), o));
}

TEST_F(MtaDnsFailure, BadOptionsThrow) {
    Options o;
    o.servers = {"not a server"};
    EXPECT_THROW(AresResolver(io_.get_executor(), o), std::runtime_error);
    Options t;
    t.tries = 0;
    EXPECT_THROW(AresResolver(io_.get_executor(), t), std::invalid_argument);
}

TEST(MtaDnsNames, QueryNames) {
    using mta::dns::valid_query_name;
    EXPECT_TRUE(valid_query_name("example.org"));
    EXPECT_TRUE(valid_query_name("example.org."));
    EXPECT_TRUE(valid_query_name("2.0.0.127.zen.spamhaus.org"));
    EXPECT_TRUE(valid_query_name("_dmarc.example.org"));
    EXPECT_TRUE(valid_query_name(std::string(63, 'a') + ".org"));
    EXPECT_FALSE(valid_query_name(std::string(64, 'a') + ".org"));
    std::string long_name;
    while (long_name.size() < 254) long_name += "abcdefghi.";
    EXPECT_FALSE(valid_query_name(long_name.substr(0, 254)));
    EXPECT_TRUE(valid_query_name(long_name.substr(0, 253)));
    for (const char* bad : {"", ".", "..", "a..b", ".a", "a b", "a/b", "a\\.b", "\xc3\xa4.de"})
        EXPECT_FALSE(valid_query_name(bad)) << bad;
    EXPECT_FALSE(valid_query_name(std::string("a\0b", 3)));
}

TEST(MtaDnsNames, HostNames) {
    using mta::dns::valid_hostname;
    EXPECT_TRUE(valid_hostname("mail.example.org"));
    EXPECT_TRUE(valid_hostname("mail-1.example.org."));
    EXPECT_TRUE(valid_hostname("1.2.3.4.example.org"));
    EXPECT_FALSE(valid_hostname("1.2.3.4"));
    EXPECT_FALSE(valid_hostname("-mail.example.org"));
    EXPECT_FALSE(valid_hostname("mail-.example.org"));
    EXPECT_FALSE(valid_hostname("mail.example.org-"));
    EXPECT_FALSE(valid_hostname("mail\nexample.org"));
}

TEST(MtaDnsNames, ReverseNames) {
    using mta::dns::reverse_name;
    EXPECT_EQ(reverse_name("192.0.2.1"), "1.2.0.192.in-addr.arpa");
    EXPECT_EQ(reverse_name("::ffff:192.0.2.1"), "1.2.0.192.in-addr.arpa");
    EXPECT_EQ(reverse_name("2001:db8::1"),
              "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
    EXPECT_EQ(reverse_name("300.1.1.1"), std::nullopt);
    EXPECT_EQ(reverse_name("example.org"), std::nullopt);
}

}  // namespace
