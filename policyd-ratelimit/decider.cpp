// The rate-limit decider. See decider.h.
#include "decider.h"

#include <chrono>

#include "daemon/log.h"

namespace ratelimit {

namespace asio = boost::asio;
using proto::policy::Decision;

RateDecider::RateDecider(std::shared_ptr<const Settings> settings,
                         std::shared_ptr<RateStore> store, const proto::Clock& clock,
                         proto::metrics::Registry& registry)
    : settings_(std::move(settings)),
      store_(std::move(store)),
      clock_(clock),
      store_errors_(registry.counter("ratelimit_store_errors_total",
                                     "Requests answered with on_store_error because Redis failed")),
      store_latency_(registry.histogram("ratelimit_store_latency_seconds",
                                        "Time of the one store call per request")) {
    for (const auto& rule : settings_->rules) {
        proto::metrics::Labels labels{{"rule", rule.name}};
        rule_metrics_.push_back(
            {&registry.counter("ratelimit_rule_applied_total",
                               "Requests a rule applied to (stage, match and key)", labels),
             &registry.counter("ratelimit_rule_refused_total",
                               "Requests refused because the rule's bucket was full", labels),
             &registry.counter("ratelimit_rule_dry_run_refused_total",
                               "Requests a dry-run rule would have refused", labels)});
    }
}

asio::awaitable<Decision> RateDecider::decide(const proto::policy::Request& request) {
    const Settings& s = *settings_;
    const Stage stage = parse_stage(request.get("protocol_state"));
    std::vector<BucketCall> calls;
    std::vector<std::size_t> rule_of;  // calls[i] belongs to s.rules[rule_of[i]]
    std::vector<std::vector<std::string>> keys_of;
    for (std::size_t i = 0; i < s.rules.size(); ++i) {
        const Rule& rule = s.rules[i];
        Role role = rule.role(stage);
        if (role == Role::none || !rule.matches(request)) continue;
        auto values = rule.key_values(request);
        if (!values) continue;
        Override limit = rule.limit_for(*values);
        if (limit.unlimited) continue;
        rule_metrics_[i].applied->inc();
        BucketCall call;
        call.key = s.namer.name(rule.name, *values);
        call.limit = limit.limit;
        call.window_ms = rule.window_seconds * 1000;
        call.cost = rule.cost(request, stage);
        call.consume = role == Role::consume;
        call.enforce = !rule.dry_run;
        calls.push_back(std::move(call));
        rule_of.push_back(i);
        if (s.log_keys) keys_of.push_back(std::move(*values));
    }
    if (calls.empty()) co_return Decision{proto::policy::Action::dunno(), "no rule applies"};

    const auto started = std::chrono::steady_clock::now();
    ApplyResult result = co_await store_->apply(std::move(calls), clock_.now_ms());
    store_latency_.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    if (!result.ok) {
        store_errors_.inc();
        co_return Decision{s.on_store_error, "store error: " + result.error};
    }
    auto key_text = [&](std::size_t call) {
        if (!s.log_keys) return std::string("(hashed)");
        std::string out;
        for (const auto& v : keys_of[call]) out += (out.empty() ? "" : ",") + v;
        return out;
    };
    for (int d : result.dry_run_refused) {
        const Rule& rule = s.rules[rule_of[d]];
        rule_metrics_[rule_of[d]].dry_run_refused->inc();
        proto::log::event(proto::log::Level::info, "dry run: rate limit exceeded",
                          {{"rule", rule.name},
                           {"key", key_text(d)},
                           {"queue_id", request.get("queue_id")},
                           {"would", rule.action.to_string()}});
    }
    if (result.refused >= 0) {
        std::size_t r = rule_of[result.refused];
        rule_metrics_[r].refused->inc();
        co_return Decision{s.rules[r].action,
                           "rule " + s.rules[r].name + " exceeded, key " + key_text(result.refused)};
    }
    if (!result.dry_run_refused.empty())
        co_return Decision{proto::policy::Action::dunno(),
                           "dry run: rule " + s.rules[rule_of[result.dry_run_refused[0]]].name +
                               " exceeded"};
    co_return Decision{proto::policy::Action::dunno(), "within limits"};
}

}  // namespace ratelimit
