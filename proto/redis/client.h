// Redis client: RESP over Boost.Asio, with hiredis as the codec.
//
// hiredis formats commands (redisFormatSdsCommandArgv) and parses replies
// (redisReader, with its own nesting and size limits); Asio does all I/O, so
// this fits the single I/O model of the daemons. One connection is multiplexed:
// callers on the same executor issue commands concurrently, writes are
// batched (ClientOptions::write_batch) and pipelined, replies are matched in
// FIFO order.
//
// Every call has a deadline and never throws for Redis trouble: it returns an
// error result, so deciders can answer their fallback in time. A lost
// connection fails every pending call and is re-established in the background
// with exponential backoff.
//
// Threading: one Client belongs to one executor (strand or single-threaded
// io_context); call it only from coroutines running there.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace proto::redis {

// redis://[[user]:password@]host[:port][/db]   unix:/path[?db=N&password=P]
// redis+unix:///path also accepted. The password never appears in logs:
// to_string() redacts it.
struct Url {
    bool unix_socket = false;
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    std::string path;
    std::string username;
    std::string password;
    int db = 0;

    static Url parse(std::string_view text);  // throws std::invalid_argument
    std::string to_string() const;            // redacted
};

struct Reply {
    enum class Type { nil, status, error, integer, string, array };
    Type type = Type::nil;
    std::string str;  // status, error, string
    long long integer = 0;
    std::vector<Reply> elements;

    bool is_error() const { return type == Type::error; }
};

// Failure of a call, as opposed to a Redis error reply (which is a Reply).
enum class Failure { none, timeout, disconnected, protocol };

struct Result {
    Failure failure = Failure::none;
    std::string error;  // human-readable, for logs
    Reply reply;

    bool ok() const { return failure == Failure::none && !reply.is_error(); }
};

// A Lua script, called by EVALSHA; loaded again on NOSCRIPT (server restart,
// SCRIPT FLUSH) transparently.
struct Script {
    explicit Script(std::string source);
    std::string source;
    std::string sha1;  // lower-case hex
};

struct ClientOptions {
    std::chrono::milliseconds connect_timeout{1000};
    std::chrono::milliseconds backoff_min{100};
    std::chrono::milliseconds backoff_max{5000};
    // A bound on replies buffered for one call (hiredis reader maxbulklen /
    // maxelements stay at hiredis' defaults).
    std::size_t max_pending = 100000;  // calls queued before new ones fail fast
    // Commands buffered before they are written without waiting for the end
    // of the event loop's turn. Whole-turn batches make the daemon, Redis and
    // the daemon's clients take turns (measured: the CPUs a third idle at 64
    // connections); batches of 8 let Redis start while the loop parses more.
    std::size_t write_batch = 8;
};

struct ClientStats {
    std::uint64_t calls = 0;
    std::uint64_t failures = 0;  // timeouts + disconnects + protocol
    std::uint64_t reconnects = 0;
    bool connected = false;
};

class Client {
public:
    Client(boost::asio::any_io_executor ex, Url url, ClientOptions options = {});
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Start connecting in the background (AUTH and SELECT from the URL are sent
    // first on every connection). Calls made before the connection is up wait
    // for it within their deadline.
    void start();
    // Fail everything pending and stop reconnecting.
    void stop();

    boost::asio::awaitable<Result> command(std::vector<std::string> args,
                                           std::chrono::milliseconds deadline);
    boost::asio::awaitable<Result> eval(const Script& script, std::vector<std::string> keys,
                                        std::vector<std::string> args,
                                        std::chrono::milliseconds deadline);

    bool connected() const;
    ClientStats stats() const;
    const Url& url() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

// A blocking one-shot helper for operator commands and tests: connects,
// runs one command, returns. Throws std::runtime_error on connection failure.
Reply command_sync(const Url& url, const std::vector<std::string>& args,
                   std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

}  // namespace proto::redis
