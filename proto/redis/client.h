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
// With a Sentinel or Cluster address, a Client is a router over one such
// connection per node (cluster_client.cpp): calls go to the master (of the
// slot of their first key), redirects and failovers are followed within each
// call's deadline. TLS (rediss://, Url::tls) wraps each connection.
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

// Where Redis is and how to reach it. Forms (user and password optional,
// percent-encoded; "user:password@" for an ACL user, ":password@" alone):
//   redis://[[user]:password@]host[:port][/db]
//   rediss://...                         the same over TLS
//   unix:/path[?db=N&password=P&username=U], redis+unix:///path
//   redis-sentinel://[[user]:password@]host[:port],host[:port]/MASTER[/db]
//       sentinels (default port 26379) asked for MASTER; the credentials are
//       the data nodes'; the sentinels' own are sentinel_username/_password
//   redis-cluster://[[user]:password@]host[:port],host[:port]
//       seed nodes of a Redis Cluster (database 0 only)
// TLS for the Sentinel and Cluster forms is `tls.enabled` (from the config).
// The password never appears in logs: to_string() redacts it.
struct HostPort {
    std::string host;
    std::uint16_t port = 6379;
    std::string to_string() const;  // host:port, [v6]:port
    bool operator==(const HostPort&) const = default;
};

struct TlsSettings {
    bool enabled = false;
    std::string ca_file;      // empty: the system's trust store
    std::string cert_file;    // client certificate, optional
    std::string key_file;
    std::string server_name;  // SNI and name checked; empty: the host
};

struct Url {
    enum class Topology { single, sentinel, cluster };
    Topology topology = Topology::single;
    bool unix_socket = false;
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    std::string path;
    std::string username;
    std::string password;
    int db = 0;
    std::vector<HostPort> seeds;  // sentinels or cluster seed nodes
    std::string master_name;      // Sentinel's name of the master
    std::string sentinel_username;
    std::string sentinel_password;
    TlsSettings tls;

    static Url parse(std::string_view text);  // throws std::invalid_argument
    std::string to_string() const;            // redacted
    // The same credentials, TLS and database, for one node of a topology.
    Url node(const HostPort& where) const;
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
    // Cluster and Sentinel only.
    std::uint64_t moved = 0;        // MOVED redirects followed
    std::uint64_t ask = 0;          // ASK redirects followed
    std::uint64_t retries = 0;      // TRYAGAIN, CLUSTERDOWN, LOADING, READONLY, lost connections
    std::uint64_t refreshes = 0;    // topology refreshes (CLUSTER SLOTS, Sentinel queries)
    std::uint64_t failovers = 0;    // a replica (or a new address) became the master
    std::uint64_t auth_failures = 0;  // connections refused by AUTH
    std::uint64_t tls_failures = 0;   // TLS handshakes or verifications that failed
};

namespace metrics_sink {
// Where a Client reports what Prometheus shows (see daemon/program.cpp).
struct Sink {
    virtual ~Sink() = default;
    virtual void redirect(const char* kind) = 0;              // moved, ask
    virtual void refresh() = 0;
    virtual void failover() = 0;
    virtual void node_latency(const std::string& node, double seconds) = 0;
    // auth, tls, connect; `error` names the node (redacted URL) and the cause.
    virtual void connect_error(const char* cause, const std::string& error) = 0;
};
}  // namespace metrics_sink

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

    // Sends ASKING and the command back to back on this connection, so no
    // other caller's command comes between (a cluster ASK redirect).
    boost::asio::awaitable<Result> command_asking(std::vector<std::string> args,
                                                  std::chrono::milliseconds deadline);
    // Reports redirects, refreshes, failovers, per-node latency and the cause
    // of failed connections; the sink must outlive the client.
    void set_metrics(metrics_sink::Sink* sink);

    class Router;  // Cluster and Sentinel (cluster_client.cpp)

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
    std::shared_ptr<Router> router_;
};

// A blocking one-shot helper for operator commands and tests: connects,
// runs one command, returns. Throws std::runtime_error on connection failure.
Reply command_sync(const Url& url, const std::vector<std::string>& args,
                   std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

}  // namespace proto::redis
