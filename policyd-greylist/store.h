// GreylistStore: the narrow domain interface between the decider and the
// shared state. One call per decision, atomic, given `now` by the caller's
// clock; the store decides new / early retry / passed / known / client
// auto-whitelisted and records it in the same step.
//
// Key layout (StoreKeys) is shared by the store and the operator commands:
//   PREFIX:t:{CLIENT}:N:SENDER/RECIPIENT triplet, integer value:
//        > 0  first seen (seconds), waiting for a retry; TTL retry_window
//        < 0  minus last seen, passed; TTL max_age, refreshed on each sight
//   PREFIX:c:{CLIENT}                    client hash: n = counted successful
//        retries, l = when last counted, a = 1 if allowed by the operator;
//        TTL max_age, refreshed when counted
// CLIENT is the client key; both keys of one decision share the hash tag,
// so they live in one Redis Cluster slot. N is the length of SENDER in bytes
// (as written: "<>" for the null sender, "#" and a hash for one too long), so
// the split between sender and recipient is never ambiguous. With privacy,
// CLIENT and N:SENDER/RECIPIENT are keyed hashes (16 hex digits each) of the
// client key and of sender NUL recipient (NUL cannot occur in a request).
//
// Upgrade from the unprefixed SENDER/RECIPIENT layout: without privacy, old
// triplet keys are no longer looked up, so each triplet is greylisted once
// more (one extra deferral, the old keys expire by their TTL); client keys
// (PREFIX:c:, auto-whitelisting) and every key with privacy are unchanged.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "keyed_hash.h"

namespace greylist {

struct Triplet {
    std::string client;     // client key (client_key.h)
    std::string sender;     // normalised; "" for the null sender
    std::string recipient;  // lower case
};

// The greylisting rules, in seconds.
struct Rules {
    std::int64_t delay = 300;
    std::int64_t retry_window = 2 * 86400;
    std::int64_t max_age = 35 * 86400;
    std::int64_t auto_whitelist_clients = 5;  // 0 disables
    std::int64_t auto_whitelist_interval = 3600;
};

enum class Verdict {
    new_triplet,         // first sight (or forgotten): defer; seconds = delay
    early_retry,         // seen, delay not over: defer; seconds = time left
    passed,              // first retry after the delay: pass; seconds = waited
    known,               // passed before: pass
    client_whitelisted,  // auto-whitelisted or operator-allowed client: pass
};

std::string_view to_string(Verdict v);

struct Outcome {
    Verdict verdict = Verdict::new_triplet;
    std::int64_t seconds = 0;
    bool client_now_whitelisted = false;  // this pass made the client reach the threshold
};

struct StoreResult {
    std::optional<Outcome> outcome;  // empty on failure
    std::string error;               // why, for the log (never secrets)
};

class GreylistStore {
public:
    virtual ~GreylistStore() = default;
    virtual boost::asio::awaitable<StoreResult> check(const Triplet& triplet,
                                                      std::int64_t now) = 0;
};

// Redis key names for triplets and clients.
class StoreKeys {
public:
    StoreKeys(std::string prefix, std::optional<KeyedHash> privacy)
        : prefix_(std::move(prefix)), privacy_(privacy) {}

    std::string triplet(const Triplet& t) const;
    std::string client(std::string_view client_key) const;

private:
    std::string tag(std::string_view client_key) const;
    std::string prefix_;
    std::optional<KeyedHash> privacy_;
};

}  // namespace greylist
