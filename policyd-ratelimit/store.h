// RateStore: the narrow interface between the decider and the shared
// counters. One call per request covers every bucket the request touches and
// is atomic: all buckets are checked first, and the events are counted only
// if no enforced bucket refuses, so a refused request consumes no quota.
//
// The model is a leaky bucket, equivalent to GCRA with burst = limit: a
// bucket holds at most `limit` events and drains continuously at
// limit/window. From empty, exactly `limit` events pass at once, under any
// concurrency and from any number of daemons; after that, one more each
// window/limit. Memory per bucket is constant (a level and a timestamp).
// Time is the caller's `now`, so tests drive it with a manual clock.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace ratelimit {

struct BucketCall {
    std::string key;         // bucket name (BucketNamer)
    std::int64_t limit = 0;  // events per window
    std::int64_t window_ms = 0;
    std::int64_t cost = 1;   // events this request adds (or checks room for)
    bool consume = false;    // count it if allowed; false: only check
    bool enforce = true;     // false: dry run, never refuses the request
};

struct ApplyResult {
    bool ok = false;
    std::string error;          // when !ok, for logs
    int refused = -1;           // index of the first enforced bucket that refused, or -1
    std::vector<int> dry_run_refused;  // indexes of dry-run buckets that would have refused
};

class RateStore {
public:
    virtual ~RateStore() = default;
    virtual boost::asio::awaitable<ApplyResult> apply(std::vector<BucketCall> calls,
                                                      std::int64_t now_ms) = 0;
};

}  // namespace ratelimit
