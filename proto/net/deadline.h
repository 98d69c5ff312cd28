// A deadline for one asynchronous step: runs on_expiry (normally closing the
// socket, which fails the pending operation) if the time passes while the
// guard lives. The shared flag matters: a timer that already fired has its
// handler queued, and cancel() can no longer stop it. The handler holds only
// that flag and on_expiry, never the guard.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <memory>
#include <utility>

namespace proto::net {

class Deadline {
public:
    template <typename F>
    Deadline(boost::asio::any_io_executor ex, std::chrono::steady_clock::time_point at, F on_expiry)
        : timer_(ex, at), state_(std::make_shared<State>()) {
        timer_.async_wait([state = state_, f = std::move(on_expiry)](boost::system::error_code ec) mutable {
            if (ec || state->disarmed) return;
            state->expired = true;
            f();
        });
    }
    ~Deadline() {
        state_->disarmed = true;
        timer_.cancel();
    }
    Deadline(const Deadline&) = delete;
    Deadline& operator=(const Deadline&) = delete;
    bool expired() const { return state_->expired; }

private:
    struct State {
        bool disarmed = false;
        bool expired = false;
    };
    boost::asio::steady_timer timer_;
    std::shared_ptr<State> state_;
};

// on_expiry for a Deadline: close this socket (it must outlive the guard).
template <typename Socket>
auto closing(Socket& socket) {
    return [s = &socket] {
        boost::system::error_code ignored;
        s->close(ignored);
    };
}

}  // namespace proto::net
