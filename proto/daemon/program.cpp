#include "daemon/program.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <map>
#include <optional>

#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/metrics_http.h"
#include "net/stream_server.h"
#include "milter/address.h"
#include "milter/server.h"
#include "policy/server.h"
#include "proto/version.h"

namespace proto::daemon {

namespace asio = boost::asio;
using namespace std::chrono_literals;

int Program::command(const std::vector<std::string>& args, Runtime&) {
    std::cerr << info().name << ": unknown command \"" << (args.empty() ? "" : args[0])
              << "\" (see --help)\n";
    return 2;
}

std::unique_ptr<Service> Program::make_service(Runtime&, const policy::ServerOptions&) {
    return nullptr;
}

namespace {

// The default service: the policy protocol, answered by the current decider.
class PolicyService final : public Service {
public:
    PolicyService(asio::io_context& io, const policy::ServerOptions& options,
                  metrics::Registry& registry, policy::Server::DeciderSource decider)
        : server_(io, options, registry, std::move(decider)) {}
    void listen(const net::Endpoint& where) override { server_.listen(where); }
    void update_options(const policy::ServerOptions& options) override {
        server_.update_options(options);
    }
    void drain(std::chrono::milliseconds timeout, std::function<void()> on_drained) override {
        server_.drain(timeout, std::move(on_drained));
    }

private:
    policy::Server server_;
};

struct Flags {
    std::optional<std::string> config_path;
    std::vector<std::string> listen;
    std::vector<std::string> milter;
    std::optional<std::string> redis;
    std::optional<std::string> metrics;
    std::optional<std::string> log_format;
    bool check_config = false;
    bool version = false;
    bool help = false;
    std::vector<std::string> positional;
};

void usage(const ProgramInfo& info, std::FILE* out) {
    std::string text = info.name + ": " + info.summary + "\n\nusage: " + info.name +
                       (info.own_config ? " [--config FILE]" : " [--config FILE] [--listen ADDR]...") +
                       (info.serves_milter ? " [--milter ADDR]..." : "") +
                       (info.uses_redis ? " [--redis URL]" : "") +
                       "\n         [--metrics ADDR] [--log-format text|json] [--check-config]"
                       " [--version] [--help]";
    if (!info.commands_help.empty()) text += "\n       " + info.name + " [options] COMMAND ARGS...";
    if (info.own_config) {
        text += "\n\n  --config FILE       the configuration file (" + info.name + "(8))\n";
    } else {
        text += "\n\n"
                "  --config FILE       JSON configuration (every key has a default)\n"
                "  --listen ADDR       inet:HOST:PORT, inet:[::1]:PORT or unix:/path (repeatable;\n"
                "                      default " + info.default_listen + ")\n";
    }
    if (info.serves_milter)
        text += "  --milter ADDR       milter listener: inet:PORT@HOST, inet6:PORT@[HOST] or\n"
                "                      unix:/path (repeatable; the same decisions, same state)\n";
    if (info.uses_redis)
        text += "  --redis URL         redis://[:PASSWORD@]HOST:PORT[/DB] or unix:/path\n"
                "                      (default redis://127.0.0.1:6379)\n";
    text += "  --metrics ADDR      serve Prometheus metrics at http://ADDR/metrics\n"
            "  --log-format FMT    text (default) or json\n"
            "  --check-config      validate the configuration and exit 0 or 1\n"
            "  --version           print the version and exit\n"
            "\nSignals: SIGHUP reloads the configuration and lists; SIGTERM drains and exits.\n";
    if (!info.commands_help.empty()) text += "\nCommands:\n" + info.commands_help;
    std::fputs(text.c_str(), out);
}

// Returns an error message, or "" on success.
std::string parse_flags(int argc, char** argv, const ProgramInfo& info, Flags& f) {
    auto value_of = [&](int& i, std::string_view flag, std::string& out) -> bool {
        std::string arg = argv[i];
        if (arg.size() > flag.size() && arg[flag.size()] == '=') {
            out = arg.substr(flag.size() + 1);
            return true;
        }
        if (i + 1 >= argc) return false;
        out = argv[++i];
        return true;
    };
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto is = [&](std::string_view flag) {
            return arg == flag || (arg.starts_with(flag) && arg.size() > flag.size() &&
                                   arg[flag.size()] == '=');
        };
        std::string v;
        if (is("--config")) {
            if (!value_of(i, "--config", v)) return "--config needs a file";
            f.config_path = v;
        } else if (is("--listen")) {
            if (!value_of(i, "--listen", v)) return "--listen needs an address";
            f.listen.push_back(v);
        } else if (is("--milter")) {
            if (!value_of(i, "--milter", v)) return "--milter needs an address";
            f.milter.push_back(v);
        } else if (is("--redis")) {
            if (!value_of(i, "--redis", v)) return "--redis needs a URL";
            f.redis = v;
        } else if (is("--metrics")) {
            if (!value_of(i, "--metrics", v)) return "--metrics needs an address";
            f.metrics = v;
        } else if (is("--log-format")) {
            if (!value_of(i, "--log-format", v)) return "--log-format needs text or json";
            f.log_format = v;
        } else if (arg == "--check-config") {
            f.check_config = true;
        } else if (arg == "--version") {
            f.version = true;
        } else if (arg == "--help" || arg == "-h") {
            f.help = true;
        } else if (std::find(info.command_flags.begin(), info.command_flags.end(), arg) !=
                   info.command_flags.end()) {
            f.positional.insert(f.positional.begin(), arg);
        } else if (arg.starts_with("-")) {
            return "unknown option " + arg;
        } else {
            f.positional.push_back(arg);
        }
    }
    return {};
}

// Settings every program shares; flags override the file.
struct Common {
    std::vector<net::Endpoint> listen;
    std::vector<net::Endpoint> milter;
    std::optional<net::Endpoint> metrics;
    redis::Url redis_url;
    std::chrono::milliseconds redis_timeout{150};
    log::Format log_format = log::Format::text;
    policy::ServerOptions server;
    std::chrono::milliseconds drain_timeout{10s};
    std::string user;
};

net::Endpoint endpoint_or_fail(config::Reader& r, std::string_view key, const std::string& text) {
    auto parsed = net::parse_endpoint(text);
    if (!parsed.endpoint) r.fail(key, "\"" + text + "\": " + parsed.error);
    return *parsed.endpoint;
}

// A password from a file, so it need not sit in a command line
// (/proc/PID/cmdline) or in a config file others can read. One trailing
// newline is dropped. Errors name the file, never what it holds. Reading a
// local file keeps --check-config offline.
std::string read_secret(config::Reader& r, std::string_view key, const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) r.fail(key, "cannot read \"" + path + "\": " + std::strerror(errno));
    std::ostringstream content;
    content << in.rdbuf();
    std::string secret = content.str();
    if (secret.ends_with('\n')) secret.pop_back();
    if (secret.ends_with('\r')) secret.pop_back();
    if (secret.empty()) r.fail(key, "\"" + path + "\" is empty");
    if (secret.find_first_of("\r\n") != std::string::npos)
        r.fail(key, "\"" + path + "\" holds more than one line");
    return secret;
}

