// Maildir delivery; see maildir.h.
#include "maildir.h"

#include "fs/dir_sync.h"
#include "fs/read_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <vector>

namespace maildir {

namespace {

std::atomic<std::uint64_t> g_counter{0};

constexpr std::size_t kMaildirsizeRecalc = 5120;  // Maildir++: recalculate above this
constexpr auto kCleanInterval = std::chrono::hours(8);

std::string errno_text(int e) { return std::strerror(e); }

using proto::fs::fsync_dir;
using proto::fs::fsync_dir_shared;

std::string parent_of(const std::string& path) {
    auto slash = path.rfind('/');
    return slash == 0 ? "/" : path.substr(0, slash);
}

// mkdir that tolerates an existing directory; remembers the parents of the
// directories it created, whose entries must be fsynced.
bool make_dir(const std::string& path, std::vector<std::string>& dirty, int& err) {
    if (::mkdir(path.c_str(), 0700) == 0) {
        std::string parent = parent_of(path);
        if (dirty.empty() || dirty.back() != parent) dirty.push_back(parent);
        return true;
    }
    if (errno == EEXIST) return true;
    err = errno;
    return false;
}

bool is_dir(const std::string& path);

// A new Maildir appears whole: built with tmp/, new/ and cur/ under a hidden
// name beside ROOT, then renamed into place, so a concurrent delivery never
// finds tmp/ without new/. Losing the race to another delivery is success.
bool make_maildir_whole(const std::string& root, int& err) {
    const auto slash = root.rfind('/');
    const std::string staging = root.substr(0, slash + 1) + "." + root.substr(slash + 1) +
                                ".creating." + std::to_string(::getpid()) + "." +
                                std::to_string(++g_counter);
    auto remove_staging = [&] {
        for (const char* sub : {"/tmp", "/new", "/cur", ""}) ::rmdir((staging + sub).c_str());
    };
    for (const char* sub : {"", "/tmp", "/new", "/cur"}) {
        if (::mkdir((staging + sub).c_str(), 0700) != 0) {
            err = errno;
            remove_staging();
            return false;
        }
    }
    if (::rename(staging.c_str(), root.c_str()) != 0) {
        const int e = errno;
        remove_staging();
        if (e != EEXIST && e != ENOTEMPTY) {
            err = e;
            return false;
        }
        // Made by another delivery (of another process, perhaps): fsynced
        // here too, as nothing says that one got so far.
    }
    // Made durable after the rename, not before: on a journalling file
    // system this fsync then commits the mkdirs and the rename together, and
    // the parent's fsync that follows finds little left to write. Nothing is
    // acknowledged in this Maildir before both.
    return fsync_dir(root, err);
}

// Maildirs this process is making, until the directories leading to them
// are fsynced. Another thread can find one in place before that (right after
// the rename) and deliver into it; it waits for those fsyncs before it
// reports success, so no message is acknowledged in a Maildir whose own
// entry a crash could still take away.
struct MaildirsBeingMade {
    std::mutex mutex;
    std::condition_variable made;
    std::unordered_map<std::string, int> makers;
    std::atomic<int> count{0};  // lets the common case skip the mutex
};
MaildirsBeingMade g_being_made;

class MakingMaildir {
public:
    explicit MakingMaildir(const std::string& root) : root_(root) {
        std::lock_guard lock(g_being_made.mutex);
        ++g_being_made.makers[root_];
        ++g_being_made.count;
    }
    ~MakingMaildir() {
        {
            std::lock_guard lock(g_being_made.mutex);
            if (--g_being_made.makers[root_] == 0) g_being_made.makers.erase(root_);
            --g_being_made.count;
        }
        g_being_made.made.notify_all();
    }
    MakingMaildir(const MakingMaildir&) = delete;
    MakingMaildir& operator=(const MakingMaildir&) = delete;

private:
    std::string root_;
};

void wait_until_made(const std::string& a, const std::string& b) {
    if (g_being_made.count.load() == 0) return;
    std::unique_lock lock(g_being_made.mutex);
    g_being_made.made.wait(lock, [&] {
        return !g_being_made.makers.contains(a) && !g_being_made.makers.contains(b);
    });
}

bool make_maildir(const std::string& root, const std::string& create_below, int& err) {
    MakingMaildir making(root);
    std::vector<std::string> dirty;
    // Parents first, but only below create_below (virtual_base); never above.
    if (!create_below.empty() && root.starts_with(create_below + "/")) {
        std::size_t pos = create_below.size() + 1;
        while (true) {
            auto slash = root.find('/', pos);
            if (slash == std::string::npos) break;
            if (!make_dir(root.substr(0, slash), dirty, err)) return false;
            pos = slash + 1;
        }
    }
    if (is_dir(root)) {
        // An existing Maildir missing a subdirectory (made by hand, or by
        // another tool): completed in place.
        for (const char* sub : {"/tmp", "/new", "/cur"})
            if (!make_dir(root + sub, dirty, err)) return false;
    } else if (!make_maildir_whole(root, err)) {
        return false;
    } else {
        std::string parent = parent_of(root);
        if (dirty.empty() || dirty.back() != parent) dirty.push_back(parent);
    }
    // A message acknowledged in a new Maildir must survive a crash together
    // with the directories that lead to it (fsyncing new/ alone does not
    // make new/'s own entry durable). Shared: Maildirs made at once below
    // one domain share its fsync.
    for (auto it = dirty.rbegin(); it != dirty.rend(); ++it)
        if (!fsync_dir_shared(*it, err)) return false;
    return true;
}

bool is_dir(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool write_all(int fd, std::string_view a, std::string_view b, int& err) {
    struct iovec iov[2] = {{const_cast<char*>(a.data()), a.size()},
                           {const_cast<char*>(b.data()), b.size()}};
    int idx = 0;
    int cnt = 2;
    while (cnt > 0) {
        if (iov[idx].iov_len == 0) {
            ++idx;
            --cnt;
            continue;
        }
        ssize_t n = ::writev(fd, iov + idx, cnt);
        if (n < 0) {
            if (errno == EINTR) continue;
            err = errno;
            return false;
        }
        auto left = static_cast<std::size_t>(n);
        while (cnt > 0 && left >= iov[idx].iov_len) {
            left -= iov[idx].iov_len;
            ++idx;
            --cnt;
        }
        if (cnt > 0) {
            iov[idx].iov_base = static_cast<char*>(iov[idx].iov_base) + left;
            iov[idx].iov_len -= left;
        }
    }
    return true;
}

std::size_t count_lf(std::string_view s) {
    std::size_t n = 0;
    const char* p = s.data();
    const char* end = p + s.size();
    while ((p = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p))))) {
        ++n;
        ++p;
    }
    return n;
}

