// RateStore on Redis: one EVALSHA per request (a Lua script, so the check of
// every bucket and the count that follows are one atomic step), on the
// daemon's multiplexed, pipelined connection, bounded by a deadline.
//
// Key layout: PREFIX:b:{HASH} (bucket_key.h), a hash with fields
//   l  the level: events counted and not yet drained, as a decimal number
//   t  the time of that level, ms since the epoch (the caller's clock)
// and a TTL of the time the level takes to drain to zero (plus 1 s), so an
// idle bucket disappears exactly when it would read as empty.
//
// On a Redis Cluster, buckets of one request may live in different slots
// (per-bucket hash tags); such a request is decided bucket by bucket in rule
// order, giving back earlier reservations when a later bucket refuses (see
// apply_bucket_by_bucket). On one Redis or Sentinel it stays one script.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "redis/client.h"
#include "store.h"

namespace ratelimit {

class RedisRateStore final : public RateStore {
public:
    RedisRateStore(proto::redis::Client& client, std::chrono::milliseconds timeout)
        : client_(client), timeout_(timeout) {}
    boost::asio::awaitable<ApplyResult> apply(std::vector<BucketCall> calls,
                                              std::int64_t now_ms) override;

private:
    boost::asio::awaitable<ApplyResult> apply_bucket_by_bucket(std::vector<BucketCall> calls,
                                                               std::int64_t now_ms);

    proto::redis::Client& client_;
    std::chrono::milliseconds timeout_;
};

// What the operator command shows of one bucket.
struct BucketUsage {
    bool exists = false;
    double level = 0;         // events in the bucket at now
    std::int64_t ttl_ms = -2; // Redis PTTL
};

// Blocking helpers for the operator command (proto::redis::command_sync).
// Throw std::runtime_error when Redis cannot be reached or answers an error.
BucketUsage read_usage(const proto::redis::Url& url, const std::string& key, std::int64_t limit,
                       std::int64_t window_ms, std::int64_t now_ms);
bool reset_bucket(const proto::redis::Url& url, const std::string& key);

// The level a bucket has at now, given its stored level and time.
double drained_level(double level, std::int64_t at_ms, std::int64_t now_ms, std::int64_t limit,
                     std::int64_t window_ms);

}  // namespace ratelimit
