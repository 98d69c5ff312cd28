// Redis Cluster and Sentinel clients: a router in front of one multiplexed
// Client per node.
//
// Both keep a slot map (cluster.h). For a cluster it comes from CLUSTER SLOTS
// asked of any node that answers (known nodes first, connected ones first,
// then the seeds of the URL); for Sentinel it is one range, all slots on the
// master that a sentinel names (SENTINEL get-master-addr-by-name, each
// sentinel in turn) and that says it is one (ROLE). A call is routed by the
// slot of its first key and walks this loop until it has an answer or its
// deadline passes:
//   - MOVED: the slot lives elsewhere; remember that at once, retry there and
//     refresh the whole map in the background.
//   - ASK: the slot is migrating; ASKING and the command, back to back on
//     the target's connection, once; the map is kept.
//   - TRYAGAIN, CLUSTERDOWN, LOADING, MASTERDOWN, READONLY, a lost or refused
//     connection: refresh (except TRYAGAIN, LOADING), back off briefly, retry.
//     READONLY is a demoted master behind a stale address (Sentinel).
//   - NOSCRIPT: the script cache is per node and empty after a restart, a
//     failover or on a reshard target; EVAL (which caches it) on that node.
// Refreshes run one at a time, at most one per min_refresh_interval, and
// also every periodic_refresh, so a quiet daemon notices a failover too.
//
// Scripts must keep their keys in one slot (hash tags); a call whose keys
// span slots is refused here, before Redis says CROSSSLOT.
//
// Limits: redirects per call are bounded (max_redirects); a node learned from
// a redirect or a map gets a connection of its own, so the number of
// connections is the number of nodes. Sentinel's +switch-master is not
// subscribed to: errors and the periodic refresh find the new master.
//
// Security: node addresses come from Redis; credentials and TLS settings are
// the URL's for every data node. Sentinels get their own credentials
// (sentinel_username, sentinel_password). Errors name nodes, never passwords.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <map>
#include <set>

#include "redis/cluster.h"
#include "redis/router.h"

namespace proto::redis {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr milliseconds min_refresh_interval{100};
constexpr milliseconds periodic_refresh{1000};
constexpr milliseconds refresh_call_timeout{500};
constexpr milliseconds retry_backoff_min{10};
constexpr milliseconds retry_backoff_max{200};
constexpr int max_redirects = 16;
constexpr milliseconds max_deadline = std::chrono::hours(24);

Result make_failure(Failure failure, std::string error) {
    Result result;
    result.failure = failure;
    result.error = std::move(error);
    return result;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// The argument holding a command's first key, or 0 for commands without
// keys (sent to any master). EVAL-style commands have it after numkeys.
std::size_t first_key_index(const std::vector<std::string>& args) {
    if (args.size() < 2) return 0;
    const std::string& name = args[0];
    for (const char* keyless : {"PING", "ECHO", "INFO", "SCRIPT", "CLUSTER", "SCAN", "KEYS",
                                "FLUSHALL", "FLUSHDB", "DBSIZE", "TIME", "COMMAND", "CONFIG",
                                "CLIENT", "ROLE", "HELLO", "AUTH", "SELECT", "DEBUG", "WAIT",
                                "RANDOMKEY", "SENTINEL"})
        if (iequals(name, keyless)) return 0;
    if (iequals(name, "EVAL") || iequals(name, "EVALSHA") || iequals(name, "EVAL_RO") ||
        iequals(name, "EVALSHA_RO") || iequals(name, "FCALL") || iequals(name, "FCALL_RO")) {
        if (args.size() < 4 || args[2] == "0") return 0;
        return 3;
    }
    return 1;
}

}  // namespace

class Client::Router : public std::enable_shared_from_this<Client::Router> {
public:
    Router(asio::any_io_executor ex, Url url_in, ClientOptions options_in)
        : executor(std::move(ex)),
          url(std::move(url_in)),
          options(options_in),
          url_text(url.to_string()),
          periodic_timer(executor) {
        // A dead node is skipped by the map, not waited for: keep each node's
        // reconnection quick so a restarted node is back soon too.
        options.backoff_max = std::min(options.backoff_max, milliseconds(1000));
    }

