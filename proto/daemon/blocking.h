// Run a blocking call (fsync, a library without an asynchronous API) on a
// worker pool and resume the awaiting coroutine on its own executor with the
// result, so the I/O thread never blocks.
//
// A plain function, not a coroutine: g++ 12 destroys a capturing lambda
// twice when it is a parameter of a coroutine that is co_awaited.
// Exceptions from f are not carried over: f must return its failure.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <utility>

namespace proto::daemon {

template <class R, class F>
auto run_blocking(boost::asio::any_io_executor pool, boost::asio::any_io_executor home, F f) {
    namespace asio = boost::asio;
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(R)>(
        [pool = std::move(pool), home = std::move(home), f = std::move(f)](auto handler) mutable {
            auto shared = std::make_shared<decltype(handler)>(std::move(handler));
            asio::post(pool, [home, shared, f = std::move(f)]() mutable {
                R result = f();
                asio::post(home, [shared, result = std::move(result)]() mutable {
                    (*shared)(std::move(result));
                });
            });
        },
        asio::use_awaitable);
}

}  // namespace proto::daemon