// Credentials and TLS settings beside the URL.
void read_redis_security(config::Reader& r, redis::Url& url) {
    std::string password_file = r.string("redis_password_file", "");
    if (!password_file.empty()) {
        if (!url.password.empty())
            r.fail("redis_password_file", "the Redis URL holds a password too; give one of them");
        url.password = read_secret(r, "redis_password_file", password_file);
    }
    url.sentinel_username = r.string("redis_sentinel_username", "");
    std::string sentinel_password_file = r.string("redis_sentinel_password_file", "");
    if (!sentinel_password_file.empty())
        url.sentinel_password =
            read_secret(r, "redis_sentinel_password_file", sentinel_password_file);
    if (url.topology == redis::Url::Topology::single) {
        if (r.boolean("redis_tls", url.tls.enabled) != url.tls.enabled)
            r.fail("redis_tls", "for a single Redis, TLS is chosen by the URL (rediss://)");
    } else {
        url.tls.enabled = r.boolean("redis_tls", false);
    }
    url.tls.ca_file = r.string("redis_tls_ca_file", "");
    url.tls.cert_file = r.string("redis_tls_cert_file", "");
    url.tls.key_file = r.string("redis_tls_key_file", "");
    url.tls.server_name = r.string("redis_tls_server_name", "");
    if (url.tls.cert_file.empty() != url.tls.key_file.empty())
        r.fail(url.tls.cert_file.empty() ? "redis_tls_cert_file" : "redis_tls_key_file",
               "a client certificate needs both redis_tls_cert_file and redis_tls_key_file");
    for (const auto& [key, file] : {std::pair<const char*, const std::string*>{"redis_tls_ca_file", &url.tls.ca_file},
                                    {"redis_tls_cert_file", &url.tls.cert_file},
                                    {"redis_tls_key_file", &url.tls.key_file}}) {
        if (!file->empty() && ::access(file->c_str(), R_OK) != 0)
            r.fail(key, "cannot read \"" + *file + "\": " + std::strerror(errno));
    }
    if (url.unix_socket && url.tls.enabled) r.fail("redis_tls", "TLS over a unix socket");
}

