// The message header as mta-core reads and writes it: CRLF lines, the
// header ending at the first empty line. Used where a message is queued
// (hop count, fields added to submissions, the maillog's message-id) and
// where a bounce is written.
#pragma once

#include <cstddef>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace mta {

// "Mon, 30 Nov 2026 05:36:38 +0000 (UTC)": RFC 5322 3.3 date-time in local
// time, with the zone name as a comment, as Postfix writes it.
std::string rfc5322_date(std::time_t t);

// Header fields called name (case-insensitive, without the colon).
std::size_t count_fields(std::string_view message, std::string_view name);
// The first such field's value on its first line, leading blanks removed.
std::optional<std::string_view> field_value(std::string_view message, std::string_view name);

// Postfix's header_size_limit (postconf(5): "If a header is larger, the
// excess is discarded"): a header field, its first line with its folded
// continuation lines, longer than limit bytes keeps its first limit bytes,
// cut at a line end where one falls inside them, so every line still ends
// with CRLF. Returns how many fields were cut.
std::size_t truncate_long_fields(std::string& message, std::size_t limit);

}  // namespace mta
