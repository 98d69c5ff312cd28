// Tests of the Redis client: URL parsing and script hashing (no server), then
// the client against a real redis-server per test: commands and reply types,
// FIFO matching under 10k concurrent pipelined calls, reconnection after a
// restart, deadlines while the server is SIGSTOPped, NOSCRIPT reload,
// unix sockets, AUTH (password and ACL user) and SELECT, fail-fast while
// backing off, the pending-call bound, stop(), command_sync, and a
// throughput figure for pipelined EVALSHA.
//
// No sleeps as synchronisation: the io_context is driven until a condition
// holds or a deadline passes; reconnection is awaited by polling calls.

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <functional>
#include <iostream>
#include <optional>

#include "redis/client.h"
#include "support/process.h"
#include "support/redis_server.h"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using proto::redis::Client;
using proto::redis::ClientOptions;
using proto::redis::Failure;
using proto::redis::Reply;
using proto::redis::Result;
using proto::redis::Script;
using proto::redis::Url;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// ---- URL parsing -----------------------------------------------------------------

TEST(RedisUrl, TcpDefaults) {
    Url url = Url::parse("redis://localhost");
    EXPECT_FALSE(url.unix_socket);
    EXPECT_EQ(url.host, "localhost");
    EXPECT_EQ(url.port, 6379);
    EXPECT_EQ(url.db, 0);
    EXPECT_TRUE(url.username.empty());
    EXPECT_TRUE(url.password.empty());
}

TEST(RedisUrl, TcpPortAndDb) {
    Url url = Url::parse("redis://10.0.0.7:6380/2");
    EXPECT_EQ(url.host, "10.0.0.7");
    EXPECT_EQ(url.port, 6380);
    EXPECT_EQ(url.db, 2);
    EXPECT_EQ(Url::parse("redis://h:1/").db, 0);
}

TEST(RedisUrl, Credentials) {
    Url password_only = Url::parse("redis://:s3cret@h:7000/1");
    EXPECT_EQ(password_only.username, "");
    EXPECT_EQ(password_only.password, "s3cret");
    EXPECT_EQ(password_only.host, "h");
    EXPECT_EQ(password_only.port, 7000);
    EXPECT_EQ(password_only.db, 1);

    Url with_user = Url::parse("redis://alice:pw@h");
    EXPECT_EQ(with_user.username, "alice");
    EXPECT_EQ(with_user.password, "pw");

    // Reserved characters in a password are percent-encoded.
    Url encoded = Url::parse("redis://:p%40ss%3Aw%2F@h");
    EXPECT_EQ(encoded.password, "p@ss:w/");
    EXPECT_EQ(encoded.host, "h");
}

TEST(RedisUrl, Ipv6) {
    Url url = Url::parse("redis://[::1]:7001/4");
    EXPECT_EQ(url.host, "::1");
    EXPECT_EQ(url.port, 7001);
    EXPECT_EQ(url.db, 4);
    EXPECT_EQ(Url::parse("redis://[::1]").port, 6379);
}

TEST(RedisUrl, UnixForms) {
    Url plain = Url::parse("unix:/run/redis/redis.sock");
    EXPECT_TRUE(plain.unix_socket);
    EXPECT_EQ(plain.path, "/run/redis/redis.sock");
    EXPECT_EQ(plain.db, 0);

    Url query = Url::parse("unix:/run/redis.sock?db=3&password=x%26y");
    EXPECT_EQ(query.path, "/run/redis.sock");
    EXPECT_EQ(query.db, 3);
    EXPECT_EQ(query.password, "x&y");

    Url scheme = Url::parse("redis+unix:///tmp/r.sock");
    EXPECT_TRUE(scheme.unix_socket);
    EXPECT_EQ(scheme.path, "/tmp/r.sock");

    Url scheme_auth = Url::parse("redis+unix://bob:pw@/tmp/r.sock?db=2");
    EXPECT_EQ(scheme_auth.username, "bob");
    EXPECT_EQ(scheme_auth.password, "pw");
    EXPECT_EQ(scheme_auth.path, "/tmp/r.sock");
    EXPECT_EQ(scheme_auth.db, 2);

    EXPECT_EQ(Url::parse("unix:///tmp/x.sock").path, "/tmp/x.sock");
}

