// mta-core's SMTP AUTH backends against the real things: libsasl2 reading a
// smtpd.conf with pwcheck_method saslauthd and a real saslauthd (-a shadow,
// with a throwaway system user), and Dovecot's auth service run alone. Also
// the Dovecot protocol codec fed byte by byte, and the session's base64.
//
// libsasl2's configuration is global to a process, so one config directory
// (and one saslauthd socket path) serves every Cyrus test of this process;
// each test starts and stops its own saslauthd on it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "sasl/dovecot_protocol.h"
#include "sasl/sasl.h"
#include "support/process.h"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using mta::sasl::Step;
using testsupport::Process;
using testsupport::TempDir;

// Run one coroutine on io until it finishes (other work on io, such as a
// Dovecot connection's reader, keeps running but does not keep us here).
template <class T>
T await(asio::io_context& io, asio::awaitable<T> op, std::chrono::seconds limit = 60s) {
    std::optional<T> result;
    std::exception_ptr error;
    bool done = false;
    asio::co_spawn(io, std::move(op), [&](std::exception_ptr e, T value) {
        error = e;
        if (!e) result = std::move(value);
        done = true;
    });
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done && std::chrono::steady_clock::now() < deadline) {
        if (io.stopped()) io.restart();
        io.run_one_for(50ms);
    }
    if (!done) throw std::runtime_error("coroutine did not finish in time");
    if (error) std::rethrow_exception(error);
    return std::move(*result);
}

// Run io until pred holds or the limit passes.
template <class P>
bool run_until(asio::io_context& io, P pred, std::chrono::seconds limit = 10s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred() && std::chrono::steady_clock::now() < deadline) {
        if (io.stopped()) io.restart();
        io.run_one_for(20ms);
    }
    return pred();
}

// A whole exchange: start, then one response per challenge from the script.
struct Transcript {
    std::vector<std::string> challenges;
    Step last;
};

asio::awaitable<Transcript> exchange(std::shared_ptr<mta::sasl::Backend> backend, mta::sasl::Peer peer,
                                     std::string mechanism, std::optional<std::string> initial,
                                     std::vector<std::string> responses) {
    auto auth = backend->begin(peer);
    Transcript t;
    t.last = co_await auth->start(std::move(mechanism), std::move(initial));
    std::size_t i = 0;
    while (t.last.status == Step::Status::challenge) {
        t.challenges.push_back(t.last.challenge);
        if (i == responses.size()) co_return t;
        std::string response = responses[i++];
        t.last = co_await auth->next(std::move(response));
    }
    co_return t;
}

// Dovecot slows down further attempts from a client address after a failed
// one (its auth penalty, per rip): tests that fail on purpose use their own
// client addresses.
mta::sasl::Peer local_peer(bool tls = false, std::string client = "127.0.0.1") {
    return mta::sasl::Peer{std::move(client), "40000", "127.0.0.1", "25", tls};
}

