// GreylistStore on Redis: one EVALSHA of one Lua script per decision, so the
// read-decide-write is atomic across every daemon sharing the server (200
// concurrent first sights of one triplet make exactly one first-seen record)
// and costs one round trip on the multiplexed connection.
//
// Time is an argument (`now` from the caller's clock); TTLs only collect
// garbage and are set to the moment the record stops mattering anyway.
// Failures (timeout, disconnect, error reply, malformed reply) come back as
// StoreResult errors within the client's per-call deadline; the decider
// answers its fallback.
#pragma once

#include <chrono>

#include "redis/client.h"
#include "store.h"

namespace greylist {

class RedisGreylistStore final : public GreylistStore {
public:
    RedisGreylistStore(proto::redis::Client& client, StoreKeys keys, Rules rules,
                       std::chrono::milliseconds deadline);

    boost::asio::awaitable<StoreResult> check(const Triplet& triplet, std::int64_t now) override;


private:
    proto::redis::Client& client_;
    StoreKeys keys_;
    std::chrono::milliseconds deadline_;
    proto::redis::Script script_;  // the rules are constants in its text
};

}  // namespace greylist
