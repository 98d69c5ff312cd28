// Time as an argument: deciders ask an injected clock, so tests of delays run
// against real Redis with a manual clock and never sleep.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace proto {

class Clock {
public:
    virtual ~Clock() = default;
    // Milliseconds since the Unix epoch.
    virtual std::int64_t now_ms() const = 0;
    std::int64_t now_seconds() const { return now_ms() / 1000; }
};

class SystemClock final : public Clock {
public:
    std::int64_t now_ms() const override {
        using namespace std::chrono;
        return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
    }
};

class ManualClock final : public Clock {
public:
    explicit ManualClock(std::int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
    std::int64_t now_ms() const override { return now_.load(); }
    void set_ms(std::int64_t ms) { now_.store(ms); }
    void advance_seconds(std::int64_t s) { now_.fetch_add(s * 1000); }
    void advance_ms(std::int64_t ms) { now_.fetch_add(ms); }

private:
    std::atomic<std::int64_t> now_;
};

}  // namespace proto
