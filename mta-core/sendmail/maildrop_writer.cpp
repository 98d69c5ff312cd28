// Writing one maildrop file; see maildrop_writer.h.
#include "sendmail/maildrop_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <random>

namespace mta::sendmail {

namespace {

// Time, pid and randomness: unique among concurrent submitters.
std::string unique_name() {
    struct timeval tv;
    ::gettimeofday(&tv, nullptr);
    std::random_device rd;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%010lX%05lX.%X.%08X", static_cast<unsigned long>(tv.tv_sec),
                  static_cast<unsigned long>(tv.tv_usec), static_cast<unsigned>(::getpid()), rd());
    return buf;
}

}  // namespace

int write_maildrop(const std::string& maildrop_directory, std::string_view file, std::string* name) {
    std::string final_name = unique_name();
    std::string temp = maildrop_directory + "/" + std::string(kTempPrefix) + final_name;
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return errno;
    // The umask must not take pickup's read permission away.
    ::fchmod(fd, 0644);
    int err = 0;
    for (std::size_t done = 0; done < file.size() && !err;) {
        ssize_t n = ::write(fd, file.data() + done, file.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) err = n < 0 ? errno : EIO;
        else done += static_cast<std::size_t>(n);
    }
    if (!err && ::fsync(fd) != 0) err = errno;
    if (!err && ::rename(temp.c_str(), (maildrop_directory + "/" + final_name).c_str()) != 0) err = errno;
    if (!err) {
        int dir = ::open(maildrop_directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir >= 0) {
            if (::fsync(dir) != 0) err = errno;
            ::close(dir);
        } else if (::syncfs(fd) != 0) {
            err = errno;
        }
        if (err) ::unlink((maildrop_directory + "/" + final_name).c_str());
    } else {
        ::unlink(temp.c_str());
    }
    ::close(fd);
    if (!err && name) *name = final_name;
    return err;
}

}  // namespace mta::sendmail
