// The Redis greylist store and the key layout; see redis_store.h, store.h.
#include "redis_store.h"

namespace greylist {

namespace {

// Addresses longer than this are stored as a hash: keys stay small and a
// hostile 8 KiB sender cannot make 8 KiB keys. RFC 5321 4.5.3.1.3: a path is
// at most 256 octets.
constexpr std::size_t kMaxClearAddress = 256;

// KEYS[1] triplet, KEYS[2] client; ARGV[1] now. The rules are constants in
// the text (script_source), so a call carries three arguments, not eight.
// Returns one integer: verdict + 8 * client_now_whitelisted + 16 * seconds,
// with verdict 0 new, 1 early retry, 2 passed, 3 known, 4 client whitelisted.
// A known triplet's last sight is rewritten at most once a second.
constexpr const char* kScript = R"lua(
local now = tonumber(ARGV[1])
local c = redis.call('HMGET', KEYS[2], 'n', 'l', 'a')
local count = tonumber(c[1]) or 0
local last = tonumber(c[2])
local due = last == nil or now >= last + INTERVAL or last > now
if c[3] == '1' or (AWL > 0 and count >= AWL) then
  if due then
    redis.call('HSET', KEYS[2], 'n', count + 1, 'l', now)
    redis.call('EXPIRE', KEYS[2], MAX_AGE)
  end
  return 4 + 16 * count
end

local v = tonumber(redis.call('GET', KEYS[1]))
if v then
  if v < 0 then
    if now + v <= MAX_AGE then
      if v ~= -now then redis.call('SET', KEYS[1], -now, 'EX', MAX_AGE) end
      return 3
    end
  else
    local age = now - v
    if age < 0 then age = 0 end
    if age <= WINDOW then
      if age < DELAY then
        return 1 + 16 * (DELAY - age)
      end
      redis.call('SET', KEYS[1], -now, 'EX', MAX_AGE)
      local reached = 0
      if AWL > 0 and due then
        count = count + 1
        redis.call('HSET', KEYS[2], 'n', count, 'l', now)
        redis.call('EXPIRE', KEYS[2], MAX_AGE)
        if count == AWL then reached = 8 end
      end
      return 2 + reached + 16 * age
    end
  end
end
redis.call('SET', KEYS[1], now, 'EX', WINDOW)
return 16 * DELAY
)lua";

// The script with the rules written in as numbers.
std::string script_source(const Rules& rules) {
    std::string text = "local DELAY, WINDOW, MAX_AGE, AWL, INTERVAL = " + std::to_string(rules.delay) +
                       ", " + std::to_string(rules.retry_window) + ", " +
                       std::to_string(rules.max_age) + ", " +
                       std::to_string(rules.auto_whitelist_clients) + ", " +
                       std::to_string(rules.auto_whitelist_interval);
    return text + kScript;
}

void append_address(std::string& out, std::string_view address) {
    if (address.empty()) {
        out += "<>";
    } else if (address.size() > kMaxClearAddress) {
        out += '#';
        out += KeyedHash().hex(address);
    } else {
        out += address;
    }
}

}  // namespace

std::string_view to_string(Verdict v) {
    switch (v) {
        case Verdict::new_triplet: return "new";
        case Verdict::early_retry: return "early_retry";
        case Verdict::passed: return "passed";
        case Verdict::known: return "known";
        case Verdict::client_whitelisted: return "client_whitelisted";
    }
    return "unknown";
}

std::string StoreKeys::tag(std::string_view client_key) const {
    std::string out;
    out.reserve(prefix_.size() + 24 + client_key.size());
    out += prefix_;
    out += ":?:{";
    out += privacy_ ? privacy_->hex(client_key) : std::string(client_key);
    out += '}';
    return out;
}

std::string StoreKeys::triplet(const Triplet& t) const {
    std::string key = tag(t.client);
    key[prefix_.size() + 1] = 't';
    key += ':';
    if (privacy_) {
        std::string both;
        both.reserve(t.sender.size() + 1 + t.recipient.size());
        both += t.sender;
        both += '\0';  // cannot occur in either address
        both += t.recipient;
        key += privacy_->hex(both);
    } else {
        // Length-prefixed, so no address can move the boundary: "/" and ":"
        // may occur in local parts, and ("q@x.example/bob", "z@example.org")
        // must not share a key with ("q@x.example", "bob/z@example.org").
        std::string sender;
        append_address(sender, t.sender);
        key += std::to_string(sender.size());
        key += ':';
        key += sender;
        key += '/';
        append_address(key, t.recipient);
    }
    return key;
}

std::string StoreKeys::client(std::string_view client_key) const {
    std::string key = tag(client_key);
    key[prefix_.size() + 1] = 'c';
    return key;
}

RedisGreylistStore::RedisGreylistStore(proto::redis::Client& client, StoreKeys keys, Rules rules,
                                       std::chrono::milliseconds deadline)
    : client_(client),
      keys_(std::move(keys)),
      deadline_(deadline),
      script_(script_source(rules)) {}

boost::asio::awaitable<StoreResult> RedisGreylistStore::check(const Triplet& triplet,
                                                              std::int64_t now) {
    using proto::redis::Reply;
    // Built outside the co_await expression: GCC 12 miscompiles braced lists there.
    std::vector<std::string> keys;
    keys.reserve(2);
    keys.push_back(keys_.triplet(triplet));
    keys.push_back(keys_.client(triplet.client));
    std::vector<std::string> args;
    args.push_back(std::to_string(now));
    auto result = co_await client_.eval(script_, std::move(keys), std::move(args), deadline_);
    StoreResult out;
    if (!result.ok()) {
        out.error = result.failure != proto::redis::Failure::none ? result.error
                                                                  : "redis: " + result.reply.str;
        co_return out;
    }
    const Reply& r = result.reply;
    if (r.type != Reply::Type::integer || r.integer < 0 || (r.integer & 7) > 4) {
        out.error = "redis: unexpected reply from the greylist script";
        co_return out;
    }
    Outcome o;
    o.verdict = static_cast<Verdict>(r.integer & 7);
    o.client_now_whitelisted = (r.integer & 8) != 0;
    o.seconds = r.integer >> 4;
    out.outcome = o;
    co_return out;
}

}  // namespace greylist
