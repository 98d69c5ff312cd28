// Directory fsync and its group commit; see dir_sync.h.
#include "fs/dir_sync.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace proto::fs {

bool fsync_dir(const std::string& path, int& err) {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        return false;
    }
    bool ok = ::fsync(fd) == 0;
    if (!ok) err = errno;
    ::close(fd);
    return ok;
}

namespace {

// A ticket is taken after the caller's rename; an fsync that starts after
// ticket T was issued makes renames up to T durable.
struct DirSync {
    std::mutex fsync_mutex;  // one fsync of this directory at a time
    std::atomic<std::uint64_t> requested{0};
    std::uint64_t synced = 0;  // guarded by fsync_mutex
    int users = 0;             // guarded by g_dirs_mutex
};
std::mutex g_dirs_mutex;
std::unordered_map<std::string, std::shared_ptr<DirSync>> g_dirs;  // entries only while in use

}  // namespace

bool fsync_dir_shared(const std::string& path, int& err) {
    std::shared_ptr<DirSync> d;
    {
        std::lock_guard lock(g_dirs_mutex);
        auto& slot = g_dirs[path];
        if (!slot) slot = std::make_shared<DirSync>();
        d = slot;
        ++d->users;
    }
    const std::uint64_t ticket = ++d->requested;
    bool ok = true;
    {
        std::lock_guard lock(d->fsync_mutex);
        if (d->synced < ticket) {
            const std::uint64_t covers = d->requested.load();
            ok = fsync_dir(path, err);
            if (ok) d->synced = covers;  // on failure every waiter tries itself
        }
    }
    {
        std::lock_guard lock(g_dirs_mutex);
        if (--d->users == 0) g_dirs.erase(path);
    }
    return ok;
}

}  // namespace proto::fs
