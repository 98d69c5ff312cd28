// SipHash-2-4 and bucket names. See bucket_key.h.
#include "bucket_key.h"

#include "rule.h"

namespace ratelimit {

namespace {

inline std::uint64_t rotl(std::uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

inline std::uint64_t load64(const std::uint8_t* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

inline void round(std::uint64_t& v0, std::uint64_t& v1, std::uint64_t& v2, std::uint64_t& v3) {
    v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
    v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
    v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
    v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
}

}  // namespace

std::uint64_t siphash24(const std::array<std::uint8_t, 16>& key, std::string_view data) {
    const std::uint64_t k0 = load64(key.data()), k1 = load64(key.data() + 8);
    std::uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1,
                  v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    const auto* in = reinterpret_cast<const std::uint8_t*>(data.data());
    const std::size_t len = data.size();
    const std::size_t full = len - (len % 8);
    for (std::size_t i = 0; i < full; i += 8) {
        std::uint64_t m = load64(in + i);
        v3 ^= m;
        round(v0, v1, v2, v3);
        round(v0, v1, v2, v3);
        v0 ^= m;
    }
    std::uint64_t b = static_cast<std::uint64_t>(len) << 56;
    for (std::size_t i = 0; i < len % 8; ++i) b |= static_cast<std::uint64_t>(in[full + i]) << (8 * i);
    v3 ^= b;
    round(v0, v1, v2, v3);
    round(v0, v1, v2, v3);
    v0 ^= b;
    v2 ^= 0xff;
    for (int i = 0; i < 4; ++i) round(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

BucketNamer::BucketNamer(std::string prefix, std::string_view secret) : prefix_(std::move(prefix)) {
    // Derive 16 key bytes from text of any length with two fixed-key hashes.
    std::array<std::uint8_t, 16> fixed{};
    std::uint64_t a = siphash24(fixed, std::string("ratelimit-key-0:").append(secret));
    std::uint64_t b = siphash24(fixed, std::string("ratelimit-key-1:").append(secret));
    for (int i = 0; i < 8; ++i) {
        key_[i] = static_cast<std::uint8_t>(a >> (8 * i));
        key_[8 + i] = static_cast<std::uint8_t>(b >> (8 * i));
    }
}

std::string BucketNamer::name(std::string_view rule, const std::vector<std::string>& values) const {
    std::string input(rule);
    input += '\0';
    input += join_key(values);
    // 128 bits from two domain-separated 64-bit hashes: no collisions in practice.
    std::uint64_t h1 = siphash24(key_, input);
    input += '\x01';
    std::uint64_t h2 = siphash24(key_, input);
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