    asio::any_io_executor executor;
    Url url;
    ClientOptions options;
    std::string url_text;
    bool started = false;
    bool stopped = false;

    std::map<std::string, std::unique_ptr<Client>> nodes;  // by host:port
    cluster::SlotMap map;
    bool have_map = false;
    std::map<std::uint16_t, HostPort> moved_slots;  // MOVED since the last refresh
    std::string last_refresh_error = "no topology yet";

    bool refreshing = false;
    bool refresh_again = false;
    steady_clock::time_point last_refresh_start{};
    asio::steady_timer periodic_timer;

    ClientStats counters;
    metrics_sink::Sink* sink = nullptr;

    bool is_cluster() const { return url.topology == Url::Topology::cluster; }

    Client& node(const HostPort& where) {
        std::string name = where.to_string();
        auto it = nodes.find(name);
        if (it == nodes.end()) {
            Url node_url = url.node(where);
            auto client = std::make_unique<Client>(executor, node_url, options);
            client->set_metrics(sink);
            client->start();
            it = nodes.emplace(name, std::move(client)).first;
        }
        return *it->second;
    }

    // A Client for a sentinel: its own credentials, database 0, no TLS
    // settings other than the URL's.
    Client& sentinel(const HostPort& where) {
        std::string name = "sentinel " + where.to_string();
        auto it = nodes.find(name);
        if (it == nodes.end()) {
            Url sentinel_url = url.node(where);
            sentinel_url.username = url.sentinel_username;
            sentinel_url.password = url.sentinel_password;
            sentinel_url.db = 0;
            auto client = std::make_unique<Client>(executor, sentinel_url, options);
            client->set_metrics(sink);
            client->start();
            it = nodes.emplace(name, std::move(client)).first;
        }
        return *it->second;
    }

    void start() {
        if (started || stopped) return;
        started = true;
        for (const auto& seed : url.seeds) {
            if (is_cluster())
                node(seed);
            else
                sentinel(seed);
        }
        request_refresh();
        asio::co_spawn(executor, periodic(shared_from_this()), asio::detached);
    }

    void stop() {
        if (stopped) return;
        stopped = true;
        periodic_timer.cancel();
        for (auto& [name, client] : nodes) client->stop();
    }

    void request_refresh() {
        if (stopped) return;
        if (refreshing) {
            refresh_again = true;
            return;
        }
        refreshing = true;
        asio::co_spawn(executor, refresh(shared_from_this()), asio::detached);
    }

    asio::awaitable<void> periodic(std::shared_ptr<Router> self) {
        (void)self;
        while (!stopped) {
            periodic_timer.expires_after(periodic_refresh);
            co_await periodic_timer.async_wait(use_tuple);
            if (stopped) break;
            request_refresh();
        }
    }

    asio::awaitable<void> refresh(std::shared_ptr<Router> self) {
        (void)self;
        auto wait = last_refresh_start + min_refresh_interval - steady_clock::now();
        if (wait > steady_clock::duration::zero()) {
            asio::steady_timer timer(executor);
            timer.expires_after(wait);
            co_await timer.async_wait(use_tuple);
        }
        if (!stopped) {
            last_refresh_start = steady_clock::now();
            ++counters.refreshes;
            if (sink) sink->refresh();
            if (is_cluster())
                co_await refresh_cluster();
            else
                co_await refresh_sentinel();
        }
        refreshing = false;
        if (refresh_again && !stopped) {
            refresh_again = false;
            request_refresh();
        }
    }

