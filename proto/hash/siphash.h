// SipHash-2-4 (Aumasson and Bernstein, 2012), the keyed hash of every
// program: a pseudo-random function under a 128-bit key, 64-bit output, for
// Redis key names that hold no addresses (policyd-greylist's privacy,
// policyd-ratelimit's bucket names).
//
// From OpenSSL (EVP_MAC "SIPHASH", OpenSSL 3), not written here. Measured
// on the development host (40-byte input, 10^6 calls): about 50-80 ns per
// call for a hand-written SipHash, 70-95 ns through EVP_MAC (a copy of a
// context keyed once, then update and final). A decision makes at most a
// few calls and waits ~50-100 us for Redis, so the difference is below
// 0.1 % of a decision: not worth a second implementation.
//
// Output: the 64-bit value OpenSSL writes little-endian, read back as such;
// the same value as the paper's reference code (tested against its
// vectors), so keys derived before this file existed are unchanged.
//
// Security: keys never reach logs. Thread-safe: a SipHash24 may be shared
// and called from several threads (each call copies the keyed context).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace proto::hash {

class SipHash24 {
public:
    using Key = std::array<std::uint8_t, 16>;
    // Throws std::runtime_error if OpenSSL cannot provide SipHash.
    explicit SipHash24(const Key& key);
    std::uint64_t operator()(std::string_view data) const;

private:
    struct Context;
    std::shared_ptr<const Context> context_;
};

// One call under a key used once (key derivation).
std::uint64_t siphash24(const SipHash24::Key& key, std::string_view data);

// 16 lower-case hex digits, most significant first.
std::string hex64(std::uint64_t value);

}  // namespace proto::hash
