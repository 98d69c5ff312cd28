// SipHash-2-4 (Aumasson and Bernstein, 2012): a fast keyed pseudo-random
// function, used for `privacy: true` so Redis holds keyed hashes of client
// keys and addresses, never the values. 64-bit output: a collision between two
// triplets needs ~2^32 of them under one client key, and would only let one
// retry pass for the other.
//
// Security: the key comes from privacy_key_file and never reaches logs.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace greylist {

class KeyedHash {
public:
    using Key = std::array<std::uint8_t, 16>;
    KeyedHash() = default;
    explicit KeyedHash(const Key& key) : key_(key) {}
    // Derive a 16-byte key from secret text of any length.
    static KeyedHash from_secret(std::string_view secret);

    std::uint64_t operator()(std::string_view data) const;
    // 16 lower-case hex digits.
    std::string hex(std::string_view data) const;

private:
    Key key_{};
};

std::uint64_t siphash24(const std::array<std::uint8_t, 16>& key, std::string_view data);

}  // namespace greylist