    void adopt(cluster::SlotMap fresh) {
        // A failover: the new master of a range was a replica of its old one
        // (cluster), or the master's address changed (Sentinel).
        std::set<std::string> failed_over;
        if (have_map) {
            for (const auto& range : fresh.ranges) {
                const cluster::SlotRange* old = map.find(range.first);
                if (!old || old->master == range.master) continue;
                bool promoted = !is_cluster() || std::find(old->replicas.begin(), old->replicas.end(),
                                                           range.master) != old->replicas.end();
                if (promoted) failed_over.insert(old->master.to_string());
            }
        }
        counters.failovers += failed_over.size();
        if (sink)
            for (std::size_t i = 0; i < failed_over.size(); ++i) sink->failover();
        map = std::move(fresh);
        have_map = true;
        moved_slots.clear();
        last_refresh_error.clear();
    }

    asio::awaitable<void> refresh_cluster() {
        // Connected nodes first; among them, the map's nodes, then the seeds.
        std::vector<HostPort> candidates = map.nodes();
        for (const auto& seed : url.seeds)
            if (std::find(candidates.begin(), candidates.end(), seed) == candidates.end())
                candidates.push_back(seed);
        std::stable_partition(candidates.begin(), candidates.end(), [&](const HostPort& where) {
            auto it = nodes.find(where.to_string());
            return it != nodes.end() && it->second->connected();
        });
        std::string errors;
        for (const HostPort& where : candidates) {
            if (stopped) co_return;
            Client& client = node(where);
            std::vector<std::string> ask{"CLUSTER", "SLOTS"};
            Result result = co_await client.command(std::move(ask), refresh_call_timeout);
            std::string error;
            if (!result.ok()) {
                error = result.failure != Failure::none ? result.error : result.reply.str;
            } else {
                auto fresh = cluster::parse_slots(result.reply, where, &error);
                if (fresh && !fresh->ranges.empty()) {
                    adopt(std::move(*fresh));
                    co_return;
                }
                if (fresh) error = where.to_string() + ": no slots assigned";
            }
            if (!errors.empty()) errors += "; ";
            errors += error;
        }
        last_refresh_error = "no node gave the cluster's slots: " + errors;
    }

    asio::awaitable<void> refresh_sentinel() {
        std::string errors;
        for (const HostPort& where : url.seeds) {
            if (stopped) co_return;
            Client& client = sentinel(where);
            std::vector<std::string> ask{"SENTINEL", "get-master-addr-by-name", url.master_name};
            Result result = co_await client.command(std::move(ask), refresh_call_timeout);
            std::string error;
            HostPort master;
            const Reply& r = result.reply;
            if (!result.ok()) {
                error = result.failure != Failure::none ? result.error : where.to_string() + ": " + r.str;
            } else if (r.type != Reply::Type::array || r.elements.size() != 2 ||
                       r.elements[0].type != Reply::Type::string ||
                       r.elements[1].type != Reply::Type::string) {
                error = where.to_string() + ": does not know master " + url.master_name;
            } else {
                master.host = r.elements[0].str;
                try {
                    int port = std::stoi(r.elements[1].str);
                    if (port <= 0 || port > 65535) throw std::out_of_range("port");
                    master.port = static_cast<std::uint16_t>(port);
                } catch (const std::exception&) {
                    error = where.to_string() + ": bad master port";
                }
            }
            if (error.empty()) {
                // The sentinel may be behind a failover: ask the node itself.
                Client& data = node(master);
                std::vector<std::string> role{"ROLE"};
                Result checked = co_await data.command(std::move(role), refresh_call_timeout);
                const Reply& c = checked.reply;
                if (!checked.ok()) {
                    error = checked.failure != Failure::none ? checked.error
                                                             : master.to_string() + ": " + c.str;
                } else if (c.type != Reply::Type::array || c.elements.empty() ||
                           c.elements[0].str != "master") {
                    error = master.to_string() + " named by " + where.to_string() + " is not a master";
                } else {
                    cluster::SlotMap fresh;
                    cluster::SlotRange all;
                    all.first = 0;
                    all.last = cluster::slot_count - 1;
                    all.master = master;
                    fresh.ranges.push_back(std::move(all));
                    adopt(std::move(fresh));
                    co_return;
                }
            }
            if (!errors.empty()) errors += "; ";
            errors += error;
        }
        last_refresh_error = "no sentinel named a master for " + url.master_name + ": " + errors;
    }

