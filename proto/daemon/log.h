// Logging to stderr: graded diagnostics (info, warning, error, fatal) that
// start with the program name, as Postfix's do, and structured events such as
// the one decision line per request. Text for people, JSON for machines.
//
// Security: callers pass values, this file escapes them; never pass secrets
// (passwords, keyed-hash keys). Thread-safe: one write(2) per line.
#pragma once

#include <chrono>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace proto::log {

enum class Level { debug, info, warning, error, fatal };
enum class Format { text, json };

void set_program(std::string name);
void set_format(Format format);
Format format();
void set_min_level(Level level);

// One field of a structured line; numbers are passed as text.
struct Field {
    std::string_view key;
    std::string_view value;
    bool quoted_number = false;  // JSON: emit value unquoted (a number)
};

void write(Level level, std::string_view message);
// message then key=value fields (text) or one JSON object (json).
void event(Level level, std::string_view message, std::initializer_list<Field> fields);

// The same line as event() would write, with its newline, for callers that
// batch lines (empty when the level is filtered out); write_lines() writes
// such a batch with as few write(2) calls as its size allows.
std::string format_event(Level level, std::string_view message, std::initializer_list<Field> fields);
void write_lines(std::string_view lines);

// A duration as milliseconds with three decimals ("12.345"), for the
// latency field of decision lines; no floating-point printf on the hot path.
std::string millis(std::chrono::steady_clock::duration d);

inline void debug(std::string_view m) { write(Level::debug, m); }
inline void info(std::string_view m) { write(Level::info, m); }
inline void warning(std::string_view m) { write(Level::warning, m); }
inline void error(std::string_view m) { write(Level::error, m); }
// Logs and exits 1 (configuration errors at startup).
[[noreturn]] void fatal(std::string_view m);

}  // namespace proto::log
