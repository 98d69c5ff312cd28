// Ground for contract tests of a Redis-backed store: a real redis-server, a
// client of it driven by the test's own io_context, and a manual clock, so
// time is an argument and nothing sleeps.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>

#include "daemon/clock.h"
#include "redis/client.h"
#include "support/redis_server.h"

namespace testsupport {

class RedisStoreTest : public ::testing::Test {
protected:
    void TearDown() override {
        if (client_) client_->stop();
    }

    // A new started client of the server; the previous one is stopped.
    void connect_client() {
        if (client_) client_->stop();
        client_ = std::make_unique<proto::redis::Client>(io_.get_executor(), redis_.parsed_url());
        client_->start();
    }

    // Drive the io_context until the coroutine finishes (bounded).
    template <typename T>
    T run(boost::asio::awaitable<T> task) {
        std::optional<T> result;
        boost::asio::co_spawn(io_, std::move(task), [&](std::exception_ptr e, T value) {
            if (e) std::rethrow_exception(e);
            result = std::move(value);
        });
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!result && std::chrono::steady_clock::now() < deadline)
            io_.run_one_for(std::chrono::milliseconds(50));
        if (!result) throw std::runtime_error("store call did not finish");
        return std::move(*result);
    }

    RedisServer redis_;
    boost::asio::io_context io_;
    std::unique_ptr<proto::redis::Client> client_;
    proto::ManualClock clock_;
};

}  // namespace testsupport