    // Where a call for `slot` goes now; nullopt when no node serves it.
    std::optional<HostPort> target_for(std::optional<std::uint16_t> slot) const {
        if (!have_map || map.ranges.empty()) return std::nullopt;
        if (!slot) return map.ranges.front().master;
        auto moved = moved_slots.find(*slot);
        if (moved != moved_slots.end()) return moved->second;
        const cluster::SlotRange* range = map.find(*slot);
        if (!range) return std::nullopt;
        return range->master;
    }

    // One call's state across attempts.
    struct Call {
        std::vector<std::string> argv;
        const Script* script = nullptr;
        std::optional<std::uint16_t> slot;
        steady_clock::time_point deadline_at;
        std::optional<HostPort> ask_target;
        int redirects = 0;
        milliseconds backoff = retry_backoff_min;
        Result result;
    };
    enum class Step { done, again, back_off };

    asio::awaitable<Step> attempt(Call& call) {
        auto left = std::chrono::duration_cast<milliseconds>(call.deadline_at - steady_clock::now());
        if (left <= milliseconds::zero()) co_return Step::done;
        std::optional<HostPort> target = call.ask_target;
        if (!target) target = target_for(call.slot);
        if (!target) {
            call.result = make_failure(Failure::disconnected,
                                       url_text + ": no node serves the slot (" +
                                           (last_refresh_error.empty() ? "map incomplete" : last_refresh_error) + ")");
            request_refresh();
            co_return Step::back_off;
        }
        const bool asking = call.ask_target.has_value();
        call.ask_target.reset();
        Client& client = node(*target);
        std::vector<std::string> argv = call.argv;
        const auto sent_at = steady_clock::now();
        Result result;
        if (asking) {
            result = co_await client.command_asking(std::move(argv), left);
        } else {
            result = co_await client.command(std::move(argv), left);
        }
        if (sink) {
            std::chrono::duration<double> took = steady_clock::now() - sent_at;
            sink->node_latency(target->to_string(), took.count());
        }
        if (result.failure != Failure::none) {
            call.result = std::move(result);
            if (call.result.failure == Failure::timeout) co_return Step::done;
            ++counters.retries;
            request_refresh();
            co_return Step::back_off;
        }
        cluster::Classified kind = cluster::classify(result.reply);
        call.result = std::move(result);
        switch (kind.kind) {
            case cluster::ErrorKind::none:
            case cluster::ErrorKind::other:
                co_return Step::done;
            case cluster::ErrorKind::moved:
            case cluster::ErrorKind::ask: {
                if (++call.redirects > max_redirects) co_return Step::done;
                if (kind.target.host.empty()) kind.target.host = target->host;
                if (kind.kind == cluster::ErrorKind::moved) {
                    ++counters.moved;
                    if (sink) sink->redirect("moved");
                    moved_slots[kind.slot] = kind.target;
                    request_refresh();
                } else {
                    ++counters.ask;
                    if (sink) sink->redirect("ask");
                    call.ask_target = kind.target;
                }
                co_return Step::again;
            }
            case cluster::ErrorKind::noscript:
                if (!call.script || call.argv.empty() || !iequals(call.argv[0], "EVALSHA"))
                    co_return Step::done;
                call.argv[0] = "EVAL";
                call.argv[1] = call.script->source;
                if (asking) call.ask_target = target;  // the migrating slot is still there
                co_return Step::again;
            case cluster::ErrorKind::clusterdown:
            case cluster::ErrorKind::readonly:
            case cluster::ErrorKind::masterdown:
                ++counters.retries;
                request_refresh();
                co_return Step::back_off;
            case cluster::ErrorKind::tryagain:
            case cluster::ErrorKind::loading:
                ++counters.retries;
                co_return Step::back_off;
        }
        co_return Step::done;
    }

