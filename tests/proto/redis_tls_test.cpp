// The Redis client over TLS against a real TLS-only redis-server (no plain
// port) with an ACL user and the default user off; the CA, the server's
// certificate (for localhost and 127.0.0.1) and a second, unrelated CA are
// made by the test with the openssl command. A wrong CA and a wrong password
// fail with errors naming the cause, counted apart; no error text holds the
// password.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <functional>
#include <optional>

#include "redis/client.h"
#include "support/process.h"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using proto::redis::Client;
using proto::redis::Failure;
using proto::redis::Result;
using proto::redis::Url;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testsupport::Process;

void run_tool(const std::vector<std::string>& argv, const testsupport::TempDir& dir) {
    Process tool(argv, dir.file("openssl.log"));
    int status = tool.wait(20s);
    if (status != 0) throw std::runtime_error("openssl failed: " + testsupport::read_file(dir.file("openssl.log")));
}

// A CA (key, certificate) named `name` in dir.
void make_ca(const testsupport::TempDir& dir, const std::string& name) {
    run_tool({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
              "-keyout", dir.file(name + ".key"), "-out", dir.file(name + ".crt"), "-days", "2", "-subj",
              "/CN=" + name},
             dir);
}

class RedisTlsTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new testsupport::TempDir();
        const auto& d = *dir_;
        make_ca(d, "test-ca");
        make_ca(d, "other-ca");
        run_tool({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", d.file("server.key"), "-out", d.file("server.csr"), "-subj", "/CN=localhost"},
                 d);
        d.write("ext.cnf", "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
        run_tool({"openssl", "x509", "-req", "-in", d.file("server.csr"), "-CA", d.file("test-ca.crt"), "-CAkey",
                  d.file("test-ca.key"), "-CAcreateserial", "-out", d.file("server.crt"), "-days", "2",
                  "-extfile", d.file("ext.cnf")},
                 d);
        port_ = testsupport::free_port();
        d.write("redis.conf", "port 0\ntls-port " + std::to_string(port_) + "\nbind 127.0.0.1\n" +
                                  "tls-cert-file " + d.file("server.crt") + "\ntls-key-file " +
                                  d.file("server.key") + "\ntls-ca-cert-file " + d.file("test-ca.crt") +
                                  "\ntls-auth-clients no\nsave \"\"\nappendonly no\ndir " + d.path() +
                                  "\nuser default off\nuser alice on >" + password + " ~* &* +@all\n");
        server_ = new Process({"redis-server", d.file("redis.conf")}, d.file("redis.log"));
        testsupport::wait_for_tcp("127.0.0.1", port_, 10s);
    }
    static void TearDownTestSuite() {
        server_->stop();
        delete server_;
        delete dir_;
    }

    Url url(const std::string& user_password, const std::string& ca, const std::string& host = "127.0.0.1") {
        Url u = Url::parse("rediss://" + user_password + "@" + host + ":" + std::to_string(port_));
        u.tls.ca_file = dir_->file(ca + ".crt");
        return u;
    }

    Result call(Client& client, std::vector<std::string> args) {
        std::optional<Result> out;
        asio::co_spawn(io_, client.command(std::move(args), 2000ms),
                       [&](std::exception_ptr, Result r) { out = std::move(r); });
        auto end = steady_clock::now() + 5s;
        while (!out && steady_clock::now() < end) io_.run_one_for(20ms);
        if (!out) return Result{Failure::timeout, "test: no completion", {}};
        return std::move(*out);
    }

    static constexpr const char* password = "tls-pass-Zq81";
    static testsupport::TempDir* dir_;
    static Process* server_;
    static int port_;
    asio::io_context io_;
};

testsupport::TempDir* RedisTlsTest::dir_ = nullptr;
Process* RedisTlsTest::server_ = nullptr;
int RedisTlsTest::port_ = 0;

TEST_F(RedisTlsTest, AclUserOverVerifiedTls) {
    for (const char* host : {"127.0.0.1", "localhost"}) {
        Client client(io_.get_executor(), url(std::string("alice:") + password, "test-ca", host));
        client.start();
        Result set = call(client, {"SET", "tls", "yes"});
        ASSERT_TRUE(set.ok()) << host << ": " << set.error << set.reply.str;
        EXPECT_EQ(call(client, {"GET", "tls"}).reply.str, "yes");
        EXPECT_EQ(call(client, {"ACL", "WHOAMI"}).reply.str, "alice");
        EXPECT_EQ(client.stats().tls_failures, 0u);
        client.stop();
    }
    // The blocking helper (operator commands) speaks TLS too.
    auto reply = proto::redis::command_sync(url(std::string("alice:") + password, "test-ca"), {"GET", "tls"});
    EXPECT_EQ(reply.str, "yes");
}

TEST_F(RedisTlsTest, WrongCaIsReportedAsCertificateFailure) {
    Client client(io_.get_executor(), url(std::string("alice:") + password, "other-ca"));
    client.start();
    Result r = call(client, {"PING"});
    EXPECT_EQ(r.failure, Failure::disconnected);
    EXPECT_NE(r.error.find("TLS handshake failed"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("certificate"), std::string::npos) << r.error;
    EXPECT_EQ(r.error.find(password), std::string::npos) << r.error;
    EXPECT_GE(client.stats().tls_failures, 1u);
    EXPECT_EQ(client.stats().auth_failures, 0u);
    client.stop();
    // A certificate for another name fails as well.
    Client wrong_name(io_.get_executor(), [&] {
        Url u = url(std::string("alice:") + password, "test-ca");
        u.tls.server_name = "redis.example.org";
        return u;
    }());
    wrong_name.start();
    Result named = call(wrong_name, {"PING"});
    EXPECT_NE(named.error.find("TLS handshake failed"), std::string::npos) << named.error;
    wrong_name.stop();
}

TEST_F(RedisTlsTest, WrongPasswordIsReportedAsAuthenticationFailure) {
    const std::string wrong = "not-the-password-Xy7";
    Client client(io_.get_executor(), url("alice:" + wrong, "test-ca"));
    client.start();
    Result r = call(client, {"PING"});
    EXPECT_EQ(r.failure, Failure::disconnected);
    EXPECT_NE(r.error.find("AUTH failed"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("WRONGPASS"), std::string::npos) << r.error;
    EXPECT_EQ(r.error.find(wrong), std::string::npos) << r.error;
    EXPECT_GE(client.stats().auth_failures, 1u);
    EXPECT_EQ(client.stats().tls_failures, 0u);
    client.stop();
}

TEST_F(RedisTlsTest, UnreadableCaFileIsASetupError) {
    Url u = url(std::string("alice:") + password, "missing-ca");
    Client client(io_.get_executor(), u);
    client.start();
    Result r = call(client, {"PING"});
    EXPECT_NE(r.error.find("cannot load CA file"), std::string::npos) << r.error;
    client.stop();
}

}  // namespace