// What the Redis client reports, as Prometheus series. Node labels are
// host:port, never credentials.
class RedisMetrics final : public redis::metrics_sink::Sink {
public:
    explicit RedisMetrics(metrics::Registry& registry) : registry_(registry) {}
    void redirect(const char* kind) override {
        registry_.counter("redis_redirects_total", "Cluster redirects followed (MOVED, ASK)",
                          {{"kind", kind}}).inc();
    }
    void refresh() override {
        registry_.counter("redis_topology_refreshes_total",
                          "Cluster slot map or Sentinel master lookups").inc();
    }
    void failover() override {
        registry_.counter("redis_failovers_total",
                          "Masters replaced by a promoted replica, as seen by this client").inc();
    }
    void node_latency(const std::string& node, double seconds) override {
        auto it = latency_.find(node);
        if (it == latency_.end()) {
            auto& histogram = registry_.histogram("redis_node_latency_seconds",
                                                  "Redis call latency per node", {{"node", node}});
            it = latency_.emplace(node, &histogram).first;
        }
        it->second->observe(seconds);
    }
    void connect_error(const char* cause, const std::string& error) override {
        registry_.counter("redis_connect_errors_total",
                          "Failed Redis connection attempts by cause (auth, tls, connect)",
                          {{"cause", cause}}).inc();
        // Once per interval and cause: a Redis that stays away must not
        // flood the log (decisions still name the error one by one).
        auto now = std::chrono::steady_clock::now();
        auto& last = last_logged_[cause];
        if (last != std::chrono::steady_clock::time_point{} && now - last < log_interval) return;
        last = now;
        log::warning(std::string("redis: ") +
                     (std::string_view(cause) == "auth"  ? "authentication failed: "
                      : std::string_view(cause) == "tls" ? "TLS failed: "
                                                         : "cannot connect: ") +
                     error);
    }

private:
    metrics::Registry& registry_;
    std::map<std::string, metrics::Histogram*> latency_;  // the hot path skips the registry's lock
    static constexpr std::chrono::seconds log_interval{10};
    std::map<std::string, std::chrono::steady_clock::time_point> last_logged_;
};