TEST(RedisUrl, RejectsMalformed) {
    for (const char* bad :
         {"", "localhost:6379", "http://h", "redis://", "redis://:6379", "redis://h:", "redis://h:0",
          "redis://h:65536", "redis://h:12ab", "redis://h/x", "redis://h/-1", "redis://h/1/2",
          "redis://pw@h", "redis://[::1", "redis://[::1]x", "redis://:%zz@h", "redis://:%4@h",
          "unix:", "unix:relative.sock", "unix:/x?foo=1", "unix:/x?db", "unix:/x?db=-2",
          "redis://h\nx:6379", "redis://h 1", "unix:/tmp/a\tb"}) {
        EXPECT_THROW(Url::parse(bad), std::invalid_argument) << "accepted: '" << bad << "'";
    }
}

TEST(RedisUrl, ToStringRedactsPassword) {
    Url url = Url::parse("redis://alice:s3cret@10.1.2.3:7000/5");
    std::string text = url.to_string();
    EXPECT_EQ(text, "redis://alice:***@10.1.2.3:7000/5");
    EXPECT_EQ(text.find("s3cret"), std::string::npos);

    EXPECT_EQ(Url::parse("redis://h").to_string(), "redis://h:6379");
    EXPECT_EQ(Url::parse("redis://[::1]:7/1").to_string(), "redis://[::1]:7/1");
    EXPECT_EQ(Url::parse("unix:/s.sock?password=hunter2&db=2").to_string(),
              "unix:/s.sock?db=2&password=***");

    // Without a password, printing and parsing round-trip.
    for (const char* text_in : {"redis://h:6379", "redis://[::1]:7/1", "unix:/s.sock?db=2"}) {
        Url again = Url::parse(Url::parse(text_in).to_string());
        EXPECT_EQ(again.to_string(), Url::parse(text_in).to_string());
    }
}

