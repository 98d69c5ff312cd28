// The policyd-spf decider: for each message (Postfix's `instance`), check
// HELO (RFC 7208 2.3) then MAIL FROM on the worker pool, turn the outcomes
// into a verdict (spf_policy.h), and remember it so the message's other
// recipients get the same refusal or nothing (one header per message).
//
// The Engine (worker pool + checker) outlives configuration reloads. A full
// worker queue gives a temperror outcome at once (so temperror_defer decides
// between deferring and a TempError header) instead of unbounded latency; the
// lookup_time budget bounds every evaluation, so a reply never waits on DNS
// longer than lookup_time per identity plus queueing. A check whose DNS
// answers are all cached runs on the I/O thread instead (it cannot block).
#pragma once

#include <array>
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>

#include "daemon/clock.h"
#include "daemon/metrics.h"
#include "policy/decider.h"
#include "spf_checker.h"
#include "spf_policy.h"
#include "worker_pool.h"

namespace spf {

struct Engine {
    Engine(std::shared_ptr<SpfChecker> checker, const EngineOptions& options)
        : checker(std::move(checker)), pool(options.workers, options.max_queue) {}
    std::shared_ptr<SpfChecker> checker;
    WorkerPool pool;  // declared last: joined first, while checker still lives
};

class SpfDecider final : public proto::policy::Decider {
public:
    SpfDecider(Options options, std::shared_ptr<Engine> engine, proto::metrics::Registry& metrics,
               const proto::Clock& clock);
    boost::asio::awaitable<proto::policy::Decision> decide(
        const proto::policy::Request& request) override;

private:
    boost::asio::awaitable<Outcome> check(Query query);
    std::optional<proto::policy::Decision> cached(const std::string& key);
    void remember(const std::string& key, const proto::policy::Decision& d);

    Options options_;
    std::shared_ptr<Engine> engine_;
    proto::metrics::Registry& metrics_;
    const proto::Clock& clock_;
    proto::metrics::Counter& pool_full_;
    proto::metrics::Counter& instance_hits_;
    proto::metrics::Counter& inline_checks_;
    static constexpr std::size_t kResults = static_cast<std::size_t>(Result::permerror) + 1;
    std::array<std::array<proto::metrics::Counter*, kResults>, 2> checks_{};  // [identity][result]

    struct Remembered {
        proto::policy::Decision decision;
        std::int64_t expires_ms;
    };
    std::unordered_map<std::string, Remembered> instances_;
    std::deque<std::string> instance_order_;
};

}  // namespace spf
