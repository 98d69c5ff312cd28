#include "daemon/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

namespace proto::log {
namespace {

std::string g_program = "mailpolicy";
std::atomic<Format> g_format{Format::text};
std::atomic<Level> g_min_level{Level::info};
std::mutex g_program_mutex;

std::string_view level_name(Level l) {
    switch (l) {
        case Level::debug: return "debug";
        case Level::info: return "info";
        case Level::warning: return "warning";
        case Level::error: return "error";
        case Level::fatal: return "fatal";
    }
    return "info";
}

// The date and time up to the second are formatted once per second per
// thread: a busy daemon logs thousands of lines in each.
void append_timestamp(std::string& out) {
    using namespace std::chrono;
    auto now = system_clock::now();
    auto secs = system_clock::to_time_t(now);
    auto ms = static_cast<int>(duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000);
    thread_local std::time_t cached_secs = -1;
    thread_local char cached[64];
    if (secs != cached_secs) {
        std::tm tm{};
        gmtime_r(&secs, &tm);
        std::snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_secs = secs;
    }
    out += cached;
    out += static_cast<char>('0' + ms / 100);
    out += static_cast<char>('0' + ms / 10 % 10);
    out += static_cast<char>('0' + ms % 10);
    out += 'Z';
}

// The length of the well-formed UTF-8 sequence at s[i] (RFC 3629), or 0 if
// none starts there; *cp gets its code point.
std::size_t utf8_sequence(std::string_view s, std::size_t i, char32_t* cp) {
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
    unsigned char b0 = byte(0);
    std::size_t n;
    char32_t c;
    unsigned char lo = 0x80, hi = 0xbf;  // bounds of the second byte
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    } else if (b0 >= 0xc2 && b0 <= 0xdf) {
        n = 2;
        c = b0 & 0x1f;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
        n = 3;
        c = b0 & 0x0f;
        if (b0 == 0xe0) lo = 0xa0;  // overlong
        if (b0 == 0xed) hi = 0x9f;  // surrogates
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        n = 4;
        c = b0 & 0x07;
        if (b0 == 0xf0) lo = 0x90;  // overlong
        if (b0 == 0xf4) hi = 0x8f;  // above U+10FFFF
    } else {
        return 0;
    }
    if (i + n > s.size()) return 0;
    for (std::size_t k = 1; k < n; ++k) {
        unsigned char b = byte(k);
        if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf)) return 0;
        c = (c << 6) | (b & 0x3f);
    }
    *cp = c;
    return n;
}

// Code points that hide or reorder what a terminal shows: C1 controls and
// the bidirectional controls (Unicode TR 9).
bool invisible_control(char32_t c) {
    return (c >= 0x80 && c <= 0x9f) || c == 0x061c || c == 0x200e || c == 0x200f ||
           (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

constexpr char kHex[] = "0123456789abcdef";

void append_byte_escape(std::string& out, std::string_view backslash, unsigned char b) {
    out += backslash;
    out += 'x';
    out += kHex[b >> 4];
    out += kHex[b & 15];
}

void append_u_escape(std::string& out, char32_t c) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(c >> shift) & 15];
}

// The scheme of log.h. json: the body of a JSON string; otherwise text,
// where quote says whether '"' needs escaping (a quoted value) or not (the
// message).
void append_escaped(std::string& out, std::string_view s, bool json, bool quote = true) {
    // In JSON the scheme's backslash is itself written "\\".
    const std::string_view backslash = json ? "\\\\" : "\\";
    for (std::size_t i = 0; i < s.size();) {
        char32_t c = 0;
        std::size_t n = utf8_sequence(s, i, &c);
        if (n == 0) {
            append_byte_escape(out, backslash, static_cast<unsigned char>(s[i]));
            ++i;
            continue;
        }
        if (c == '\\') {
            out += backslash;
            out += backslash;
        } else if (c == '"' && (json || quote)) {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == 0x7f) {
            if (json)
                append_u_escape(out, c);
            else
                append_byte_escape(out, backslash, static_cast<unsigned char>(c));
        } else if (invisible_control(c)) {
            append_u_escape(out, c);
        } else {
            out.append(s.substr(i, n));
        }
        i += n;
    }
}

void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    append_escaped(out, s, true);
    out += '"';
}

// Text values are quoted when they hold anything but printable ASCII, or a
// space, quote, backslash or '=', so one line is always one record and
// fields cannot be forged.
void append_text_value(std::string& out, std::string_view s) {
    bool plain = !s.empty();
    for (unsigned char c : s)
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '=') plain = false;
    if (plain) {
        out += s;
        return;
    }
    out += '"';
    append_escaped(out, s, false);
    out += '"';
}

// One write per line (or per batch of whole lines) keeps lines whole across
// threads and processes.
void emit_raw(std::string_view text) {
    std::size_t off = 0;
    while (off < text.size()) {
        ssize_t n = ::write(2, text.data() + off, text.size() - off);
        if (n <= 0) return;
        off += static_cast<std::size_t>(n);
    }
}

std::string program() {
    std::lock_guard lock(g_program_mutex);
    return g_program;
}

std::string render(Level level, std::string_view message, std::initializer_list<Field> fields) {
    std::string line;
    line.reserve(256);
    if (g_format.load(std::memory_order_relaxed) == Format::json) {
        line += "{\"ts\":";
        line += '"';
        append_timestamp(line);
        line += "\",\"program\":";
        append_json_string(line, program());
        line += ",\"level\":\"";
        line += level_name(level);
        line += "\",\"msg\":";
        append_json_string(line, message);
        for (const auto& f : fields) {
            line += ',';
            append_json_string(line, f.key);
            line += ':';
            if (f.quoted_number && !f.value.empty())
                line += f.value;
            else
                append_json_string(line, f.value);
        }
        line += '}';
    } else {
        append_timestamp(line);
        line += ' ';
        line += program();
        line += ": ";
        line += level_name(level);
        line += ": ";
        append_escaped(line, message, false, false);
        for (const auto& f : fields) {
            line += ' ';
            line += f.key;
            line += '=';
            append_text_value(line, f.value);
        }
    }
    line += '\n';
    return line;
}

}  // namespace

void set_program(std::string name) {
    std::lock_guard lock(g_program_mutex);
    g_program = std::move(name);
}
void set_format(Format f) { g_format.store(f); }
Format format() { return g_format.load(); }
void set_min_level(Level l) { g_min_level.store(l); }

void write(Level level, std::string_view message) {
    if (level < g_min_level.load(std::memory_order_relaxed)) return;
    emit_raw(render(level, message, {}));
}

void event(Level level, std::string_view message, std::initializer_list<Field> fields) {
    if (level < g_min_level.load(std::memory_order_relaxed)) return;
    emit_raw(render(level, message, fields));
}

std::string format_event(Level level, std::string_view message, std::initializer_list<Field> fields) {
    if (level < g_min_level.load(std::memory_order_relaxed)) return {};
    return render(level, message, fields);
}

void write_lines(std::string_view lines) { emit_raw(lines); }

std::string millis(std::chrono::steady_clock::duration d) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    std::string out = std::to_string(us / 1000);
    out += '.';
    auto frac = us % 1000;
    out += static_cast<char>('0' + frac / 100);
    out += static_cast<char>('0' + frac / 10 % 10);
    out += static_cast<char>('0' + frac % 10);
    return out;
}

void fatal(std::string_view m) {
    emit_raw(render(Level::fatal, m, {}));
    std::exit(1);
}

}  // namespace proto::log
