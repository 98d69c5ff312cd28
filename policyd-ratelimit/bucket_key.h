// Bucket names in Redis: PREFIX:b:{HASH}, where HASH is a 128-bit SipHash-2-4
// (proto/hash) of the rule name and the normalised key values, under a key
// the operator may set (`hash_key`). Hashing keeps user names and addresses
// out of Redis (with a secret key: not even recoverable by guessing), gives fixed-length
// keys whatever the input, and keeps braces in values from changing the
// Redis Cluster hash tag.
//
// Security: the hash key never reaches logs or Redis.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "hash/siphash.h"

namespace ratelimit {

class BucketNamer {
public:
    BucketNamer() = default;
    // secret: any text ("" = a fixed public key: names are then hashes anyone
    // can recompute from a guess).
    BucketNamer(std::string prefix, std::string_view secret);
    std::string name(std::string_view rule, const std::vector<std::string>& values) const;
    const std::string& prefix() const { return prefix_; }

private:
    std::string prefix_ = "rl";
    proto::hash::SipHash24 hash_{proto::hash::SipHash24::Key{}};
};

}  // namespace ratelimit
