// Prometheus metrics: counters, gauges and histograms in one registry,
// rendered as text exposition format at /metrics.
//
// Metric objects are created once (or looked up by labels) and then updated
// lock-free; references stay valid for the registry's lifetime. Counters are
// also the test oracle: tests read them through value().
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace proto::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
public:
    void inc(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

class Gauge {
public:
    void inc(std::int64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
    void dec(std::int64_t n = 1) { value_.fetch_sub(n, std::memory_order_relaxed); }
    void set(std::int64_t v) { value_.store(v, std::memory_order_relaxed); }
    std::int64_t value() const { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::int64_t> value_{0};
};

class Histogram {
public:
    explicit Histogram(std::vector<double> bounds);
    void observe(double value);
    std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
    const std::vector<double>& bounds() const { return bounds_; }
    std::uint64_t bucket(std::size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }
    double sum() const;

private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;
    std::atomic<std::uint64_t> count_{0};
    std::atomic<std::uint64_t> sum_micros_{0};
};

// Latency buckets in seconds, from 100 us to 10 s.
std::vector<double> latency_buckets();

class Registry {
public:
    Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
    Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
    Histogram& histogram(const std::string& name, const std::string& help,
                         const Labels& labels = {}, std::vector<double> bounds = latency_buckets());
    std::string render() const;

private:
    struct Family {
        std::string help;
        std::string type;
        std::map<std::string, std::unique_ptr<Counter>> counters;
        std::map<std::string, std::unique_ptr<Gauge>> gauges;
        std::map<std::string, std::unique_ptr<Histogram>> histograms;
    };
    Family& family(const std::string& name, const std::string& help, const char* type);

    mutable std::mutex mutex_;
    std::map<std::string, Family> families_;
};

}  // namespace proto::metrics
