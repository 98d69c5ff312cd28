// Blocking DNS for the SPF workers: libresolv's res_nquery with a per-thread
// resolver state, and one shared, bounded, TTL-respecting answer cache.
//
// Each worker thread owns its res_state (res_nquery is thread-safe that way)
// and reads /etc/resolv.conf once. A query never waits past the caller's
// deadline: the per-try timeout is clipped to the time left. Temporary
// failures (timeouts, SERVFAIL) are never cached; negative answers are cached
// for the SOA's negative TTL, capped. Limits: max_entries answers in the
// cache (oldest insertions evicted first), TTLs capped at max_ttl.
//
// Security: answers are hostile input. Only RRs of the queried type in the
// answer section are used; names are uncompressed with libresolv's bounded
// ns_name_uncompress; TXT strings are kept as raw bytes (length-prefixed,
// never NUL-terminated C strings).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace spf::dns {

enum class Status { ok, nxdomain, nodata, temporary };

struct Answer {
    Status status = Status::temporary;
    // A: 4 bytes, AAAA: 16 bytes, MX/PTR: the host name, TXT: the strings of
    // one RR concatenated (RFC 7208 3.3).
    std::vector<std::string> records;
    std::uint32_t ttl = 0;  // seconds
};

class Cache {
public:
    Cache(std::size_t max_entries, std::chrono::seconds max_ttl, std::chrono::seconds negative_ttl);
    std::optional<Answer> get(std::string_view name, int type);
    void put(std::string_view name, int type, const Answer& answer);
    std::size_t size() const;

private:
    using Clock = std::chrono::steady_clock;
    struct Entry {
        Answer answer;
        Clock::time_point expires;
    };
    static std::string key(std::string_view name, int type);

    mutable std::mutex mutex_;
    std::unordered_map<std::string, Entry> map_;
    std::deque<std::string> order_;  // insertion order, for eviction
    std::size_t max_entries_;
    std::chrono::seconds max_ttl_;
    std::chrono::seconds negative_ttl_;
};

// One query, blocking, bounded by deadline. Uses the cache when given.
// Counts: queries actually sent go to *sent when not null.
Answer query(std::string_view name, int type, std::chrono::steady_clock::time_point deadline,
             Cache* cache);

// Parse a DNS response (exposed for tests and fuzzing).
Answer parse_response(const unsigned char* msg, int len, int type);

}  // namespace spf::dns