// A sane maildirsize is tiny: at most 1 MiB is read.
bool read_small_file(const std::string& path, std::string& out, int& err) {
    return proto::fs::read_file(path, out, err, 1u << 20);
}

// Size from ",S=" in a Maildir file name, else stat().
std::int64_t size_of(const std::string& dir, const char* name) {
    const char* s = std::strstr(name, ",S=");
    if (s) {
        std::int64_t v = 0;
        auto r = std::from_chars(s + 3, s + std::strlen(s), v);
        if (r.ec == std::errc()) return v;
    }
    struct stat st;
    if (::stat((dir + "/" + name).c_str(), &st) == 0) return st.st_size;
    return 0;
}

void sum_dir(const std::string& dir, std::int64_t& bytes, std::int64_t& count) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    while (struct dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        bytes += size_of(dir, e->d_name);
        ++count;
    }
    ::closedir(d);
}

// Recount every folder (Maildir++: INBOX plus ".folder" subdirectories,
// except ".Trash" which Courier leaves out by default) and rewrite maildirsize.
void recalculate_quota(const std::string& root, const std::string& quota_line,
                       const std::string& hostname) {
    std::int64_t bytes = 0, count = 0;
    sum_dir(root + "/new", bytes, count);
    sum_dir(root + "/cur", bytes, count);
    if (DIR* d = ::opendir(root.c_str())) {
        while (struct dirent* e = ::readdir(d)) {
            std::string name = e->d_name;
            if (name.size() < 2 || name[0] != '.' || name == ".." || name == ".Trash") continue;
            if (!is_dir(root + "/" + name)) continue;
            sum_dir(root + "/" + name + "/new", bytes, count);
            sum_dir(root + "/" + name + "/cur", bytes, count);
        }
        ::closedir(d);
    }
    std::string content = quota_line + "\n" + std::to_string(bytes) + " " + std::to_string(count) + "\n";
    std::string tmp = root + "/tmp/" + unique_name(hostname, content.size(), content.size());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return;
    int err = 0;
    bool ok = write_all(fd, content, {}, err) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), (root + "/maildirsize").c_str()) != 0) ::unlink(tmp.c_str());
}