std::string plain(const std::string& user, const std::string& password) {
    return std::string(1, '\0') + user + std::string(1, '\0') + password;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

// ---------------------------------------------------------------- base64

TEST(MtaSaslBase64, RoundTripsEveryLengthAndByte) {
    std::mt19937 random(42);
    for (std::size_t length = 0; length < 300; ++length) {
        std::string raw(length, '\0');
        for (auto& c : raw) c = static_cast<char>(random() & 0xff);
        auto text = mta::sasl::base64_encode(raw);
        EXPECT_EQ(text.size() % 4, 0u);
        auto back = mta::sasl::base64_decode(text);
        ASSERT_TRUE(back) << text;
        EXPECT_EQ(*back, raw);
    }
    EXPECT_EQ(mta::sasl::base64_encode(plain("tim", "tanstaaftanstaaf")), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    EXPECT_EQ(mta::sasl::base64_decode(""), std::string());
    EXPECT_EQ(mta::sasl::base64_decode("VXNlcm5hbWU6"), std::string("Username:"));
}

TEST(MtaSaslBase64, RejectsWhatRfc4648Forbids) {
    for (std::string bad : {"=", "A", "AB", "ABC", "AB=", "A===", "====", "AB=C", "QQ==QUJD", "QUJD\r\n", "QUJ D",
                            " QUJD", "QU\tJD", "QR==", "QUJ=" /* non-zero pad bits */, "QUJ*", "QUJD=", "Q\x80JD"})
        EXPECT_FALSE(mta::sasl::base64_decode(bad)) << "accepted \"" << bad << "\"";
    EXPECT_EQ(mta::sasl::base64_decode("QQ=="), std::string("A"));
    EXPECT_EQ(mta::sasl::base64_decode("QUJ="), std::nullopt);
    EXPECT_EQ(mta::sasl::base64_decode("QUE="), std::string("AA"));
}

TEST(MtaSaslOptions, PostfixWordsAndUnknownOnes) {
    auto o = mta::sasl::parse_security_options("noanonymous, noplaintext NOACTIVE,nodictionary");
    EXPECT_TRUE(o.noanonymous && o.noplaintext && o.noactive && o.nodictionary);
    EXPECT_FALSE(o.mutual_auth || o.forward_secrecy);
    auto p = mta::sasl::parse_security_options("mutual_auth forward_secrecy");
    EXPECT_TRUE(p.mutual_auth && p.forward_secrecy);
    EXPECT_THROW(mta::sasl::parse_security_options("noanonymous, nosuchthing"), std::runtime_error);
    mta::sasl::Settings settings;
    settings.type = "ldap";
    asio::io_context io;
    EXPECT_THROW(mta::sasl::make_backend(settings, io.get_executor()), std::runtime_error);
}

// ------------------------------------------------- Dovecot protocol codec

const std::string handshake_text =
    "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\nMECH\tCRAM-MD5\tdictionary\tactive\n"
    "MECH\tSECRET\tprivate\nSPID\t30772\nCUID\t1\nCOOKIE\tf24ca0b5a51e84543690f6e5e1476efc\nDONE\n"
    "OK\t1\tuser=bob\nCONT\t2\tVXNlcm5hbWU6\nCONT\t3\t\nFAIL\t4\tuser=bob\treason=bad\001tpass\ttemp\n"
    "NEWTHING\tx\n";

std::vector<mta::sasl::dovecot::Reply> parse_all(const std::vector<std::string>& chunks) {
    mta::sasl::dovecot::Parser parser;
    std::vector<mta::sasl::dovecot::Reply> replies;
    for (const auto& c : chunks) {
        EXPECT_TRUE(parser.feed(c)) << parser.error();
        while (auto r = parser.next()) replies.push_back(std::move(*r));
    }
    return replies;
}

TEST(MtaSaslDovecotProtocol, ParsesTheHandshakeAndRepliesSplitAnywhere) {
    using Kind = mta::sasl::dovecot::Reply::Kind;
    for (std::size_t cut = 0; cut <= handshake_text.size(); ++cut) {
        auto replies = parse_all({handshake_text.substr(0, cut), handshake_text.substr(cut)});
        ASSERT_EQ(replies.size(), 14u) << "cut at " << cut;
        EXPECT_EQ(replies[0].kind, Kind::version);
        EXPECT_EQ(replies[0].major, 1u);
        EXPECT_EQ(replies[0].minor, 2u);
        EXPECT_EQ(replies[1].mechanism, "PLAIN");
        EXPECT_EQ(replies[1].properties, unsigned(mta::sasl::dovecot::plaintext));
        EXPECT_EQ(replies[3].properties, unsigned(mta::sasl::dovecot::dictionary | mta::sasl::dovecot::active));
        EXPECT_TRUE(replies[4].properties & mta::sasl::dovecot::private_mech);
        EXPECT_EQ(replies[8].kind, Kind::done);
        EXPECT_EQ(replies[9].kind, Kind::ok);
        EXPECT_EQ(replies[9].user, "bob");
        EXPECT_EQ(replies[10].kind, Kind::cont);
        EXPECT_EQ(replies[10].data, "VXNlcm5hbWU6");
        EXPECT_EQ(replies[11].data, "");
        EXPECT_EQ(replies[12].kind, Kind::fail);
        EXPECT_EQ(replies[12].id, 4u);
        EXPECT_EQ(replies[12].reason, "bad\tpass");
        EXPECT_TRUE(replies[12].temporary);
        EXPECT_EQ(replies[13].kind, Kind::other);
    }
    // Byte by byte.
    std::vector<std::string> bytes;
    for (char c : handshake_text) bytes.emplace_back(1, c);
    EXPECT_EQ(parse_all(bytes).size(), 14u);
}

TEST(MtaSaslDovecotProtocol, BreaksOnOverlongOrMalformedLines) {
    for (std::string bad : std::vector<std::string>{"OK\tx\n", "CONT\t5\n", "FAIL\n", "VERSION\t1\n", "MECH\n", "OK\t-1\n",
                            std::string("OK\t1\tuser=a\0b\n", 14)}) {
        mta::sasl::dovecot::Parser parser;
        EXPECT_FALSE(parser.feed(bad)) << bad;
        EXPECT_TRUE(parser.broken());
        EXPECT_FALSE(parser.feed("DONE\n"));
    }
    mta::sasl::dovecot::Parser parser;
    EXPECT_TRUE(parser.feed(std::string(mta::sasl::dovecot::max_line, 'x')));
    EXPECT_FALSE(parser.feed("y"));
    EXPECT_NE(parser.error().find("longer"), std::string::npos);
}

TEST(MtaSaslDovecotProtocol, FormatsRequestsWithEscapedValues) {
    using mta::sasl::dovecot::tab_escape;
    using mta::sasl::dovecot::tab_unescape;
    std::string nasty = "a\tb\nc\rd\001e";
    EXPECT_EQ(tab_escape(nasty).find_first_of("\t\r\n"), std::string::npos);
    EXPECT_EQ(tab_unescape(tab_escape(nasty)), nasty);
    mta::sasl::dovecot::AuthRequest r;
    r.id = 7;
    r.mechanism = "PLAIN";
    r.service = "smtp";
    r.local_ip = "127.0.0.1";
    r.remote_ip = "192.0.2.1";
    r.remote_port = "4000";
    r.secured = true;
    r.initial_response = "";
    EXPECT_EQ(mta::sasl::dovecot::format_auth(r),
              "AUTH\t7\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=192.0.2.1\trport=4000\tsecured\tresp=\n");
    EXPECT_EQ(mta::sasl::dovecot::format_cont(7, "Ym9i"), "CONT\t7\tYm9i\n");
    EXPECT_EQ(mta::sasl::dovecot::handshake(99), "VERSION\t1\t2\nCPID\t99\n");
}

// ------------------------------------------------ Cyrus SASL + saslauthd

// One per process: libsasl2 reads smtpd.conf once.
struct CyrusWorld {
    TempDir dir;
    std::string user = "mtasasl" + std::to_string(::getpid());
    std::string password = "Corr3ct horse:battery";
    std::string setup_error;

    CyrusWorld() {
        ::chmod(dir.path().c_str(), 0755);
        dir.write("smtpd.conf", "pwcheck_method: saslauthd\nsaslauthd_path: " + dir.file("mux") +
                                    "\nmech_list: PLAIN LOGIN\n");
        auto add = testsupport::run({"/usr/sbin/useradd", "-M", "-N", "-d", "/nonexistent", "-s",
                                     "/usr/sbin/nologin", user});
        if (add.exit_code != 0) {
            setup_error = "useradd " + user + " failed: " + add.output;
            return;
        }
        auto pw = testsupport::run({"/usr/sbin/chpasswd"}, user + ":" + password + "\n");
        if (pw.exit_code != 0) setup_error = "chpasswd failed: " + pw.output;
    }
    ~CyrusWorld() { testsupport::run({"/usr/sbin/userdel", user}); }
};

CyrusWorld& cyrus_world() {
    static CyrusWorld world;
    return world;
}

class MtaSaslCyrus : public ::testing::Test {
protected:
    void SetUp() override {
        auto& world = cyrus_world();
        ASSERT_TRUE(world.setup_error.empty()) << world.setup_error;
        start_saslauthd();
        settings_.type = "cyrus";
        settings_.path = "smtpd";
        settings_.cyrus_config_path = world.dir.path();
        settings_.timeout = 10s;
    }
    void TearDown() override { saslauthd_.stop(); }

    void start_saslauthd() {
        auto& world = cyrus_world();
        ::unlink(world.dir.file("mux").c_str());
        saslauthd_ = Process({"/usr/sbin/saslauthd", "-a", "shadow", "-m", world.dir.path(), "-n", "1", "-d"},
                             world.dir.file("saslauthd.log"));
        try {
            testsupport::wait_for_unix(world.dir.file("mux"));
        } catch (const std::exception& e) {
            FAIL() << "saslauthd did not start: " << e.what() << "\n"
                   << testsupport::read_file(world.dir.file("saslauthd.log"));
        }
    }

    std::shared_ptr<mta::sasl::Backend> backend() { return mta::sasl::make_backend(settings_, io_.get_executor()); }

    asio::io_context io_;
    mta::sasl::Settings settings_;
    Process saslauthd_;
};

TEST_F(MtaSaslCyrus, AdvertisesTheMechListOfSmtpdConfFilteredByTheOptions) {
    EXPECT_EQ(sorted(backend()->mechanisms(false)), (std::vector<std::string>{"LOGIN", "PLAIN"}));
    settings_.security_options = "noanonymous, noplaintext";
    settings_.tls_security_options = "noanonymous";
    auto b = backend();
    EXPECT_TRUE(b->mechanisms(false).empty());
    EXPECT_EQ(sorted(b->mechanisms(true)), (std::vector<std::string>{"LOGIN", "PLAIN"}));
}

TEST_F(MtaSaslCyrus, PlainWithInitialResponseSucceeds) {
    auto& w = cyrus_world();
    auto t = await(io_, exchange(backend(), local_peer(), "PLAIN", plain(w.user, w.password), {}));
    ASSERT_EQ(t.last.status, Step::Status::success) << t.last.reason;
    EXPECT_EQ(t.last.username, w.user);
    EXPECT_TRUE(t.challenges.empty());
}

TEST_F(MtaSaslCyrus, PlainWithoutInitialResponseGetsAnEmptyChallenge) {
    auto& w = cyrus_world();
    auto t = await(io_, exchange(backend(), local_peer(), "PLAIN", std::nullopt, {plain(w.user, w.password)}));
    ASSERT_EQ(t.last.status, Step::Status::success) << t.last.reason;
    EXPECT_EQ(t.challenges, std::vector<std::string>{""});
}

TEST_F(MtaSaslCyrus, LoginAsksForUsernameThenPassword) {
    auto& w = cyrus_world();
    auto t = await(io_, exchange(backend(), local_peer(), "login", std::nullopt, {w.user, w.password}));
    ASSERT_EQ(t.last.status, Step::Status::success) << t.last.reason;
    EXPECT_EQ(t.last.username, w.user);
    EXPECT_EQ(t.challenges, (std::vector<std::string>{"Username:", "Password:"}));
}

TEST_F(MtaSaslCyrus, WrongPasswordFailsWithoutSayingThePassword) {
    auto& w = cyrus_world();
    auto t = await(io_, exchange(backend(), local_peer(), "PLAIN", plain(w.user, "Wr0ng-pass"), {}));
    EXPECT_EQ(t.last.status, Step::Status::failure);
    EXPECT_FALSE(t.last.reason.empty());
    EXPECT_EQ(t.last.reason.find("Wr0ng"), std::string::npos);
    auto u = await(io_, exchange(backend(), local_peer(), "LOGIN", std::nullopt, {w.user, "Wr0ng-pass"}));
    EXPECT_EQ(u.last.status, Step::Status::failure);
    auto nobody = await(io_, exchange(backend(), local_peer(), "PLAIN", plain("nosuchuser", "x"), {}));
    EXPECT_EQ(nobody.last.status, Step::Status::failure);
}

TEST_F(MtaSaslCyrus, UnknownOrHiddenMechanismFails) {
    auto& w = cyrus_world();
    auto t = await(io_, exchange(backend(), local_peer(), "X-NOSUCH", std::nullopt, {}));
    EXPECT_EQ(t.last.status, Step::Status::failure);
    EXPECT_FALSE(t.last.reason.empty());
    // Not in mech_list although libsasl2 has the plugin.
    auto cram = await(io_, exchange(backend(), local_peer(), "CRAM-MD5", std::nullopt, {}));
    EXPECT_EQ(cram.last.status, Step::Status::failure);
    // noplaintext without TLS: PLAIN is refused by the library too.
    settings_.security_options = "noanonymous, noplaintext";
    auto p = await(io_, exchange(backend(), local_peer(), "PLAIN", plain(w.user, w.password), {}));
    EXPECT_EQ(p.last.status, Step::Status::failure);
    settings_.tls_security_options = "noanonymous";
    auto tls = await(io_, exchange(backend(), local_peer(true), "PLAIN", plain(w.user, w.password), {}));
    EXPECT_EQ(tls.last.status, Step::Status::success) << tls.last.reason;
}

TEST_F(MtaSaslCyrus, SaslauthdStoppedIsATemporaryFailureWithAReason) {
    auto& w = cyrus_world();
    saslauthd_.stop();
    auto t = await(io_, exchange(backend(), local_peer(), "PLAIN", plain(w.user, w.password), {}));
    EXPECT_TRUE(t.last.status == Step::Status::temporary || t.last.status == Step::Status::failure);
    EXPECT_NE(t.last.status, Step::Status::success);
    EXPECT_FALSE(t.last.reason.empty());
    // And back: the next exchange reaches the new saslauthd.
    start_saslauthd();
    auto again = await(io_, exchange(backend(), local_peer(), "PLAIN", plain(w.user, w.password), {}));
    EXPECT_EQ(again.last.status, Step::Status::success) << again.last.reason;
}

TEST_F(MtaSaslCyrus, TwentyConcurrentAuthenticationsComplete) {
    auto& w = cyrus_world();
    auto b = backend();
    std::vector<std::optional<Transcript>> results(20);
    for (int i = 0; i < 20; ++i) {
        bool good = i % 4 != 3;
        auto op = i % 2 ? exchange(b, local_peer(), "LOGIN", std::nullopt, {w.user, good ? w.password : "nope"})
                        : exchange(b, local_peer(), "PLAIN", plain(w.user, good ? w.password : "nope"), {});
        asio::co_spawn(io_, std::move(op), [&results, i](std::exception_ptr, Transcript t) { results[i] = t; });
    }
    ASSERT_TRUE(run_until(io_, [&] {
        for (auto& r : results)
            if (!r) return false;
        return true;
    }, 60s));
    for (int i = 0; i < 20; ++i) {
        auto expected = i % 4 != 3 ? Step::Status::success : Step::Status::failure;
        EXPECT_EQ(results[i]->last.status, expected) << i << ": " << results[i]->last.reason;
    }
}

// A saslauthd that accepts and never answers: the caller gets a temporary
// failure after the timeout, and the I/O thread keeps serving meanwhile.
TEST_F(MtaSaslCyrus, StuckSaslauthdTimesOutWithoutStallingTheIoThread) {
    auto& w = cyrus_world();
    saslauthd_.stop();
    auto mux = w.dir.file("mux");
    ::unlink(mux.c_str());
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", mux.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    ASSERT_EQ(::listen(fd, 16), 0);
    settings_.timeout = 1s;
    auto b = backend();
    int ticks = 0;
    asio::steady_timer tick(io_);
    std::function<void()> arm = [&] {
        tick.expires_after(50ms);
        tick.async_wait([&](boost::system::error_code ec) {
            if (ec) return;
            ++ticks;
            arm();
        });
    };
    arm();
    auto begun = std::chrono::steady_clock::now();
    auto t = await(io_, exchange(b, local_peer(), "PLAIN", plain(w.user, w.password), {}));
    auto took = std::chrono::steady_clock::now() - begun;
    tick.cancel();
    EXPECT_EQ(t.last.status, Step::Status::temporary);
    EXPECT_NE(t.last.reason.find("no answer"), std::string::npos) << t.last.reason;
    EXPECT_LT(took, 3s);
    EXPECT_GE(ticks, 10);  // the timer kept firing while libsasl2 was blocked
    // Closing the listener resets the queued connection, freeing the worker.
    ::close(fd);
    ::unlink(mux.c_str());
    start_saslauthd();
    auto again = await(io_, exchange(b, local_peer(), "PLAIN", plain(w.user, w.password), {}));
    EXPECT_EQ(again.last.status, Step::Status::success) << again.last.reason;
}

TEST_F(MtaSaslCyrus, ConfigProblemsAreNamed) {
    settings_.path = "../etc/passwd";
    EXPECT_THROW(backend(), std::runtime_error);
    TempDir empty;
    settings_.path = "smtpd";
    settings_.cyrus_config_path = empty.path();
    try {
        backend();
        ADD_FAILURE() << "no error for a config path without smtpd.conf";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("cyrus_sasl_config_path"), std::string::npos) << e.what();
    }
}

// ------------------------------------------------------- Dovecot auth

class MtaSaslDovecot : public ::testing::Test {
protected:
    void SetUp() override {
        ::chmod(dir_.path().c_str(), 0755);  // the auth process runs as dovecot
        dir_.write("passwd", "bob:{PLAIN}hunter2::::::\nalice:{PLAIN}s3cret pass::::::\n");
        dir_.write("dovecot.conf",
                   "base_dir = " + dir_.file("run") + "\nstate_dir = " + dir_.file("state") +
                       "\nprotocols =\nlog_path = " + dir_.file("dovecot.log") +
                       "\nssl = no\nauth_mechanisms = plain login\ndisable_plaintext_auth = no\n"
                       "auth_failure_delay = 0\n"
                       "passdb {\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u " +
                       dir_.file("passwd") +
                       "\n}\nuserdb {\n  driver = static\n  args = uid=nobody gid=nogroup home=/nonexistent\n}\n"
                       "service auth {\n  unix_listener " +
                       dir_.file("auth") + " {\n    mode = 0666\n  }\n}\n");
        start_dovecot();
        settings_.type = "dovecot";
        settings_.path = dir_.file("auth");
        settings_.timeout = 5s;
    }
    void TearDown() override { stop_dovecot(); }

    void start_dovecot() {
        ::unlink(dir_.file("auth").c_str());
        dovecot_ = Process({"/usr/sbin/dovecot", "-F", "-c", dir_.file("dovecot.conf")}, dir_.file("dovecot.out"));
        try {
            testsupport::wait_for_unix(dir_.file("auth"));
        } catch (const std::exception& e) {
            FAIL() << "dovecot did not start: " << e.what() << "\n"
                   << testsupport::read_file(dir_.file("dovecot.out"))
                   << testsupport::read_file(dir_.file("dovecot.log"));
        }
    }
    void stop_dovecot() {
        if (dovecot_.running()) {
            ::kill(-dovecot_.pid(), SIGKILL);  // master and its children (own process group)
            dovecot_.wait(10s);
        }
    }

    std::shared_ptr<mta::sasl::Backend> backend() { return mta::sasl::make_backend(settings_, io_.get_executor()); }

    TempDir dir_;
    asio::io_context io_;
    mta::sasl::Settings settings_;
    Process dovecot_;
};

TEST_F(MtaSaslDovecot, AdvertisesTheHandshakeMechanismsFilteredByTheOptions) {
    settings_.tls_security_options = "noanonymous";
    settings_.security_options = "noanonymous, noplaintext";
    auto b = backend();
    ASSERT_TRUE(run_until(io_, [&] { return !b->mechanisms(true).empty(); }))
        << testsupport::read_file(dir_.file("dovecot.log"));
    EXPECT_EQ(sorted(b->mechanisms(true)), (std::vector<std::string>{"LOGIN", "PLAIN"}));
    EXPECT_TRUE(b->mechanisms(false).empty());
    // Hidden mechanisms are refused, not only unadvertised.
    auto t = await(io_, exchange(b, local_peer(false), "PLAIN", plain("bob", "hunter2"), {}));
    EXPECT_EQ(t.last.status, Step::Status::failure);
    auto tls = await(io_, exchange(b, local_peer(true), "PLAIN", plain("bob", "hunter2"), {}));
    EXPECT_EQ(tls.last.status, Step::Status::success) << tls.last.reason;
    settings_.tls_security_options = "mutual_auth";
    EXPECT_TRUE(backend()->mechanisms(true).empty());
}

TEST_F(MtaSaslDovecot, PlainSucceedsWithAndWithoutInitialResponse) {
    auto b = backend();
    auto t = await(io_, exchange(b, local_peer(), "PLAIN", plain("alice", "s3cret pass"), {}));
    ASSERT_EQ(t.last.status, Step::Status::success) << t.last.reason;
    EXPECT_EQ(t.last.username, "alice");
    auto u = await(io_, exchange(b, local_peer(), "plain", std::nullopt, {plain("bob", "hunter2")}));
    ASSERT_EQ(u.last.status, Step::Status::success) << u.last.reason;
    EXPECT_EQ(u.last.username, "bob");
    EXPECT_EQ(u.challenges, std::vector<std::string>{""});
}

TEST_F(MtaSaslDovecot, LoginAsksForUsernameThenPassword) {
    auto t = await(io_, exchange(backend(), local_peer(), "LOGIN", std::nullopt, {"bob", "hunter2"}));
    ASSERT_EQ(t.last.status, Step::Status::success) << t.last.reason;
    EXPECT_EQ(t.last.username, "bob");
    EXPECT_EQ(t.challenges, (std::vector<std::string>{"Username:", "Password:"}));
}

TEST_F(MtaSaslDovecot, WrongPasswordAndUnknownMechanismFail) {
    auto b = backend();
    auto p = await(io_, exchange(b, local_peer(false, "192.0.2.1"), "PLAIN", plain("bob", "Wr0ng-pass"), {}));
    EXPECT_EQ(p.last.status, Step::Status::failure);
    EXPECT_EQ(p.last.reason.find("Wr0ng"), std::string::npos) << p.last.reason;
    auto l = await(io_, exchange(b, local_peer(false, "192.0.2.2"), "LOGIN", std::nullopt, {"bob", "Wr0ng-pass"}));
    EXPECT_EQ(l.last.status, Step::Status::failure);
    auto m = await(io_, exchange(b, local_peer(false, "192.0.2.3"), "CRAM-MD5", std::nullopt, {}));
    EXPECT_EQ(m.last.status, Step::Status::failure);
    auto empty = await(io_, exchange(b, local_peer(false, "192.0.2.4"), "PLAIN", std::string(), {}));
    EXPECT_EQ(empty.last.status, Step::Status::failure);
    // The connection is still good after all that.
    auto ok = await(io_, exchange(b, local_peer(), "PLAIN", plain("bob", "hunter2"), {}));
    EXPECT_EQ(ok.last.status, Step::Status::success) << ok.last.reason;
    EXPECT_EQ(testsupport::read_file(dir_.file("dovecot.log")).find("Wr0ng"), std::string::npos);
}

TEST_F(MtaSaslDovecot, TwentyConcurrentExchangesComplete) {
    auto b = backend();
    std::vector<std::optional<Transcript>> results(20);
    for (int i = 0; i < 20; ++i) {
        bool good = i % 5 != 4;
        auto peer = local_peer(false, "192.0.2." + std::to_string(10 + i));
        auto op = i % 2 ? exchange(b, peer, "LOGIN", std::nullopt, {"bob", good ? "hunter2" : "no"})
                        : exchange(b, peer, "PLAIN", plain("alice", good ? "s3cret pass" : "no"), {});
        asio::co_spawn(io_, std::move(op), [&results, i](std::exception_ptr, Transcript t) { results[i] = t; });
    }
    ASSERT_TRUE(run_until(io_, [&] {
        for (auto& r : results)
            if (!r) return false;
        return true;
    }, 30s));
    for (int i = 0; i < 20; ++i)
        EXPECT_EQ(results[i]->last.status, i % 5 != 4 ? Step::Status::success : Step::Status::failure)
            << i << ": " << results[i]->last.reason;
}

TEST_F(MtaSaslDovecot, KilledMidSessionIsTemporaryWithinTheTimeoutThenReconnects) {
    settings_.timeout = 3s;
    auto b = backend();
    auto auth = b->begin(local_peer());
    auto first = await(io_, auth->start("LOGIN", std::nullopt));
    ASSERT_EQ(first.status, Step::Status::challenge) << first.reason;
    stop_dovecot();
    auto begun = std::chrono::steady_clock::now();
    auto second = await(io_, auth->next("bob"));
    EXPECT_EQ(second.status, Step::Status::temporary) << second.reason;
    EXPECT_FALSE(second.reason.empty());
    EXPECT_LE(std::chrono::steady_clock::now() - begun, 3500ms);
    // Down: a new exchange is a temporary failure too.
    auto down = await(io_, exchange(b, local_peer(), "PLAIN", plain("bob", "hunter2"), {}));
    EXPECT_EQ(down.last.status, Step::Status::temporary);
    EXPECT_NE(down.last.reason.find("connect"), std::string::npos) << down.last.reason;
    // Back: the same backend connects again.
    start_dovecot();
    auto back = await(io_, exchange(b, local_peer(), "PLAIN", plain("bob", "hunter2"), {}));
    EXPECT_EQ(back.last.status, Step::Status::success) << back.last.reason;
}

// A socket that accepts (in its backlog) and never says a word: the
// handshake is bounded by the timeout too.
TEST_F(MtaSaslDovecot, SilentServerTimesOutInTheHandshake) {
    auto path = dir_.file("silent");
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    ASSERT_EQ(::listen(fd, 16), 0);
    settings_.path = path;
    settings_.timeout = 1s;
    auto b = backend();
    auto begun = std::chrono::steady_clock::now();
    auto t = await(io_, exchange(b, local_peer(), "PLAIN", plain("bob", "hunter2"), {}));
    EXPECT_EQ(t.last.status, Step::Status::temporary);
    EXPECT_NE(t.last.reason.find("timed out"), std::string::npos) << t.last.reason;
    EXPECT_LT(std::chrono::steady_clock::now() - begun, 2500ms);
    EXPECT_TRUE(b->mechanisms(false).empty());
    ::close(fd);
}

TEST_F(MtaSaslDovecot, SocketPathProblemsAreNamed) {
    settings_.path = "";
    EXPECT_THROW(backend(), std::runtime_error);
    settings_.path = "inet:127.0.0.1:12345";
    EXPECT_THROW(backend(), std::runtime_error);
    settings_.path = "/" + std::string(200, 'x');
    EXPECT_THROW(backend(), std::runtime_error);
}

}  // namespace