    asio::awaitable<Result> route(std::shared_ptr<Router> self, Call call, milliseconds deadline) {
        (void)self;
        ++counters.calls;
        deadline = std::min(deadline, max_deadline);
        call.deadline_at = steady_clock::now() + deadline;
        call.result = make_failure(Failure::timeout,
                                   url_text + ": no reply within " + std::to_string(deadline.count()) + " ms");
        if (stopped) {
            call.result = make_failure(Failure::disconnected, url_text + ": client stopped");
        } else {
            asio::steady_timer timer(executor);
            for (;;) {
                Step step = co_await attempt(call);
                if (step == Step::done) break;
                if (step == Step::back_off) {
                    auto left = call.deadline_at - steady_clock::now();
                    if (left <= steady_clock::duration::zero()) break;
                    auto pause = std::min<steady_clock::duration>(call.backoff, left);
                    call.backoff = std::min(call.backoff * 2, retry_backoff_max);
                    timer.expires_after(pause);
                    co_await timer.async_wait(use_tuple);
                    if (stopped) break;
                }
            }
        }
        if (!call.result.ok() && call.result.failure != Failure::none) ++counters.failures;
        co_return std::move(call.result);
    }
};

std::shared_ptr<Client::Router> make_router(asio::any_io_executor ex, Url url, ClientOptions options) {
    return std::make_shared<Client::Router>(std::move(ex), std::move(url), options);
}

void router_start(Client::Router& router) { router.start(); }
void router_stop(Client::Router& router) { router.stop(); }

void router_set_metrics(Client::Router& router, metrics_sink::Sink* sink) {
    router.sink = sink;
    for (auto& [name, client] : router.nodes) client->set_metrics(sink);
}

bool router_connected(const Client::Router& router) {
    if (!router.have_map) return false;
    for (const auto& master : router.map.masters()) {
        auto it = router.nodes.find(master.to_string());
        if (it == router.nodes.end() || !it->second->connected()) return false;
    }
    return true;
}

ClientStats router_stats(const Client::Router& router) {
    ClientStats stats = router.counters;
    for (const auto& [name, client] : router.nodes) {
        ClientStats node = client->stats();
        stats.reconnects += node.reconnects;
        stats.auth_failures += node.auth_failures;
        stats.tls_failures += node.tls_failures;
    }
    stats.connected = router_connected(router);
    return stats;
}

asio::awaitable<Result> router_command(std::shared_ptr<Client::Router> router,
                                       std::vector<std::string> args, milliseconds deadline) {
    Client::Router::Call call;
    std::size_t key = first_key_index(args);
    if (key != 0 && router->is_cluster()) call.slot = cluster::key_slot(args[key]);
    call.argv = std::move(args);
    co_return co_await router->route(router, std::move(call), deadline);
}

asio::awaitable<Result> router_eval(std::shared_ptr<Client::Router> router, const Script& script,
                                    std::vector<std::string> keys, std::vector<std::string> args,
                                    milliseconds deadline) {
    Client::Router::Call call;
    call.script = &script;
    if (!keys.empty() && router->is_cluster()) {
        std::uint16_t slot = cluster::key_slot(keys.front());
        for (const auto& key : keys) {
            if (cluster::key_slot(key) != slot) {
                // A caller's bug (keys without a shared hash tag); Redis
                // would answer CROSSSLOT, this says which call.
                Result refused;
                refused.reply.type = Reply::Type::error;
                refused.reply.str = "CROSSSLOT keys of one script call span slots (" + keys.front() +
                                    ", " + key + ")";
                co_return refused;
            }
        }
        call.slot = slot;
    }
    call.argv.reserve(3 + keys.size() + args.size());
    call.argv.push_back("EVALSHA");
    call.argv.push_back(script.sha1);
    call.argv.push_back(std::to_string(keys.size()));
    for (auto& key : keys) call.argv.push_back(std::move(key));
    for (auto& arg : args) call.argv.push_back(std::move(arg));
    co_return co_await router->route(router, std::move(call), deadline);
}

}  // namespace proto::redis
