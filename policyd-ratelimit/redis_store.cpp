// RateStore on Redis. See redis_store.h.
#include "redis_store.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <stdexcept>

#include "redis/cluster.h"

namespace ratelimit {

namespace asio = boost::asio;
using proto::redis::Reply;

namespace {

// KEYS: the buckets. ARGV[1]: now (ms). Then five per bucket: limit,
// window (ms), cost, consume (0/1), enforce (0/1).
// Numbers are stored with %.17g: Lua numbers are doubles and Redis would
// otherwise keep only 14 digits of them. The level drains at limit/window
// per ms; a `now` behind the stored time (another host's clock) drains
// nothing and never moves the time back. The 1e-9 slack keeps rounding in
// the drain (a level of 99.00000000000001 for 99) from refusing an event
// that fits; levels of whole events stay exact integers, so it never lets
// one more through.
const proto::redis::Script& apply_script() {
    static const proto::redis::Script script(R"lua(
local now = tonumber(ARGV[1])
local n = #KEYS
local level, stamp, refused = {}, {}, {}
local first = 0
for i = 1, n do
  local a = 1 + (i - 1) * 5
  local limit = tonumber(ARGV[a + 1])
  local window = tonumber(ARGV[a + 2])
  local cost = tonumber(ARGV[a + 3])
  local v = redis.call('HMGET', KEYS[i], 'l', 't')
  local l = tonumber(v[1]) or 0
  local t = tonumber(v[2]) or now
  if now > t then
    l = l - (now - t) * limit / window
    if l < 0 then l = 0 end
    t = now
  end
  level[i] = l
  stamp[i] = t
  if cost > 0 and l + cost > limit + 1e-9 then
    refused[i] = true
    if first == 0 and ARGV[a + 5] == '1' then first = i end
  end
end
local out = {first}
for i = 1, n do
  local a = 1 + (i - 1) * 5
  if refused[i] then
    if ARGV[a + 5] ~= '1' then out[#out + 1] = i end
  elseif first == 0 and ARGV[a + 4] == '1' then
    local cost = tonumber(ARGV[a + 3])
    if cost > 0 then
      local limit = tonumber(ARGV[a + 1])
      local window = tonumber(ARGV[a + 2])
      local l = level[i] + cost
      redis.call('HSET', KEYS[i], 'l', string.format('%.17g', l), 't', string.format('%.17g', stamp[i]))
      redis.call('PEXPIRE', KEYS[i], math.ceil(l * window / limit) + 1000)
    end
  end
end
return out
)lua");
    return script;
}

// KEYS[1]: a bucket. ARGV[1]: the cost to give back. Lowers the stored
// level (never below zero) and keeps its time, so the drain since then is
// unchanged; the TTL stays (it only collects garbage).
const proto::redis::Script& give_back_script() {
    static const proto::redis::Script script(R"lua(
local l = tonumber(redis.call('HGET', KEYS[1], 'l'))
if not l then return 0 end
l = l - tonumber(ARGV[1])
if l < 0 then l = 0 end
redis.call('HSET', KEYS[1], 'l', string.format('%.17g', l))
return 1
)lua");
    return script;
}

// Buckets of one request in more than one Redis Cluster slot cannot be
// changed in one script.
bool spans_slots(const proto::redis::Client& client, const std::vector<BucketCall>& calls) {
    if (client.url().topology != proto::redis::Url::Topology::cluster || calls.size() < 2) return false;
    auto slot = proto::redis::cluster::key_slot(calls.front().key);
    for (const auto& c : calls)
        if (proto::redis::cluster::key_slot(c.key) != slot) return true;
    return false;
}

}  // namespace

asio::awaitable<ApplyResult> RedisRateStore::apply(std::vector<BucketCall> calls,
                                                   std::int64_t now_ms) {
    if (spans_slots(client_, calls)) {
        ApplyResult split = co_await apply_bucket_by_bucket(std::move(calls), now_ms);
        co_return split;
    }
    ApplyResult out;
    std::vector<std::string> keys;
    std::vector<std::string> args;
    keys.reserve(calls.size());
    args.reserve(1 + 5 * calls.size());
    args.push_back(std::to_string(now_ms));
    for (auto& c : calls) {
        keys.push_back(std::move(c.key));
        args.push_back(std::to_string(c.limit));
        args.push_back(std::to_string(c.window_ms));
        args.push_back(std::to_string(c.cost));
        args.emplace_back(c.consume ? "1" : "0");
        args.emplace_back(c.enforce ? "1" : "0");
    }
    auto result = co_await client_.eval(apply_script(), std::move(keys), std::move(args), timeout_);
    if (!result.ok()) {
        out.error = result.failure != proto::redis::Failure::none ? result.error : result.reply.str;
        co_return out;
    }
    const Reply& r = result.reply;
    if (r.type != Reply::Type::array || r.elements.empty() ||
        r.elements[0].type != Reply::Type::integer) {
        out.error = "unexpected reply from the rate script";
        co_return out;
    }
    const auto n = static_cast<long long>(calls.size());
    auto index = [&](const Reply& e) -> int {
        if (e.type != Reply::Type::integer || e.integer < 1 || e.integer > n) return -1;
        return static_cast<int>(e.integer - 1);
    };
    if (r.elements[0].integer != 0) {
        out.refused = index(r.elements[0]);
        if (out.refused < 0) {
            out.error = "unexpected reply from the rate script";
            co_return out;
        }
    }
    for (std::size_t i = 1; i < r.elements.size(); ++i) {
        int d = index(r.elements[i]);
        if (d >= 0) out.dry_run_refused.push_back(d);
    }
    out.ok = true;
    co_return out;
}

// Bucket by bucket, in rule order, each one atomic on its own slot: check and
// reserve; when an enforced bucket refuses, stop and give back what the
// earlier ones reserved. Each bucket stays exact (it never lets more than its
// limit through); across buckets the request is not atomic: between a
// reservation and its give-back a concurrent request sees less room (it may
// be refused where one script would have let it through, never the
// reverse), and a give-back that fails leaves the reservation counted.
// Dry-run buckets after the refusing one are not evaluated.
asio::awaitable<ApplyResult> RedisRateStore::apply_bucket_by_bucket(std::vector<BucketCall> calls,
                                                                    std::int64_t now_ms) {
    ApplyResult out;
    const auto started = std::chrono::steady_clock::now();
    std::vector<std::size_t> reserved;
    bool failed = false;
    for (std::size_t i = 0; i < calls.size() && !failed && out.refused < 0; ++i) {
        const BucketCall& c = calls[i];
        auto left = timeout_ - std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now() - started);
        std::vector<std::string> keys{c.key};
        std::vector<std::string> args{std::to_string(now_ms), std::to_string(c.limit),
                                      std::to_string(c.window_ms), std::to_string(c.cost),
                                      c.consume ? "1" : "0", c.enforce ? "1" : "0"};
        auto result = co_await client_.eval(apply_script(), std::move(keys), std::move(args), left);
        const Reply& r = result.reply;
        if (!result.ok()) {
            out.error = result.failure != proto::redis::Failure::none ? result.error : r.str;
            failed = true;
        } else if (r.type != Reply::Type::array || r.elements.empty() ||
                   r.elements[0].type != Reply::Type::integer) {
            out.error = "unexpected reply from the rate script";
            failed = true;
        } else if (r.elements[0].integer != 0) {
            out.refused = static_cast<int>(i);
        } else if (r.elements.size() > 1) {
            out.dry_run_refused.push_back(static_cast<int>(i));
        } else if (c.consume && c.cost > 0) {
            reserved.push_back(i);
        }
    }
    if (failed || out.refused >= 0) {
        // In the background: the answer does not wait for the give-back.
        auto executor = co_await asio::this_coro::executor;
        for (std::size_t i : reserved) {
            std::vector<std::string> keys{calls[i].key};
            std::vector<std::string> args{std::to_string(calls[i].cost)};
            asio::co_spawn(executor, client_.eval(give_back_script(), std::move(keys), std::move(args), timeout_),
                           asio::detached);
        }
    }
    out.ok = !failed;
    co_return out;
}

double drained_level(double level, std::int64_t at_ms, std::int64_t now_ms, std::int64_t limit,
                     std::int64_t window_ms) {
    if (now_ms > at_ms && window_ms > 0)
        level -= static_cast<double>(now_ms - at_ms) * static_cast<double>(limit) /
                 static_cast<double>(window_ms);
    return std::max(level, 0.0);
}

BucketUsage read_usage(const proto::redis::Url& url, const std::string& key, std::int64_t limit,
                       std::int64_t window_ms, std::int64_t now_ms) {
    BucketUsage usage;
    Reply fields = proto::redis::command_sync(url, {"HMGET", key, "l", "t"});
    if (fields.is_error()) throw std::runtime_error(url.to_string() + ": " + fields.str);
    if (fields.type != Reply::Type::array || fields.elements.size() != 2)
        throw std::runtime_error(url.to_string() + ": unexpected reply to HMGET");
    if (fields.elements[0].type != Reply::Type::string) return usage;
    usage.exists = true;
    double level = 0;
    std::int64_t at = now_ms;
    try {
        level = std::stod(fields.elements[0].str);
        if (fields.elements[1].type == Reply::Type::string)
            at = static_cast<std::int64_t>(std::stod(fields.elements[1].str));
    } catch (const std::exception&) {
        throw std::runtime_error("bucket " + key + " holds no rate state");
    }
    usage.level = drained_level(level, at, now_ms, limit, window_ms);
    Reply ttl = proto::redis::command_sync(url, {"PTTL", key});
    if (ttl.type == Reply::Type::integer) usage.ttl_ms = ttl.integer;
    return usage;
}

bool reset_bucket(const proto::redis::Url& url, const std::string& key) {
    Reply r = proto::redis::command_sync(url, {"DEL", key});
    if (r.is_error()) throw std::runtime_error(url.to_string() + ": " + r.str);
    return r.type == Reply::Type::integer && r.integer > 0;
}

}  // namespace ratelimit