// O_TMPFILE files are named by linkat() through /proc/self/fd (linkat with
// AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH). Off when /proc is missing,
// or after a link that failed for a reason other than the file system's.
std::atomic<bool> g_unnamed_usable{::access("/proc/self/fd", X_OK) == 0};

// Opens the message file: unnamed in DIR/tmp when UNNAMED (cleared if the
// file system has no O_TMPFILE), else TMP_PATH, created exclusively.
int open_message_file(const std::string& dir, const std::string& tmp_path, bool& unnamed) {
    if (unnamed) {
        int fd = ::open((dir + "/tmp").c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)) return fd;
        unnamed = false;
    }
    return ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
}

// Gives the unnamed file FD the name PATH.
bool link_unnamed(int fd, const std::string& path) {
    char proc_path[40];
    std::snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", fd);
    return ::linkat(AT_FDCWD, proc_path, AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0;
}

}  // namespace

std::string unique_name(const std::string& hostname, std::size_t size, std::size_t crlf_size) {
    struct timeval tv;
    ::gettimeofday(&tv, nullptr);
    std::string host;
    host.reserve(hostname.size());
    for (char c : hostname) {
        if (c == '/') host += "\\057";
        else if (c == ':') host += "\\072";
        else host.push_back(c);
    }
    char buf[128];
    static const pid_t pid = ::getpid();  // no fork after the first delivery
    std::snprintf(buf, sizeof buf, "%lld.M%06ldP%dQ%llu.", static_cast<long long>(tv.tv_sec),
                  static_cast<long>(tv.tv_usec), static_cast<int>(pid),
                  static_cast<unsigned long long>(++g_counter));
    return buf + host + ",S=" + std::to_string(size) + ",W=" + std::to_string(crlf_size);
}

bool parse_maildirsize(std::string_view content, Quota& q) {
    q = Quota{};
    q.file_size = content.size();
    auto nl = content.find('\n');
    if (nl == std::string_view::npos) return false;
    std::string_view def = content.substr(0, nl);
    // "<bytes>S,<count>C" in any order; either may be absent.
    while (!def.empty()) {
        auto comma = def.find(',');
        auto item = def.substr(0, comma);
        def = comma == std::string_view::npos ? std::string_view{} : def.substr(comma + 1);
        if (item.size() < 2) return false;
        std::int64_t v = 0;
        auto r = std::from_chars(item.data(), item.data() + item.size() - 1, v);
        if (r.ec != std::errc() || r.ptr != item.data() + item.size() - 1 || v < 0) return false;
        if (item.back() == 'S') q.max_bytes = v;
        else if (item.back() == 'C') q.max_count = v;
        else return false;
    }
    content.remove_prefix(nl + 1);
    while (!content.empty()) {
        nl = content.find('\n');
        auto line = content.substr(0, nl);
        content = nl == std::string_view::npos ? std::string_view{} : content.substr(nl + 1);
        if (line.empty()) continue;
        while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
        std::int64_t b = 0, c = 0;
        auto r1 = std::from_chars(line.data(), line.data() + line.size(), b);
        if (r1.ec != std::errc()) return false;
        const char* p = r1.ptr;
        while (p < line.data() + line.size() && *p == ' ') ++p;
        auto r2 = std::from_chars(p, line.data() + line.size(), c);
        if (r2.ec != std::errc()) return false;
        // A hostile or corrupt file must not overflow the totals.
        if (__builtin_add_overflow(q.bytes, b, &q.bytes) ||
            __builtin_add_overflow(q.count, c, &q.count))
            return false;
    }
    return true;
}

