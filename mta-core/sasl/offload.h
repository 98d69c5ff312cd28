// Run a blocking call on a worker executor and resume the awaiting
// coroutine on its own executor, or give up after a deadline: the call then
// still finishes on the worker (a library call cannot be interrupted), but
// its result is dropped and the caller gets on_timeout at once.
//
// Like proto/daemon/blocking.h, a plain function returning async_initiate,
// not a coroutine (g++ 12 and capturing lambdas in co_await expressions).
// f and its captures must not refer to the caller's frame: it may outlive it.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace mta::sasl {

template <class R, class F>
auto offload(boost::asio::any_io_executor worker, boost::asio::any_io_executor home,
             std::chrono::milliseconds timeout, R on_timeout, F f) {
    namespace asio = boost::asio;
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(R)>(
        [worker = std::move(worker), home = std::move(home), timeout, on_timeout = std::move(on_timeout),
         f = std::move(f)](auto handler) mutable {
            using Handler = decltype(handler);
            // Completed exactly once, by whichever of the worker's result
            // and the timer comes first; both are posted to home.
            struct State {
                explicit State(asio::any_io_executor ex, Handler h) : timer(ex), handler(std::move(h)) {}
                asio::steady_timer timer;
                std::optional<Handler> handler;
                std::atomic<bool> done{false};
            };
            auto state = std::make_shared<State>(home, std::move(handler));
            state->timer.expires_after(timeout);
            state->timer.async_wait([state, on_timeout = std::move(on_timeout)](boost::system::error_code ec) mutable {
                if (ec || state->done.exchange(true)) return;
                auto h = std::move(*state->handler);
                state->handler.reset();
                h(std::move(on_timeout));
            });
            asio::post(worker, [state, home, f = std::move(f)]() mutable {
                R result = f();
                asio::post(home, [state, result = std::move(result)]() mutable {
                    if (state->done.exchange(true)) return;
                    state->timer.cancel();
                    auto h = std::move(*state->handler);
                    state->handler.reset();
                    h(std::move(result));
                });
            });
        },
        asio::use_awaitable);
}

// Postfix's printable(): every byte outside printable ASCII becomes '?', so
// a name from a backend can be logged and used in headers as it is.
inline std::string printable(std::string text) {
    for (auto& c : text)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
    return text;
}

}  // namespace mta::sasl
