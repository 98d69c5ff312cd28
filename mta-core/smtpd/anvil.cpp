// Client limits; see anvil.h.
#include "smtpd/anvil.h"

#include <algorithm>
#include <vector>

namespace mta::smtpd {

bool Anvil::open_session(const std::string& ip, std::size_t count_limit) {
    auto& c = clients_[ip];
    c.last_seen = Clock::now();
    if (count_limit > 0 && c.sessions >= count_limit) return false;
    ++c.sessions;
    return true;
}

void Anvil::close_session(const std::string& ip) {
    auto it = clients_.find(ip);
    if (it != clients_.end() && it->second.sessions > 0) --it->second.sessions;
}

bool Anvil::event(const std::string& ip, AnvilEvent what, std::size_t limit,
                  std::chrono::seconds time_unit, Clock::time_point now) {
    if (now - last_sweep_ > time_unit || clients_.size() > kMaxClients) sweep(now, time_unit);
    auto& c = clients_[ip];
    c.last_seen = now;
    if (now - c.window_start >= time_unit) {
        c.window_start = now;
        std::fill(std::begin(c.counts), std::end(c.counts), 0);
    }
    auto& n = c.counts[static_cast<int>(what)];
    ++n;
    return limit == 0 || n <= limit;
}

void Anvil::sweep(Clock::time_point now, std::chrono::seconds time_unit) {
    last_sweep_ = now;
    for (auto it = clients_.begin(); it != clients_.end();) {
        if (it->second.sessions == 0 && now - it->second.last_seen >= time_unit)
            it = clients_.erase(it);
        else
            ++it;
    }
    if (clients_.size() <= kMaxClients) return;
    // Still too many: drop the idle ones seen longest ago.
    std::vector<std::pair<Clock::time_point, std::string>> idle;
    for (const auto& [ip, c] : clients_)
        if (c.sessions == 0) idle.emplace_back(c.last_seen, ip);
    std::sort(idle.begin(), idle.end());
    for (const auto& [seen, ip] : idle) {
        if (clients_.size() <= kMaxClients * 9 / 10) break;
        clients_.erase(ip);
    }
}

}  // namespace mta::smtpd
