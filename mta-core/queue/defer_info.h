// Why a message waits and until when: what `mta-core queue list` shows for a
// deferred message (Postfix keeps the same in its defer/ logs and in the
// deferred file's time). Advisory: the queue file alone decides delivery, so
// this is written without fsync and a missing or bad one is only not shown.
//
//   next=EPOCH
//   warned=1                 the delay notice went out (absent otherwise)
//   rcpt=ADDRESS REASON      one per recipient still waiting (%XX-escaped)
//
// No I/O; queue_store.h reads and writes the files under defer/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mta::queue {

struct DeferInfo {
    std::int64_t next_attempt = 0;  // seconds since the epoch
    bool warned = false;            // the sender had its delay notice (delay_warning_time)
    std::vector<std::pair<std::string, std::string>> reasons;  // recipient, reason
};

// Bounds for what is read back: a reason is a server's reply or ours.
inline constexpr std::size_t max_defer_reasons = 10000;
inline constexpr std::size_t max_defer_reason = 1000;

std::string serialize(const DeferInfo& info);
std::optional<DeferInfo> parse_defer_info(std::string_view text);

}  // namespace mta::queue