TEST(RedisScript, Sha1IsLowerCaseHex) {
    // The digest Redis itself reports for SCRIPT LOAD "return 1".
    EXPECT_EQ(Script("return 1").sha1, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
}

// ---- Against a real redis-server -----------------------------------------------------

// Counters shared by many concurrent test coroutines.
struct Tally {
    int finished = 0;
    int ok = 0;
    int failed = 0;
    int mismatched = 0;
};

class RedisClientTest : public ::testing::Test {
protected:
    testsupport::RedisServer server;
    asio::io_context context;

    // Drives the io_context until `done` holds; fails the test past `limit`.
    void run_until(const std::function<bool()>& done, milliseconds limit = 30s) {
        const auto deadline = steady_clock::now() + limit;
        context.restart();
        while (!done()) {
            if (steady_clock::now() >= deadline) throw std::runtime_error("test deadline passed");
            context.run_one_until(deadline);
            if (context.stopped() && !done()) throw std::runtime_error("io_context ran out of work");
        }
    }

    template <typename T>
    T run(asio::awaitable<T> work, milliseconds limit = 30s) {
        std::optional<T> value;
        std::exception_ptr error;
        bool finished = false;
        asio::co_spawn(context, std::move(work), [&](std::exception_ptr e, T v) {
            error = e;
            value.emplace(std::move(v));
            finished = true;
        });
        run_until([&] { return finished; }, limit);
        if (error) std::rethrow_exception(error);
        return std::move(*value);
    }

    Result call(Client& client, std::vector<std::string> args, milliseconds deadline = 2s) {
        return run(client.command(std::move(args), deadline));
    }

    // Polls with short calls until one succeeds (e.g. after a restart).
    Result call_until_ok(Client& client, std::vector<std::string> args, milliseconds limit = 10s) {
        const auto deadline = steady_clock::now() + limit;
        for (;;) {
            Result result = call(client, args, 300ms);
            if (result.ok() || steady_clock::now() >= deadline) return result;
            asio::steady_timer pause(context, 10ms);  // polling interval
            run_until([&] { return pause.expiry() <= steady_clock::now(); });
        }
    }
};

asio::awaitable<void> echo_and_check(Client& client, int index, Tally& tally,
                                     std::size_t padding = 0) {
    std::string value = "value-" + std::to_string(index) + std::string(padding, 'x');
    // Arguments built outside co_await: GCC 12 mis-compiles braced lists there.
    std::vector<std::string> args{"ECHO", value};
    Result result = co_await client.command(std::move(args), 20s);
    if (!result.ok())
        ++tally.failed;
    else if (result.reply.str != value)
        ++tally.mismatched;
    else
        ++tally.ok;
    ++tally.finished;
}

asio::awaitable<void> call_into(Client& client, std::vector<std::string> args, milliseconds deadline,
                                std::optional<Result>& out) {
    out = co_await client.command(std::move(args), deadline);
}

TEST_F(RedisClientTest, ReplyTypes) {
    Client client(context.get_executor(), server.parsed_url());
    client.start();  // the first call waits for the connection within its deadline

    Result set = call(client, {"SET", "greeting", "hello"});
    ASSERT_TRUE(set.ok()) << set.error;
    EXPECT_EQ(set.reply.type, Reply::Type::status);
    EXPECT_EQ(set.reply.str, "OK");
    EXPECT_TRUE(client.connected());

    Result get = call(client, {"GET", "greeting"});
    EXPECT_EQ(get.reply.type, Reply::Type::string);
    EXPECT_EQ(get.reply.str, "hello");

    EXPECT_EQ(call(client, {"GET", "missing"}).reply.type, Reply::Type::nil);

    Result incr = call(client, {"INCRBY", "counter", "42"});
    EXPECT_EQ(incr.reply.type, Reply::Type::integer);
    EXPECT_EQ(incr.reply.integer, 42);

    call(client, {"RPUSH", "list", "a", "b", "c"});
    Result range = call(client, {"LRANGE", "list", "0", "-1"});
    ASSERT_EQ(range.reply.type, Reply::Type::array);
    ASSERT_EQ(range.reply.elements.size(), 3u);
    EXPECT_EQ(range.reply.elements[2].str, "c");

    // Nested arrays and nil inside an array.
    Result nested = call(client, {"EVAL", "return {1, {'x', false}, 'y'}", "0"});
    ASSERT_EQ(nested.reply.type, Reply::Type::array);
    ASSERT_EQ(nested.reply.elements.size(), 3u);
    EXPECT_EQ(nested.reply.elements[0].integer, 1);
    ASSERT_EQ(nested.reply.elements[1].elements.size(), 2u);
    EXPECT_EQ(nested.reply.elements[1].elements[0].str, "x");
    EXPECT_EQ(nested.reply.elements[1].elements[1].type, Reply::Type::nil);

    // Values are binary-safe.
    std::string binary("a\0b\r\nc", 6);
    call(client, {"SET", "binary", binary});
    EXPECT_EQ(call(client, {"GET", "binary"}).reply.str, binary);

    // A Redis error is a reply, not a failure.
    Result wrong_type = call(client, {"INCR", "greeting"});
    EXPECT_EQ(wrong_type.failure, Failure::none);
    EXPECT_TRUE(wrong_type.reply.is_error());
    EXPECT_FALSE(wrong_type.ok());

    Result empty = call(client, {});
    EXPECT_EQ(empty.failure, Failure::protocol);

    EXPECT_EQ(client.stats().failures, 1u);  // only the empty command
    EXPECT_EQ(client.stats().calls, 11u);
}

TEST_F(RedisClientTest, ResolvesHostNames) {
    // "localhost" may resolve to ::1 first, where nothing listens; the client
    // must go on to 127.0.0.1.
    Client client(context.get_executor(),
                  Url::parse("redis://localhost:" + std::to_string(server.port())));
    client.start();
    Result pong = call(client, {"PING"});
    ASSERT_TRUE(pong.ok()) << pong.error;
    EXPECT_EQ(pong.reply.str, "PONG");
}

// A peer that answers with bytes that are not RESP.
asio::awaitable<void> serve_garbage(asio::ip::tcp::acceptor& acceptor) {
    auto socket = co_await acceptor.async_accept(asio::use_awaitable);
    for (;;) {
        char buffer[512];
        co_await socket.async_read_some(asio::buffer(buffer), asio::use_awaitable);
        co_await asio::async_write(socket, asio::buffer(std::string_view("?not resp\r\n")),
                                   asio::use_awaitable);
    }
}

TEST(RedisClientProtocol, GarbageFromServerIsAProtocolFailure) {
    asio::io_context context;
    asio::ip::tcp::acceptor acceptor(context, {asio::ip::make_address("127.0.0.1"), 0});
    asio::co_spawn(context, serve_garbage(acceptor), asio::detached);
    ClientOptions options;
    options.backoff_min = options.backoff_max = 10s;
    Client client(context.get_executor(),
                  Url::parse("redis://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port())),
                  options);
    client.start();
    std::optional<Result> result;
    asio::co_spawn(context, call_into(client, {"PING"}, 2s, result), asio::detached);
    const auto deadline = steady_clock::now() + 5s;
    while (!result && steady_clock::now() < deadline) context.run_one_until(deadline);
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(result->failure, Failure::protocol) << result->error;
    EXPECT_NE(result->error.find("protocol error"), std::string::npos) << result->error;
    EXPECT_FALSE(client.connected());
}

TEST_F(RedisClientTest, TenThousandPipelinedCallsStayInOrder) {
    // Each write batch size: one command per write, the default, the whole
    // turn. 10,000 calls of 1 KiB overfill the socket buffer, so partial
    // writes and the async remainder are exercised too.
    for (std::size_t batch : {std::size_t{1}, ClientOptions{}.write_batch, std::size_t{1000000}}) {
        SCOPED_TRACE("write_batch " + std::to_string(batch));
        ClientOptions options;
        options.write_batch = batch;
        Client client(context.get_executor(), server.parsed_url(), options);
        client.start();
        constexpr int calls = 10000;
        Tally tally;
        for (int i = 0; i < calls; ++i)
            asio::co_spawn(context, echo_and_check(client, i, tally, 1024), asio::detached);
        run_until([&] { return tally.finished == calls; });
        EXPECT_EQ(tally.ok, calls);
        EXPECT_EQ(tally.failed, 0);
        EXPECT_EQ(tally.mismatched, 0);
        EXPECT_EQ(client.stats().failures, 0u);
        client.stop();
    }
}

TEST_F(RedisClientTest, ReconnectsAfterServerRestart) {
    ClientOptions options;
    options.backoff_min = 20ms;
    options.backoff_max = 200ms;
    Client client(context.get_executor(), server.parsed_url(), options);
    client.start();
    ASSERT_TRUE(call(client, {"PING"}).ok());

    server.stop();
    auto started = steady_clock::now();
    Result down = call(client, {"PING"}, 1s);
    EXPECT_EQ(down.failure, Failure::disconnected) << down.error;
    EXPECT_LT(steady_clock::now() - started, 1100ms);
    EXPECT_FALSE(client.connected());

    server.start();
    Result up = call_until_ok(client, {"PING"});
    ASSERT_TRUE(up.ok()) << up.error;
    EXPECT_EQ(up.reply.str, "PONG");
    EXPECT_TRUE(client.connected());
    EXPECT_GE(client.stats().reconnects, 1u);
    EXPECT_TRUE(call(client, {"SET", "after", "restart"}).ok());
}

TEST_F(RedisClientTest, DeadlineFiresWhileServerIsStoppedAndClientRecovers) {
    Client client(context.get_executor(), server.parsed_url());
    client.start();
    ASSERT_TRUE(call(client, {"PING"}).ok());

    server.pause();
    auto started = steady_clock::now();
    Result lost = call(client, {"ECHO", "lost"}, 200ms);
    auto waited = steady_clock::now() - started;
    EXPECT_EQ(lost.failure, Failure::timeout) << lost.error;
    EXPECT_GE(waited, 190ms);
    EXPECT_LT(waited, 1s);

    // More callers give up while the server sleeps; their slots stay queued.
    Tally tally;
    constexpr int abandoned = 100;
    for (int i = 0; i < abandoned; ++i) {
        asio::co_spawn(
            context,
            [](Client& c, int n, Tally& t) -> asio::awaitable<void> {
                std::vector<std::string> args{"ECHO", "late-" + std::to_string(n)};
                Result r = co_await c.command(std::move(args), 100ms);
                if (r.failure == Failure::timeout) ++t.ok;
                ++t.finished;
            }(client, i, tally),
            asio::detached);
    }
    run_until([&] { return tally.finished == abandoned; }, 5s);
    EXPECT_EQ(tally.ok, abandoned);
    EXPECT_TRUE(client.connected());  // a slow server is not a lost connection

    server.resume();
    // Late replies to abandoned calls are dropped; new calls get their own.
    Result fresh = call_until_ok(client, {"ECHO", "fresh"});
    ASSERT_TRUE(fresh.ok()) << fresh.error;
    EXPECT_EQ(fresh.reply.str, "fresh");

    Tally after;
    for (int i = 0; i < 1000; ++i) asio::co_spawn(context, echo_and_check(client, i, after), asio::detached);
    run_until([&] { return after.finished == 1000; });
    EXPECT_EQ(after.ok, 1000);
    EXPECT_EQ(after.mismatched, 0);
}

TEST_F(RedisClientTest, EvalReloadsScriptAfterFlush) {
    Client client(context.get_executor(), server.parsed_url());
    client.start();
    Script script("return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}");

    auto eval = [&] { return run(client.eval(script, {"evals:{x}"}, {"arg"}, 2s)); };
    Result first = eval();  // NOSCRIPT, then EVAL loads it
    ASSERT_TRUE(first.ok()) << first.error << " " << first.reply.str;
    ASSERT_EQ(first.reply.elements.size(), 3u);
    EXPECT_EQ(first.reply.elements[0].str, "evals:{x}");
    EXPECT_EQ(first.reply.elements[1].str, "arg");
    EXPECT_EQ(first.reply.elements[2].integer, 1);

    Result exists = call(client, {"SCRIPT", "EXISTS", script.sha1});
    ASSERT_EQ(exists.reply.elements.size(), 1u);
    EXPECT_EQ(exists.reply.elements[0].integer, 1);
    EXPECT_EQ(call(client, {"SCRIPT", "LOAD", script.source}).reply.str, script.sha1);

    Result cached = eval();
    EXPECT_EQ(cached.reply.elements[2].integer, 2);

    ASSERT_TRUE(call(client, {"SCRIPT", "FLUSH"}).ok());
    Result reloaded = eval();
    ASSERT_TRUE(reloaded.ok()) << reloaded.reply.str;
    EXPECT_EQ(reloaded.reply.elements[2].integer, 3);

    // A script error is an error reply, not a failure, and not retried forever.
    Result broken = run(client.eval(Script("return redis.call('NO_SUCH_COMMAND')"), {}, {}, 2s));
    EXPECT_EQ(broken.failure, Failure::none);
    EXPECT_TRUE(broken.reply.is_error());
}

TEST_F(RedisClientTest, UnixSocket) {
    Client client(context.get_executor(), Url::parse("unix:" + server.socket_path()));
    client.start();
    ASSERT_TRUE(call(client, {"SET", "via", "unix"}).ok());
    EXPECT_EQ(call(client, {"GET", "via"}).reply.str, "unix");

    Tally tally;
    for (int i = 0; i < 2000; ++i) asio::co_spawn(context, echo_and_check(client, i, tally), asio::detached);
    run_until([&] { return tally.finished == 2000; });
    EXPECT_EQ(tally.ok, 2000);
}

TEST_F(RedisClientTest, PasswordUserAndDatabaseFromUrl) {
    ASSERT_FALSE(server.command({"CONFIG", "SET", "requirepass", "s3cret"}).is_error());
    const std::string address = "127.0.0.1:" + std::to_string(server.port());

    Client client(context.get_executor(), Url::parse("redis://:s3cret@" + address + "/3"));
    client.start();
    ASSERT_TRUE(call(client, {"SET", "where", "db3"}).ok());

    using proto::redis::command_sync;
    EXPECT_EQ(command_sync(Url::parse("redis://:s3cret@" + address + "/3"), {"GET", "where"}).str, "db3");
    EXPECT_EQ(command_sync(Url::parse("redis://:s3cret@" + address), {"GET", "where"}).type,
              Reply::Type::nil);
    EXPECT_EQ(command_sync(Url::parse("unix:" + server.socket_path() + "?db=3&password=s3cret"),
                           {"GET", "where"})
                  .str,
              "db3");
    // Without AUTH the server refuses.
    EXPECT_TRUE(command_sync(Url::parse("redis://" + address), {"GET", "where"}).is_error());

    // An ACL user.
    ASSERT_FALSE(command_sync(Url::parse("redis://:s3cret@" + address),
                              {"ACL", "SETUSER", "alice", "on", ">alicepw", "~*", "+@all"})
                     .is_error());
    Client alice(context.get_executor(), Url::parse("redis://alice:alicepw@" + address + "/3"));
    alice.start();
    Result as_alice = call(alice, {"GET", "where"});
    ASSERT_TRUE(as_alice.ok()) << as_alice.error;
    EXPECT_EQ(as_alice.reply.str, "db3");
    EXPECT_EQ(call(alice, {"ACL", "WHOAMI"}).reply.str, "alice");

    // A wrong password fails the call as a connection failure and never
    // shows up in the error text.
    ClientOptions slow_retry;
    slow_retry.backoff_min = slow_retry.backoff_max = 10s;
    Client intruder(context.get_executor(), Url::parse("redis://:not-the-password-xyz@" + address),
                    slow_retry);
    intruder.start();
    Result refused = call(intruder, {"PING"});
    EXPECT_EQ(refused.failure, Failure::disconnected);
    EXPECT_NE(refused.error.find("AUTH failed"), std::string::npos) << refused.error;
    EXPECT_EQ(refused.error.find("not-the-password"), std::string::npos) << refused.error;
}

TEST_F(RedisClientTest, FailsFastWhileBackingOff) {
    ClientOptions options;
    options.backoff_min = options.backoff_max = 5s;
    Client client(context.get_executor(),
                  Url::parse("redis://127.0.0.1:" + std::to_string(testsupport::free_port())), options);
    client.start();
    Result first = call(client, {"PING"}, 2s);  // waits for the first attempt, which is refused
    EXPECT_EQ(first.failure, Failure::disconnected) << first.error;
    EXPECT_NE(first.error.find("127.0.0.1"), std::string::npos) << first.error;

    // The next attempt is seconds away, beyond this call's deadline.
    auto started = steady_clock::now();
    Result second = call(client, {"PING"}, 1s);
    EXPECT_EQ(second.failure, Failure::disconnected);
    EXPECT_LT(steady_clock::now() - started, 500ms);  // did not wait out its deadline
    EXPECT_NE(second.error.find("next attempt"), std::string::npos) << second.error;
    EXPECT_FALSE(client.connected());
}

TEST_F(RedisClientTest, BoundsPendingCalls) {
    ClientOptions options;
    options.max_pending = 10;
    Client client(context.get_executor(), server.parsed_url(), options);
    client.start();
    ASSERT_TRUE(call(client, {"PING"}).ok());

    server.pause();
    Tally tally;
    constexpr int calls = 25;
    for (int i = 0; i < calls; ++i) asio::co_spawn(context, echo_and_check(client, i, tally), asio::detached);
    // The calls beyond the bound fail at once; the first ten wait.
    run_until([&] { return tally.finished == calls - 10; }, 5s);
    EXPECT_EQ(tally.failed, calls - 10);
    server.resume();
    run_until([&] { return tally.finished == calls; });
    EXPECT_EQ(tally.ok, 10);
    EXPECT_EQ(tally.mismatched, 0);
}

TEST_F(RedisClientTest, StopFailsPendingCalls) {
    Client client(context.get_executor(), server.parsed_url());
    client.start();
    ASSERT_TRUE(call(client, {"PING"}).ok());
    server.pause();

    std::optional<Result> pending;
    asio::co_spawn(context, call_into(client, {"PING"}, 10s, pending), asio::detached);
    const auto calls_before = client.stats().calls;
    run_until([&] { return client.stats().calls > calls_before; }, 5s);
    auto started = steady_clock::now();
    client.stop();
    run_until([&] { return pending.has_value(); }, 5s);
    EXPECT_EQ(pending->failure, Failure::disconnected);
    EXPECT_LT(steady_clock::now() - started, 1s);
    EXPECT_EQ(call(client, {"PING"}).failure, Failure::disconnected);
}

TEST_F(RedisClientTest, CommandSync) {
    using proto::redis::command_sync;
    Reply pong = command_sync(server.parsed_url(), {"PING"});
    EXPECT_EQ(pong.str, "PONG");
    EXPECT_TRUE(command_sync(server.parsed_url(), {"NO_SUCH_COMMAND"}).is_error());
    server.flushall();

    server.stop();
    auto started = steady_clock::now();
    EXPECT_THROW(command_sync(server.parsed_url(), {"PING"}, 500ms), std::runtime_error);
    EXPECT_LT(steady_clock::now() - started, 600ms);
}

// User + system CPU time of this process (the client side only; the server
// is another process).
double process_cpu_seconds() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// A throughput figure, not a pass/fail gate: the machine is shared.
TEST_F(RedisClientTest, PipelinedEvalshaThroughput) {
    Client client(context.get_executor(), server.parsed_url());
    client.start();
    Script script("return redis.call('INCR', KEYS[1])");
    ASSERT_TRUE(run(client.eval(script, {"bench:{n}"}, {}, 2s)).ok());  // loads the script

    constexpr int workers = 500;
    constexpr int calls_per_worker = 400;
    Tally tally;
    auto worker = [](Client& c, const Script& s, Tally& t) -> asio::awaitable<void> {
        for (int i = 0; i < calls_per_worker; ++i) {
            std::vector<std::string> keys{"bench:{n}"};
            Result r = co_await c.eval(s, std::move(keys), {}, 10s);
            if (r.ok())
                ++t.ok;
            else
                ++t.failed;
        }
        ++t.finished;
    };
    auto started = steady_clock::now();
    double cpu_started = process_cpu_seconds();
    for (int i = 0; i < workers; ++i) asio::co_spawn(context, worker(client, script, tally), asio::detached);
    run_until([&] { return tally.finished == workers; }, 120s);
    double seconds = std::chrono::duration<double>(steady_clock::now() - started).count();
    double cpu_seconds = process_cpu_seconds() - cpu_started;
    EXPECT_EQ(tally.failed, 0);
    EXPECT_EQ(call(client, {"GET", "bench:{n}"}).reply.str,
              std::to_string(workers * calls_per_worker + 1));
    double rate = workers * calls_per_worker / seconds;
    std::cout << "[ throughput ] " << workers * calls_per_worker << " pipelined EVALSHA from "
              << workers << " coroutines on one thread: " << static_cast<long>(rate)
              << " calls/s; client CPU " << cpu_seconds * 1e6 / (workers * calls_per_worker)
              << " us per call\n";
    RecordProperty("evalsha_per_second", static_cast<int>(rate));
}

}  // namespace
