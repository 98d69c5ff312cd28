// A fixed pool of threads for blocking work (libspf2 and its DNS lookups),
// with a bounded queue, so the single I/O thread never blocks.
//
// Limits: at most max_queue tasks wait; try_submit refuses more (the caller
// answers with its fallback at once instead of letting latency grow without
// bound). The destructor stops taking tasks, lets queued ones run, joins.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace spf {

class WorkerPool {
public:
    WorkerPool(std::size_t threads, std::size_t max_queue);
    ~WorkerPool();
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    // False when the queue is full or the pool is stopping.
    bool try_submit(std::function<void()> task);
    std::size_t queued() const;
    std::size_t threads() const { return threads_.size(); }

private:
    void run();

    mutable std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<std::function<void()>> queue_;
    std::size_t max_queue_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace spf
