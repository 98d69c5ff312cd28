#include "daemon/metrics.h"

#include <charconv>
#include <stdexcept>

namespace proto::metrics {
namespace {

std::string escape_label(const std::string& v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

std::string label_key(const Labels& labels) {
    std::string out;
    for (const auto& [k, v] : labels) {
        if (!out.empty()) out += ',';
        out += k + "=\"" + escape_label(v) + "\"";
    }
    return out;
}

std::string with_labels(const std::string& name, const std::string& key,
                        const std::string& extra = "") {
    std::string all = key;
    if (!extra.empty()) all += (all.empty() ? "" : ",") + extra;
    return all.empty() ? name : name + "{" + all + "}";
}

// The shortest text that reads back as the same double, as Prometheus's own
// clients print bucket bounds: 0.00025, not 0.00025000000000000001.
std::string number(double v) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
    return std::string(buf, r.ptr);
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<std::uint64_t>[bounds_.size()]) {
    for (std::size_t i = 0; i < bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double value) {
    for (std::size_t i = 0; i < bounds_.size(); ++i) {
        if (value <= bounds_[i]) {
            buckets_[i].fetch_add(1, std::memory_order_relaxed);
            break;
        }
    }
    count_.fetch_add(1, std::memory_order_relaxed);
    sum_micros_.fetch_add(static_cast<std::uint64_t>(value * 1e6), std::memory_order_relaxed);
}

double Histogram::sum() const { return static_cast<double>(sum_micros_.load()) / 1e6; }

std::vector<double> latency_buckets() {
    return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
            2.5,    5,       10};
}

Registry::Family& Registry::family(const std::string& name, const std::string& help,
                                   const char* type) {
    auto& f = families_[name];
    if (f.type.empty()) {
        f.type = type;
        f.help = help;
    } else if (f.type != type) {
        throw std::logic_error("metric " + name + " registered with two types");
    }
    return f;
}

Counter& Registry::counter(const std::string& name, const std::string& help,
                           const Labels& labels) {
    std::lock_guard lock(mutex_);
    auto& slot = family(name, help, "counter").counters[label_key(labels)];
    if (!slot) slot = std::make_unique<Counter>();
    return *slot;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
    std::lock_guard lock(mutex_);
    auto& slot = family(name, help, "gauge").gauges[label_key(labels)];
    if (!slot) slot = std::make_unique<Gauge>();
    return *slot;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help,
                               const Labels& labels, std::vector<double> bounds) {
    std::lock_guard lock(mutex_);
    auto& slot = family(name, help, "histogram").histograms[label_key(labels)];
    if (!slot) slot = std::make_unique<Histogram>(std::move(bounds));
    return *slot;
}

std::string Registry::render() const {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const auto& [name, f] : families_) {
        out += "# HELP " + name + " " + f.help + "\n";
        out += "# TYPE " + name + " " + f.type + "\n";
        for (const auto& [key, c] : f.counters)
            out += with_labels(name, key) + " " + std::to_string(c->value()) + "\n";
        for (const auto& [key, g] : f.gauges)
            out += with_labels(name, key) + " " + std::to_string(g->value()) + "\n";
        for (const auto& [key, h] : f.histograms) {
            std::uint64_t cumulative = 0;
            for (std::size_t i = 0; i < h->bounds().size(); ++i) {
                cumulative += h->bucket(i);
                out += with_labels(name + "_bucket", key, "le=\"" + number(h->bounds()[i]) + "\"") +
                       " " + std::to_string(cumulative) + "\n";
            }
            out += with_labels(name + "_bucket", key, "le=\"+Inf\"") + " " +
                   std::to_string(h->count()) + "\n";
            out += with_labels(name + "_sum", key) + " " + number(h->sum()) + "\n";
            out += with_labels(name + "_count", key) + " " + std::to_string(h->count()) + "\n";
        }
    }
    return out;
}

}  // namespace proto::metrics
