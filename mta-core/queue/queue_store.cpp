// The queue directory; see queue_store.h.
#include "queue/queue_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "fs/dir_sync.h"
#include "fs/read_file.h"

namespace mta::queue {

namespace {

std::atomic<unsigned> g_sequence{0};

int write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return 0;
}

}  // namespace

std::string_view place_name(Place place) {
    switch (place) {
        case Place::incoming: return "incoming";
        case Place::active: return "active";
        case Place::hold: return "hold";
        case Place::corrupt: return "corrupt";
    }
    return "active";
}

bool valid_id(std::string_view id) {
    if (id.empty() || id.size() > 32) return false;
    return std::all_of(id.begin(), id.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); });
}

QueueStore::QueueStore(std::string directory) : directory_(std::move(directory)) {}

std::string QueueStore::path(Place place, std::string_view id) const {
    std::string p = directory_;
    p += '/';
    p += place_name(place);
    p += '/';
    p += id;
    return p;
}

void QueueStore::prepare() const {
    for (Place p : {Place::incoming, Place::active, Place::hold, Place::corrupt}) {
        std::string dir = directory_ + "/" + std::string(place_name(p));
        if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
            throw std::system_error(errno, std::generic_category(), "mkdir " + dir);
    }
    std::string defer = directory_ + "/defer";
    if (::mkdir(defer.c_str(), 0700) != 0 && errno != EEXIST)
        throw std::system_error(errno, std::generic_category(), "mkdir " + defer);
}

std::string QueueStore::new_id() const {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%09llX%03X",
                  static_cast<unsigned long long>(us) & 0xFFFFFFFFFull,
                  g_sequence.fetch_add(1) & 0xFFFu);
    return buf;
}

namespace {

// Write the file and fsync it; 0 or errno.
int write_synced(int fd, const Envelope& envelope, std::string_view content) {
    int err = write_all(fd, serialize(envelope));
    if (!err) err = write_all(fd, content);
    if (!err && ::fsync(fd) != 0) err = errno;
    return err;
}

// Filesystems (and kernels) without O_TMPFILE say so with these.
bool no_tmpfile_support(int err) { return err == EOPNOTSUPP || err == EISDIR || err == EINVAL; }

}  // namespace

int QueueStore::commit(const Envelope& envelope, std::string_view content) const {
    const std::string final_path = path(Place::active, envelope.id);
    const std::string active = directory_ + "/active";
    // O_TMPFILE (open(2)): the file has no name until it is whole and on
    // disk; linkat then names it in one directory operation. No incoming/
    // entry to create, rename and remove: the file system's work per
    // message is what bounds throughput here. A crash leaves nothing behind.
    // linkat refuses an existing name, which keeps ids unique.
    int fd = ::open(active.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    int err = 0;
    bool named = false;
    if (fd >= 0) {
        err = write_synced(fd, envelope, content);
        if (!err) {
            char proc[64];
            std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
            if (::linkat(AT_FDCWD, proc, AT_FDCWD, final_path.c_str(), AT_SYMLINK_FOLLOW) == 0)
                named = true;
            else
                err = errno;
        }
        if (::close(fd) != 0 && !err) err = errno;
        // Without /proc the file cannot be named this way: write it again
        // the classic way below.
        if (!named && err != ENOENT) return err;
        err = 0;
    } else if (!no_tmpfile_support(errno)) {
        return errno;
    }
    if (!named) {
        // Classic: write under incoming/, fsync, rename into active/.
        const std::string tmp = path(Place::incoming, envelope.id);
        fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) return errno;
        err = write_synced(fd, envelope, content);
        if (::close(fd) != 0 && !err) err = errno;
        if (!err && ::rename(tmp.c_str(), final_path.c_str()) != 0) err = errno;
        if (err) {
            ::unlink(tmp.c_str());
            return err;
        }
    }
    int derr = 0;
    if (!proto::fs::fsync_dir_shared(active, derr)) {
        // The file may or may not survive a crash; the client will not get
        // a 250, so it must not be delivered either.
        ::unlink(final_path.c_str());
        return derr;
    }
    return 0;
}

