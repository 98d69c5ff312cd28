// Polls a blocking probe on a thread of its own, every interval, until it
// returns a value >= 0: tests that measure the latency of calls on their
// io_context must not block that loop with their own synchronous checks.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

namespace testsupport {

class Watcher {
public:
    explicit Watcher(std::function<int()> probe,
                     std::chrono::milliseconds interval = std::chrono::milliseconds(100))
        : thread_([this, probe = std::move(probe), interval] {
              while (!stop_) {
                  int value = probe();
                  if (value >= 0) {
                      result_ = value;
                      return;
                  }
                  std::this_thread::sleep_for(interval);  // polling interval, not synchronisation
              }
          }) {}
    ~Watcher() {
        stop_ = true;
        thread_.join();
    }
    Watcher(const Watcher&) = delete;
    Watcher& operator=(const Watcher&) = delete;

    int result() const { return result_; }  // -1 until the probe succeeded
    bool done() const { return result_ >= 0; }

private:
    std::atomic<bool> stop_{false};
    std::atomic<int> result_{-1};
    std::thread thread_;
};

}  // namespace testsupport
