// The rate-limit decider: finds the rules that apply to a request, asks the
// store about all their buckets in one call, and answers the action of the
// first enforced rule (in configuration order) whose bucket is full, else
// DUNNO. A store failure answers `on_store_error` within the store's
// deadline, and is logged and counted.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "bucket_key.h"
#include "daemon/clock.h"
#include "daemon/metrics.h"
#include "policy/decider.h"
#include "rule.h"
#include "store.h"

namespace ratelimit {

struct Settings {
    std::vector<Rule> rules;
    proto::policy::Action on_store_error;  // default DUNNO: fail open
    BucketNamer namer;
    bool log_keys = true;  // false when keys are hashed with a secret (privacy)
};

class RateDecider final : public proto::policy::Decider {
public:
    RateDecider(std::shared_ptr<const Settings> settings, std::shared_ptr<RateStore> store,
                const proto::Clock& clock, proto::metrics::Registry& registry);
    boost::asio::awaitable<proto::policy::Decision> decide(
        const proto::policy::Request& request) override;

private:
    struct RuleMetrics {
        proto::metrics::Counter* applied;
        proto::metrics::Counter* refused;
        proto::metrics::Counter* dry_run_refused;
    };
    std::shared_ptr<const Settings> settings_;
    std::shared_ptr<RateStore> store_;
    const proto::Clock& clock_;
    std::vector<RuleMetrics> rule_metrics_;
    proto::metrics::Counter& store_errors_;
    proto::metrics::Histogram& store_latency_;
};

}  // namespace ratelimit
