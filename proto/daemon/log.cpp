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

void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);  // UTF-8 passes through
                }
        }
    }
    out += '"';
}

// Text values are quoted when they hold spaces, quotes or control characters,
// so one line is always one record and fields cannot be forged.
void append_text_value(std::string& out, std::string_view s) {
    bool plain = !s.empty();
    for (unsigned char c : s)
        if (c <= 0x20 || c == '"' || c == '\\' || c == 0x7f || c == '=') plain = false;
    if (plain) {
        out += s;
        return;
    }
    append_json_string(out, s);
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
        for (unsigned char c : message) line += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
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
