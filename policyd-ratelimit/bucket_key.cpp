// Bucket names. See bucket_key.h.
#include "bucket_key.h"

#include "rule.h"

namespace ratelimit {

BucketNamer::BucketNamer(std::string prefix, std::string_view secret) : prefix_(std::move(prefix)) {
    // Derive 16 key bytes from text of any length with two fixed-key hashes.
    // Changing this renames every bucket in Redis.
    proto::hash::SipHash24::Key fixed{}, key{};
    std::uint64_t a = proto::hash::siphash24(fixed, std::string("ratelimit-key-0:").append(secret));
    std::uint64_t b = proto::hash::siphash24(fixed, std::string("ratelimit-key-1:").append(secret));
    for (int i = 0; i < 8; ++i) {
        key[i] = static_cast<std::uint8_t>(a >> (8 * i));
        key[8 + i] = static_cast<std::uint8_t>(b >> (8 * i));
    }
    hash_ = proto::hash::SipHash24(key);
}

std::string BucketNamer::name(std::string_view rule, const std::vector<std::string>& values) const {
    std::string input(rule);
    input += '\0';
    input += join_key(values);
    // 128 bits from two domain-separated 64-bit hashes: no collisions in practice.
    std::uint64_t h1 = hash_(input);
    input += '\x01';
    std::uint64_t h2 = hash_(input);
    static const char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(prefix_.size() + 4 + 32 + 1);
    out += prefix_;
    out += ":b:{";
    for (std::uint64_t h : {h1, h2})
        for (int i = 60; i >= 0; i -= 4) out += hex[(h >> i) & 15];
    out += '}';
    return out;
}

}  // namespace ratelimit