std::optional<Loaded> QueueStore::load(Place place, const std::string& id,
                                       std::string* error) const {
    if (!valid_id(id)) {
        if (error) *error = "bad queue id";
        return std::nullopt;
    }
    std::string data;
    int err = 0;
    // A queue file is at most message_size_limit plus its envelope; the
    // bound here only keeps a corrupt or foreign file from exhausting memory.
    if (!proto::fs::read_file(path(place, id), data, err, std::size_t{1} << 31)) {
        if (error) *error = std::string(std::strerror(err));
        return std::nullopt;
    }
    auto parsed = parse(data, error);
    if (!parsed) return std::nullopt;
    if (parsed->envelope.id != id) {
        if (error) *error = "queue id does not match the file name";
        return std::nullopt;
    }
    Loaded l{std::move(parsed->envelope), data.substr(parsed->content_offset)};
    return l;
}

int QueueStore::mark_done(const std::string& id, const Envelope& envelope,
                          const std::vector<std::size_t>& indexes) const {
    std::size_t remaining = 0;
    for (std::size_t i = 0; i < envelope.recipients.size(); ++i)
        if (!envelope.recipients[i].done &&
            std::find(indexes.begin(), indexes.end(), i) == indexes.end())
            ++remaining;
    const std::string p = path(Place::active, id);
    if (remaining == 0) {
        remove_defer_info(id);
        return ::unlink(p.c_str()) == 0 || errno == ENOENT ? 0 : errno;
    }
    int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return errno;
    int err = 0;
    for (std::size_t i : indexes) {
        if (i >= envelope.recipients.size() || envelope.recipients[i].done_offset == 0) continue;
        if (::pwrite(fd, "1", 1, static_cast<off_t>(envelope.recipients[i].done_offset)) != 1) {
            err = errno;
            break;
        }
    }
    if (!err && ::fdatasync(fd) != 0) err = errno;
    ::close(fd);
    return err;
}

void QueueStore::write_defer_info(const std::string& id, const DeferInfo& info) const {
    if (!valid_id(id)) return;
    const std::string final_path = directory_ + "/defer/" + id;
    const std::string tmp = final_path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return;
    int err = write_all(fd, serialize(info));
    ::close(fd);
    if (err || ::rename(tmp.c_str(), final_path.c_str()) != 0) ::unlink(tmp.c_str());
}

std::optional<DeferInfo> QueueStore::read_defer_info(const std::string& id) const {
    if (!valid_id(id)) return std::nullopt;
    std::string data;
    int err = 0;
    if (!proto::fs::read_file(directory_ + "/defer/" + id, data, err, std::size_t{1} << 24)) return std::nullopt;
    return parse_defer_info(data);
}

void QueueStore::remove_defer_info(const std::string& id) const {
    if (valid_id(id)) ::unlink((directory_ + "/defer/" + id).c_str());
}

int QueueStore::move(const std::string& id, Place from, Place to) const {
    if (!valid_id(id)) return EINVAL;
    if (::rename(path(from, id).c_str(), path(to, id).c_str()) != 0) return errno;
    int err = 0;
    proto::fs::fsync_dir_shared(directory_ + "/" + std::string(place_name(to)), err);
    return err;
}

int QueueStore::remove(Place place, const std::string& id) const {
    remove_defer_info(id);
    if (!valid_id(id)) return EINVAL;
    return ::unlink(path(place, id).c_str()) == 0 ? 0 : errno;
}

std::vector<std::string> QueueStore::list(Place place) const {
    std::vector<std::string> ids;
    std::string dir = directory_ + "/" + std::string(place_name(place));
    DIR* d = ::opendir(dir.c_str());
    if (!d) return ids;
    while (struct dirent* e = ::readdir(d))
        if (valid_id(e->d_name)) ids.emplace_back(e->d_name);
    ::closedir(d);
    std::sort(ids.begin(), ids.end());
    return ids;
}

std::size_t QueueStore::remove_incomplete() const {
    std::size_t n = 0;
    for (const auto& id : list(Place::incoming))
        if (::unlink(path(Place::incoming, id).c_str()) == 0) ++n;
    return n;
}

}  // namespace mta::queue