int clean_tmp(const std::string& dir, std::chrono::seconds max_age, bool force) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) return 0;
    time_t now = ::time(nullptr);
    if (!force && now - st.st_atime < std::chrono::duration_cast<std::chrono::seconds>(kCleanInterval).count())
        return 0;
    // Mark the scan first so concurrent deliveries do not all scan.
    struct timespec times[2] = {{now, 0}, {0, UTIME_OMIT}};
    ::utimensat(AT_FDCWD, dir.c_str(), times, 0);
    int removed = 0;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return 0;
    while (struct dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        struct stat fs;
        if (::fstatat(::dirfd(d), e->d_name, &fs, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (S_ISDIR(fs.st_mode)) continue;
        if (now - fs.st_mtime > max_age.count() && ::unlinkat(::dirfd(d), e->d_name, 0) == 0)
            ++removed;
    }
    ::closedir(d);
    return removed;
}

WriteResult deliver(const std::string& root, const std::string& folder, std::string_view prefix,
                    std::string_view body, const WriteOptions& options) {
    WriteResult result;
    auto fail = [&](std::string what, int e) {
        result.status = WriteResult::Status::failed;
        result.error_number = e;
        result.error = what + ": " + errno_text(e);
        return result;
    };
    const std::size_t size = prefix.size() + body.size();
    const std::size_t crlf_size = size + count_lf(prefix) + count_lf(body);
    const std::string name = unique_name(options.hostname, size, crlf_size);

    // The common case costs no extra system call: try, and create on ENOENT.
    std::string dir = root;
    if (!folder.empty() && is_dir(root + "/" + folder)) {
        dir = root + "/" + folder;
        int err = 0;
        if (!is_dir(dir + "/new") && !make_maildir(dir, "", err)) return fail("mkdir " + dir, err);
    }
    // The message is written to an unnamed file in tmp/ (O_TMPFILE) where
    // the kernel and file system allow: no tmp/ entry to add and remove, and
    // the inode is allocated without holding tmp/'s lock, on which concurrent
    // deliveries into one Maildir otherwise queue. Else to tmp/NAME, renamed.
    std::string tmp_path = dir + "/tmp/" + name;
    bool unnamed = options.unnamed_tmp && g_unnamed_usable.load(std::memory_order_relaxed);
    int fd = open_message_file(dir, tmp_path, unnamed);
    if (fd < 0 && errno == ENOENT) {
        int err = 0;
        if (!make_maildir(dir, options.create_below, err)) return fail("mkdir " + dir, err);
        fd = open_message_file(dir, tmp_path, unnamed);
    }
    if (fd < 0) return fail("open " + (unnamed ? dir + "/tmp" : tmp_path), errno);
    // Failure before the file has its name: nothing may stay behind.
    auto discard = [&] {
        ::close(fd);
        if (!unnamed) ::unlink(tmp_path.c_str());
    };

    // Quota is checked against the root Maildir (Maildir++ keeps one maildirsize).
    bool counted = false;
    Quota quota;
    if (options.quota) {
        std::string content;
        int err = 0;
        if (read_small_file(root + "/maildirsize", content, err) &&
            parse_maildirsize(content, quota)) {
            if ((quota.max_bytes > 0 &&
                 quota.bytes > quota.max_bytes - static_cast<std::int64_t>(size)) ||
                (quota.max_count > 0 && quota.count >= quota.max_count)) {
                discard();
                result.status = WriteResult::Status::over_quota;
                result.error = "mailbox is over its quota";
                return result;
            }
            counted = true;
        }
    }

    auto written_path = [&] { return unnamed ? dir + "/tmp (unnamed file)" : tmp_path; };
    int err = 0;
    if (!write_all(fd, prefix, body, err)) {
        discard();
        return fail("write " + written_path(), err);
    }
    if (::fsync(fd) != 0) {
        err = errno;
        discard();
        return fail("fsync " + written_path(), err);
    }
    std::string new_path = dir + "/new/" + name;
    // A Maildir made by hand or by another tool may have tmp/ but no new/:
    // complete it in place and try once more.
    auto complete_new = [&](int& e) {
        if (e != ENOENT || is_dir(dir + "/new")) return false;
        int mkerr = 0;
        if (!make_maildir(dir, options.create_below, mkerr)) {
            e = mkerr;
            return false;
        }
        return true;
    };
    if (unnamed) {
        bool linked = link_unnamed(fd, new_path);
        err = linked ? 0 : errno;
        if (!linked && complete_new(err)) {
            linked = link_unnamed(fd, new_path);
            err = linked ? 0 : errno;
        }
        if (!linked) {
            discard();
            if (err == EACCES || err == EPERM || (err == ENOENT && is_dir(dir + "/new"))) {
                // /proc refused us (e.g. a changed fs uid): named files from now on.
                g_unnamed_usable.store(false);
                return deliver(root, folder, prefix, body, options);
            }
            return fail("link into " + dir + "/new", err);
        }
        if (::close(fd) != 0) {
            err = errno;
            ::unlink(new_path.c_str());
            return fail("close " + new_path, err);
        }
    } else {
        if (::close(fd) != 0) {
            err = errno;
            ::unlink(tmp_path.c_str());
            return fail("close " + tmp_path, err);
        }
        // rename(), as Dovecot does: one directory operation instead of
        // link() and unlink(). It cannot replace another message: names are
        // unique per host, process and delivery.
        bool renamed = ::rename(tmp_path.c_str(), new_path.c_str()) == 0;
        err = renamed ? 0 : errno;
        if (!renamed && complete_new(err)) {
            renamed = ::rename(tmp_path.c_str(), new_path.c_str()) == 0;
            err = renamed ? 0 : errno;
        }
        if (!renamed) {
            ::unlink(tmp_path.c_str());
            return fail("rename into " + dir + "/new", err);
        }
    }
    if (!fsync_dir_shared(dir + "/new", err)) {
        // We will answer "try again": do not leave a copy that would become a duplicate.
        ::unlink(new_path.c_str());
        return fail("fsync " + dir + "/new", err);
    }
    wait_until_made(root, dir);
    result.status = WriteResult::Status::ok;
    result.file = new_path;

    if (counted) {
        if (quota.file_size > kMaildirsizeRecalc) {
            std::string content;
            int e2 = 0;
            read_small_file(root + "/maildirsize", content, e2);
            recalculate_quota(root, content.substr(0, content.find('\n')), options.hostname);
        } else {
            // Best effort, as in Maildir++: the count is advisory and recalculated later.
            int q = ::open((root + "/maildirsize").c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
            if (q >= 0) {
                std::string line = std::to_string(size) + " 1\n";
                int e2 = 0;
                write_all(q, line, {}, e2);
                ::close(q);
            }
        }
    }
    clean_tmp(dir + "/tmp", options.tmp_max_age);
    return result;
}

}  // namespace maildir
