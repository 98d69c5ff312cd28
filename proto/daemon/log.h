// Logging to stderr: graded diagnostics (info, warning, error, fatal) that
// start with the program name, as Postfix's do, and structured events such as
// the one decision line per request. Text for people, JSON for machines.
//
// Security: callers pass values, this file escapes them; never pass secrets
// (passwords, keyed-hash keys). Thread-safe: one write(2) per line.
//
// Escaping, one scheme for both formats, so that no input can forge a line
// or a field, drive a terminal, or make a JSON line invalid:
//   - a byte that does not belong to a well-formed UTF-8 sequence (RFC 3629:
//     no overlong forms, no surrogates, nothing above U+10FFFF) is written
//     as the four characters \xNN (NN: two lower-case hex digits);
//   - a backslash in the input is written as two backslashes. The original
//     bytes are recovered by reading \\ as one backslash and \xNN as the
//     byte NN (after JSON decoding, for JSON lines);
//   - well-formed UTF-8 is kept, except controls: C0 and DEL (JSON: \u00NN,
//     text: \xNN; \n \r \t as such), C1 (U+0080-U+009F) and the
//     bidirectional controls (U+061C, U+200E, U+200F, U+202A-U+202E,
//     U+2066-U+2069) as \uNNNN, and '"' as \".
// JSON: the above is the value a JSON parser returns (in the raw line each
// backslash of the scheme is itself escaped: "\\xff"); every line is one
// valid JSON object. Text: a value holding anything but printable ASCII, or
// a space, '"', '\' or '=', is quoted; the message is escaped the same way,
// unquoted (and with '"' as is).
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
