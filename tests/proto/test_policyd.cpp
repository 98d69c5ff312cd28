// test-policyd: a policy daemon for lifecycle tests, built on the real
// proto::daemon::run. Config key "answer" is the action it returns, so a
// reload is visible in replies; request attributes steer faults:
//   test_delay_ms=N  answer after N ms (a decision in flight)
//   test_fault=1     throw (an internal fault)
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <stdexcept>

#include "daemon/log.h"
#include "daemon/program.h"

namespace {

namespace asio = boost::asio;
using namespace proto;

class TestDecider final : public policy::Decider {
public:
    explicit TestDecider(policy::Action answer) : answer_(std::move(answer)) {}
    asio::awaitable<policy::Decision> decide(const policy::Request& r) override {
        if (r.get("test_fault") == "1") throw std::runtime_error("fault requested by the test");
        auto delay = r.get("test_delay_ms");
        if (!delay.empty()) {
            log::info("deciding slowly");  // tests wait for this line
            int ms = 0;
            std::from_chars(delay.data(), delay.data() + delay.size(), ms);
            asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
            co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        co_return policy::Decision{answer_, "test"};
    }

private:
    policy::Action answer_;
};

class TestProgram final : public daemon::Program {
public:
    const daemon::ProgramInfo& info() const override { return info_; }
    std::shared_ptr<policy::Decider> configure(config::Reader& r, daemon::Runtime&) override {
        return std::make_shared<TestDecider>(r.action("answer", "DUNNO"));
    }

private:
    daemon::ProgramInfo info_{"test-policyd", "lifecycle test daemon", "inet:127.0.0.1:10099",
                              false, ""};
};

}  // namespace

int main(int argc, char** argv) {
    TestProgram p;
    return daemon::run(argc, argv, p);
}
