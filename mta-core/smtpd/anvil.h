// Client limits, anvil(8)'s job, kept in the process: concurrent sessions
// and event rates per client address, shared by every listener.
//
// Rates are counted as Postfix's anvil counts them: events per client in a
// window of anvil_rate_time_unit that starts with the client's first event
// and restarts when it has passed. A limit of 0 means no limit. Addresses in
// smtpd_client_event_limit_exceptions are not limited (the caller checks).
//
// Memory: one small entry per client seen in the last window; entries idle
// for a whole window with no open session are swept, and the table holds at
// most kMaxClients entries (the oldest idle ones go first), so a flood of
// source addresses cannot grow it without bound.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <unordered_map>

namespace mta::smtpd {

enum class AnvilEvent { connection, message, recipient, auth, new_tls_session };

class Anvil {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::size_t kMaxClients = 100000;

    // A new session from ip; false when count_limit concurrent sessions are
    // open (the new one is not counted then).
    bool open_session(const std::string& ip, std::size_t count_limit);
    void close_session(const std::string& ip);
    // Count one event; false when this one exceeds limit in the window.
    bool event(const std::string& ip, AnvilEvent what, std::size_t limit,
               std::chrono::seconds time_unit, Clock::time_point now = Clock::now());
    std::size_t clients() const { return clients_.size(); }

private:
    struct Client {
        std::size_t sessions = 0;
        Clock::time_point window_start{};
        std::size_t counts[5] = {0, 0, 0, 0, 0};
        Clock::time_point last_seen{};
    };
    void sweep(Clock::time_point now, std::chrono::seconds time_unit);
    std::unordered_map<std::string, Client> clients_;
    Clock::time_point last_sweep_{};
};

}  // namespace mta::smtpd
