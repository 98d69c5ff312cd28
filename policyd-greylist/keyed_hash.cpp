// SipHash-2-4, from the paper's reference description; see keyed_hash.h.
#include "keyed_hash.h"

#include <cstring>

namespace greylist {

namespace {

inline std::uint64_t rotl(std::uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

inline std::uint64_t load_le64(const std::uint8_t* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

inline void sip_round(std::uint64_t& v0, std::uint64_t& v1, std::uint64_t& v2, std::uint64_t& v3) {
    v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
    v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
    v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
    v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
}

}  // namespace

std::uint64_t siphash24(const std::array<std::uint8_t, 16>& key, std::string_view data) {
    const std::uint64_t k0 = load_le64(key.data());
    const std::uint64_t k1 = load_le64(key.data() + 8);
    std::uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    std::uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    std::uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    std::uint64_t v3 = 0x7465646279746573ULL ^ k1;
    const auto* in = reinterpret_cast<const std::uint8_t*>(data.data());
    const std::size_t len = data.size();
    const std::size_t full = len - (len % 8);
    for (std::size_t i = 0; i < full; i += 8) {
        std::uint64_t m = load_le64(in + i);
        v3 ^= m;
        sip_round(v0, v1, v2, v3);
        sip_round(v0, v1, v2, v3);
        v0 ^= m;
    }
    std::uint64_t b = static_cast<std::uint64_t>(len) << 56;
    for (std::size_t i = 0; i < len % 8; ++i) b |= static_cast<std::uint64_t>(in[full + i]) << (8 * i);
    v3 ^= b;
    sip_round(v0, v1, v2, v3);
    sip_round(v0, v1, v2, v3);
    v0 ^= b;
    v2 ^= 0xff;
    for (int i = 0; i < 4; ++i) sip_round(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

KeyedHash KeyedHash::from_secret(std::string_view secret) {
    // Two PRF calls under fixed, distinct keys compress the secret to 128 bits.
    Key fixed_a{}, fixed_b{};
    for (std::size_t i = 0; i < 16; ++i) {
        fixed_a[i] = static_cast<std::uint8_t>(i);
        fixed_b[i] = static_cast<std::uint8_t>(0x80 + i);
    }
    std::uint64_t a = siphash24(fixed_a, secret);
    std::uint64_t b = siphash24(fixed_b, secret);
    Key key{};
    for (int i = 0; i < 8; ++i) {
        key[i] = static_cast<std::uint8_t>(a >> (8 * i));
        key[8 + i] = static_cast<std::uint8_t>(b >> (8 * i));
    }
    return KeyedHash(key);
}

std::uint64_t KeyedHash::operator()(std::string_view data) const { return siphash24(key_, data); }

std::string KeyedHash::hex(std::string_view data) const {
    static constexpr char digits[] = "0123456789abcdef";
    std::uint64_t h = (*this)(data);
    std::string out(16, '0');
    for (int i = 15; i >= 0; --i) {
        out[static_cast<std::size_t>(i)] = digits[h & 0xf];
        h >>= 4;
    }
    return out;
}

}  // namespace greylist
