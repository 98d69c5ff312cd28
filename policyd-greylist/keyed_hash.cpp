// The privacy key derivation; see keyed_hash.h.
#include "keyed_hash.h"

namespace greylist {

KeyedHash KeyedHash::from_secret(std::string_view secret) {
    // Two PRF calls under fixed, distinct keys compress the secret to 128
    // bits. Changing this changes every privacy key in Redis.
    Key fixed_a{}, fixed_b{};
    for (std::size_t i = 0; i < 16; ++i) {
        fixed_a[i] = static_cast<std::uint8_t>(i);
        fixed_b[i] = static_cast<std::uint8_t>(0x80 + i);
    }
    std::uint64_t a = proto::hash::siphash24(fixed_a, secret);
    std::uint64_t b = proto::hash::siphash24(fixed_b, secret);
    Key key{};
    for (int i = 0; i < 8; ++i) {
        key[i] = static_cast<std::uint8_t>(a >> (8 * i));
        key[8 + i] = static_cast<std::uint8_t>(b >> (8 * i));
    }
    return KeyedHash(key);
}

}  // namespace greylist