Common read_common(config::Reader& r, const Flags& flags, const ProgramInfo& info) {
    Common c;
    c.listen = r.endpoints("listen", info.default_listen.empty()
                                         ? std::vector<std::string>{}
                                         : std::vector<std::string>{info.default_listen});
    if (!flags.listen.empty()) {
        c.listen.clear();
        for (const auto& l : flags.listen) c.listen.push_back(endpoint_or_fail(r, "--listen", l));
    }
    // Milter sockets in libmilter's notation (milter/address.h).
    auto milters = r.strings("milter", {});
    if (!flags.milter.empty()) milters = flags.milter;
    for (const auto& m : milters) {
        auto parsed = milter::parse_address(m);
        if (!parsed.endpoint) r.fail(flags.milter.empty() ? "milter" : "--milter", "\"" + m + "\": " + parsed.error);
        c.milter.push_back(*parsed.endpoint);
    }
    std::string metrics = flags.metrics.value_or(r.string("metrics", ""));
    if (!metrics.empty()) c.metrics = endpoint_or_fail(r, "metrics", metrics);
    if (info.uses_redis) {
        std::string url = flags.redis.value_or(r.string("redis", "redis://127.0.0.1:6379"));
        try {
            c.redis_url = redis::Url::parse(url);
        } catch (const std::exception& e) {
            r.fail("redis", e.what());
        }
        read_redis_security(r, c.redis_url);
        c.redis_timeout = r.milliseconds("redis_timeout_ms", 150ms, 1ms, 60000ms);
    }
    std::string format = r.choice("log_format", "text", {"text", "json"});
    if (flags.log_format) {
        if (*flags.log_format != "text" && *flags.log_format != "json")
            throw config::ConfigError("--log-format: must be text or json");
        format = *flags.log_format;
    }
    c.log_format = format == "json" ? log::Format::json : log::Format::text;
    c.server.max_connections =
        static_cast<std::size_t>(r.integer("max_connections", 1000, 1, 100000));
    c.server.idle_timeout = r.duration("idle_timeout", 330s, 1s, 86400s);
    c.server.decision_timeout = r.milliseconds("request_timeout_ms", 30000ms, 10ms, 3600000ms);
    c.server.read_timeout = r.milliseconds("read_timeout_ms", 10000ms, 10ms, 3600000ms);
    c.server.log_decisions = r.boolean("log_decisions", true);
    std::string mode = r.string("unix_socket_mode", "0666");
    try {
        std::size_t used = 0;
        unsigned long m = std::stoul(mode, &used, 8);
        if (used != mode.size() || m > 0777) throw std::invalid_argument(mode);
        c.server.unix_mode = static_cast<unsigned>(m);
    } catch (const std::exception&) {
        r.fail("unix_socket_mode", "expected an octal mode such as \"0660\"");
    }
    c.drain_timeout = r.milliseconds("drain_timeout_ms", 10000ms, 0ms, 3600000ms);
    c.user = r.string("user", "");
    if (!c.user.empty() && ::getpwnam(c.user.c_str()) == nullptr)
        r.fail("user", "no such user \"" + c.user + "\"");
    return c;
}

void drop_privileges(const std::string& user) {
    if (user.empty()) {
        if (::geteuid() == 0) log::warning("running as root; set \"user\" to drop privileges");
        return;
    }
    struct passwd* pw = ::getpwnam(user.c_str());
    if (!pw) log::fatal("no such user " + user);
    if (::setgroups(0, nullptr) != 0 || ::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0)
        log::fatal("cannot switch to user " + user);
}

struct Loaded {
    Common common;
    std::shared_ptr<policy::Decider> decider;
};

}  // namespace

