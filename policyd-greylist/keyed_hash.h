// The keyed hash for `privacy: true`: Redis holds keyed hashes of client
// keys and addresses, never the values. SipHash-2-4 (proto/hash), 64-bit
// output: a collision between two triplets needs ~2^32 of them under one
// client key, and would only let one retry pass for the other.
//
// Security: the key comes from privacy_key_file and never reaches logs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "hash/siphash.h"

namespace greylist {

class KeyedHash {
public:
    using Key = proto::hash::SipHash24::Key;
    KeyedHash() : KeyedHash(Key{}) {}  // the all-zero key: hashing, not secrecy
    explicit KeyedHash(const Key& key) : hash_(key) {}
    // Derive a 16-byte key from secret text of any length.
    static KeyedHash from_secret(std::string_view secret);

    std::uint64_t operator()(std::string_view data) const { return hash_(data); }
    // 16 lower-case hex digits.
    std::string hex(std::string_view data) const { return proto::hash::hex64(hash_(data)); }

private:
    proto::hash::SipHash24 hash_;
};

}  // namespace greylist