int run(int argc, char** argv, Program& program) {
    const auto& info = program.info();
    log::set_program(info.name);
    Flags flags;
    if (auto err = parse_flags(argc, argv, info, flags); !err.empty()) {
        std::fprintf(stderr, "%s: %s\n", info.name.c_str(), err.c_str());
        usage(info, stderr);
        return 2;
    }
    if (flags.help) {
        usage(info, stdout);
        return 0;
    }
    if (flags.version) {
        std::printf("%s %s\n", info.name.c_str(), kVersion);
        return 0;
    }
    ::signal(SIGPIPE, SIG_IGN);
    // Every connection is a file: use all the hard limit allows (the
    // servers clamp max_connections to what fits in it).
    net::raise_file_limit();

    asio::io_context io(1);
    metrics::Registry registry;
    SystemClock clock;
    std::unique_ptr<RedisMetrics> redis_metrics;
    std::unique_ptr<redis::Client> redis_client;
    Runtime rt{io, registry, clock, nullptr, {}, 150ms, flags.check_config,
               flags.config_path.value_or(""), {}};
    bool command_mode = !flags.positional.empty();

    // Everything a configuration consists of, built without touching what runs.
    auto load = [&](bool initial) -> Loaded {
        std::unique_ptr<nlohmann::json> doc;
        if (flags.config_path && !info.own_config) doc = config::load_file(*flags.config_path);
        nlohmann::json empty = nlohmann::json::object();
        config::Reader reader(doc ? *doc : empty);
        Loaded l;
        l.common = read_common(reader, flags, info);
        if (initial) {
            rt.redis_url = l.common.redis_url;
            rt.redis_timeout = l.common.redis_timeout;
            if (info.uses_redis && !flags.check_config && !command_mode) {
                redis_client = std::make_unique<redis::Client>(io.get_executor(), rt.redis_url);
                redis_metrics = std::make_unique<RedisMetrics>(registry);
                redis_client->set_metrics(redis_metrics.get());
                rt.redis = redis_client.get();
            }
        }
        l.decider = program.configure(reader, rt);
        // --check-config and the running program agree: a milter needs a decider.
        if (!l.common.milter.empty() && !info.serves_milter)
            throw config::ConfigError("milter: " + info.name + " makes no policy decisions to serve");
        reader.finish();
        return l;
    };

    Loaded current;
    try {
        current = load(true);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: configuration error: %s\n", info.name.c_str(), e.what());
        return 1;
    }
    if (flags.check_config) {
        std::printf("%s: configuration OK\n", info.name.c_str());
        return 0;
    }
    log::set_format(current.common.log_format);
    if (command_mode) return program.command(flags.positional, rt);
    std::shared_ptr<policy::Decider> decider = current.decider;
    program.commit();
    std::unique_ptr<Service> server = program.make_service(rt, current.common.server);
    if (!server)
        server = std::make_unique<PolicyService>(io, current.common.server, registry,
                                                 [&decider] { return decider; });
    // The milter front end: the same decider, loop and state as the policy side.
    std::unique_ptr<milter::Server> milter_server;
    if (!current.common.milter.empty()) {
        if (!decider) log::fatal("--milter: no decider to serve (a program with serves_milter and no decider)");
        milter_server = std::make_unique<milter::Server>(
            io, milter::ServerOptions::from(current.common.server), registry,
            [&decider] { return decider; });
    }
    std::unique_ptr<metrics::MetricsServer> metrics_server;
    try {
        for (const auto& where : current.common.listen) server->listen(where);
        for (const auto& where : current.common.milter) milter_server->listen(where);
        if (current.common.metrics)
            metrics_server = std::make_unique<metrics::MetricsServer>(io, *current.common.metrics,
                                                                      registry);
    } catch (const std::exception& e) {
        log::fatal(std::string("cannot listen: ") + e.what());
    }
    drop_privileges(rt.run_as.empty() ? current.common.user : rt.run_as);
    if (redis_client) redis_client->start();

    std::string where;
    for (const auto& l : current.common.listen) where += (where.empty() ? "" : " ") + l.to_string();
    std::string milter_where;
    for (const auto& m : current.common.milter)
        milter_where += (milter_where.empty() ? "" : " ") + m.to_string();
    if (milter_where.empty())
        log::event(log::Level::info, "ready", {{"listen", where}});
    else
        log::event(log::Level::info, "ready", {{"listen", where}, {"milter", milter_where}});

    auto& reloads = registry.counter("config_reloads_total", "Successful configuration reloads");
    auto& reload_failures =
        registry.counter("config_reload_failures_total", "Refused configuration reloads");

    asio::signal_set signals(io, SIGHUP, SIGTERM, SIGINT);
    bool stopping = false;
    std::function<void(boost::system::error_code, int)> on_signal =
        [&](boost::system::error_code ec, int sig) {
            if (ec) return;
            if (sig == SIGHUP && !stopping) {
                try {
                    Loaded next = load(false);
                    if (next.common.listen != current.common.listen)
                        log::warning("listen addresses change only on restart");
                    if (next.common.milter != current.common.milter)
                        log::warning("milter addresses change only on restart");
                    log::set_format(next.common.log_format);
                    server->update_options(next.common.server);
                    if (milter_server)
                        milter_server->update_options(milter::ServerOptions::from(next.common.server));
                    decider = next.decider;
                    program.commit();
                    current = std::move(next);
                    reloads.inc();
                    log::info("configuration reloaded");
                } catch (const std::exception& e) {
                    reload_failures.inc();
                    log::error(std::string("reload refused, keeping the running configuration: ") +
                               e.what());
                }
                signals.async_wait(on_signal);
                return;
            }
            if (stopping) return;
            stopping = true;
            log::info("draining: no new connections, finishing requests in flight");
            // Both protocols drain at once; the process stops when both are done.
            auto draining = std::make_shared<int>(milter_server ? 2 : 1);
            auto drained = [&, draining] {
                if (--*draining > 0) return;
                if (metrics_server) metrics_server->stop();
                if (redis_client) redis_client->stop();
                signals.cancel();
                io.stop();
            };
            server->drain(current.common.drain_timeout, drained);
            if (milter_server) milter_server->drain(current.common.drain_timeout, drained);
        };
    signals.async_wait(on_signal);
    io.run();
    log::info("stopped");
    return 0;
}

}  // namespace proto::daemon
