// Pickup; see pickup.h.
#include "pickup/pickup.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <future>

#include "fs/dir_sync.h"
#include "maillog.h"
#include "message_header.h"
#include "pickup/local_milters.h"
#include "qmgr/qmgr.h"
#include "queue/maildrop_file.h"

namespace mta::pickup {

namespace asio = boost::asio;

namespace {

// Postfix's pickup wakes up every 60 seconds (master.cf "pickup ... 60").
constexpr auto kScanInterval = std::chrono::seconds(60);
// A "t." file is a submission being written; one left this long belongs
// to a helper that died.
constexpr std::time_t kStaleTemporary = 3600;

// A name as it may appear in a file name under corrupt/ and in the log.
std::string safe_name(const std::string& name) {
    std::string out;
    for (char c : name.substr(0, 100)) out += std::isalnum(static_cast<unsigned char>(c)) || c == '.' ? c : '_';
    return out;
}

}  // namespace

struct Pickup::Watch {
    asio::posix::stream_descriptor inotify;
    asio::steady_timer timer;
    char buffer[4096];
    Watch(asio::any_io_executor io) : inotify(io), timer(io) {}
};

Pickup::Pickup(asio::any_io_executor io, asio::any_io_executor blocking, const queue::QueueStore& store,
               std::function<void(const std::string&)> queued)
    : io_(io), blocking_(blocking), store_(store), queued_(std::move(queued)), watch_(std::make_unique<Watch>(io)) {}

Pickup::~Pickup() = default;

void Pickup::configure(Settings settings) {
    std::lock_guard lock(mutex_);
    settings_ = std::move(settings);
}

void Pickup::start() {
    // Watching and scanning start when io runs, after the process has
    // dropped to mail_owner: maildrop/ (mode 1730) is readable by its owner
    // only, and root may lack CAP_DAC_OVERRIDE (the systemd unit's bounding
    // set).
    auto self = shared_from_this();
    asio::post(io_, [self] { self->watch(); });
}

void Pickup::watch() {
    if (stopped_) return;
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd >= 0 && ::inotify_add_watch(fd, maildrop_directory().c_str(), IN_MOVED_TO | IN_CLOSE_WRITE) >= 0) {
        watch_->inotify.assign(fd);
        wait_event();
    } else {
        // The periodic scan still picks mail up, only later.
        maillog::line("pickup", "warning: cannot watch " + maildrop_directory() + ": " + std::strerror(errno) +
                                    "; scanning every 60s");
        if (fd >= 0) ::close(fd);
    }
    wait_timer();
    request_scan();
}

void Pickup::stop() {
    stopped_ = true;
    boost::system::error_code ec;
    watch_->inotify.close(ec);
    watch_->timer.cancel();
}

void Pickup::wait_event() {
    auto self = shared_from_this();
    watch_->inotify.async_read_some(asio::buffer(watch_->buffer),
                                    [self](boost::system::error_code ec, std::size_t) {
                                        if (ec || self->stopped_) return;
                                        self->request_scan();
                                        self->wait_event();
                                    });
}

void Pickup::wait_timer() {
    watch_->timer.expires_after(kScanInterval);
    auto self = shared_from_this();
    watch_->timer.async_wait([self](boost::system::error_code ec) {
        if (ec || self->stopped_) return;
        self->request_scan();
        self->wait_timer();
    });
}

void Pickup::request_scan() {
    if (stopped_) return;
    if (scanning_) {
        rescan_ = true;
        return;
    }
    scanning_ = true;
    auto self = shared_from_this();
    asio::post(blocking_, [self] {
        auto ids = self->scan_now();
        asio::post(self->io_, [self, ids = std::move(ids)] {
            for (const auto& id : ids) self->queued_(id);
            self->scanning_ = false;
            if (self->rescan_) {
                self->rescan_ = false;
                self->request_scan();
            }
        });
    });
}

std::vector<std::string> Pickup::scan_now() {
    Settings settings;
    {
        std::lock_guard lock(mutex_);
        settings = settings_;
    }
    std::vector<std::string> names;
    std::string dir = maildrop_directory();
    if (DIR* d = ::opendir(dir.c_str())) {
        while (auto* e = ::readdir(d)) {
            std::string name = e->d_name;
            if (name != "." && name != "..") names.push_back(name);
        }
        ::closedir(d);
    }
    // Oldest first: names start with the submission time.
    std::sort(names.begin(), names.end());
    std::vector<std::string> queued;
    for (const auto& name : names) {
        {
            std::lock_guard lock(mutex_);
            if (std::find(refused_.begin(), refused_.end(), name) != refused_.end()) continue;
        }
        process(name, settings, queued);
    }
    return queued;
}

void Pickup::move_aside(const std::string& name, const std::string& reason) {
    std::string from = maildrop_directory() + "/" + name;
    // Two hostile names may make the same safe name: never replace a file
    // already kept (RENAME_NOREPLACE), take the next suffix instead.
    std::string kept = "maildrop." + safe_name(name);
    int err = 0;
    for (int n = 0; n < 100; ++n) {
        std::string candidate = n == 0 ? kept : kept + "." + std::to_string(n);
        std::string to = store_.path(queue::Place::corrupt, candidate);
        if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
            maillog::line("pickup", "warning: maildrop/" + maillog::printable(name) + ": " + reason +
                                        "; moved to corrupt/" + candidate);
            return;
        }
        err = errno;
        if (err != EEXIST) break;
    }
    if (::unlink(from.c_str()) == 0 || errno == ENOENT) {
        maillog::line("pickup", "warning: maildrop/" + maillog::printable(name) + ": " + reason +
                                    "; removed (cannot move it to corrupt/: " + std::strerror(err) + ")");
        return;
    }
    maillog::line("pickup", "warning: maildrop/" + maillog::printable(name) + ": " + reason +
                                "; cannot move or remove it (" + std::strerror(errno) + "): skipped from now on");
    std::lock_guard lock(mutex_);
    refused_.push_back(name);
}

void Pickup::process(const std::string& name, const Settings& settings, std::vector<std::string>& queued) {
    std::string path = maildrop_directory() + "/" + name;
    if (name.starts_with("t.")) {
        struct stat st;
        if (::lstat(path.c_str(), &st) == 0 && std::time(nullptr) - st.st_mtime > kStaleTemporary)
            move_aside(name, "unfinished submission older than an hour");
        return;
    }
    queue::MaildropLimits limits;
    limits.max_content = settings.message_size_limit;
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return;
        move_aside(name, errno == ELOOP ? "symbolic link refused" : std::string("cannot open: ") + std::strerror(errno));
        return;
    }
    struct stat st;
    std::string file, reason;
    if (::fstat(fd, &st) != 0) {
        reason = std::string("cannot stat: ") + std::strerror(errno);
    } else if (!S_ISREG(st.st_mode)) {
        reason = "not a regular file";
    } else if (st.st_nlink != 1) {
        reason = "hard link refused";
    } else if (static_cast<std::size_t>(st.st_size) > queue::maildrop_file_bound(limits)) {
        reason = "file too big (" + std::to_string(st.st_size) + " bytes)";
    } else {
        file.resize(static_cast<std::size_t>(st.st_size));
        std::size_t done = 0;
        while (done < file.size()) {
            ssize_t n = ::read(fd, file.data() + done, file.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            done += static_cast<std::size_t>(n);
        }
        // A file that changed size while read is refused by the parser.
        file.resize(done);
    }
    ::close(fd);
    if (!reason.empty()) {
        move_aside(name, reason);
        return;
    }
    std::string error;
    auto message = queue::parse_maildrop(file, limits, &error);
    if (!message) {
        move_aside(name, "uid=" + std::to_string(st.st_uid) + ": malformed: " + error);
        return;
    }
    std::string id = store_.new_id();
    auto q = make_queued(*message, st.st_uid, id, std::time(nullptr), settings.message, &error);
    if (!q) {
        move_aside(name, "uid=" + std::to_string(st.st_uid) + ": " + error);
        return;
    }
    maillog::line("pickup", id + ": uid=" + std::to_string(st.st_uid) + " from=<" +
                                maillog::printable(message->sender) + ">");
    bool hold = false;
    if (settings.milters) {
        // The milters run on the I/O thread; this scan (on the blocking pool)
        // waits for them. A chain cut short (shutdown) counts as tempfail.
        auto promise = std::make_shared<std::promise<LocalVerdict>>();
        auto verdict_of = promise->get_future();
        auto envelope = std::make_shared<queue::Envelope>(q->envelope);
        auto content = std::make_shared<std::string>(q->content);
        asio::co_spawn(io_, run_local_milters(settings.milters, *envelope, *content, settings.message.myhostname),
                       [promise, envelope, content](std::exception_ptr e, LocalVerdict v) {
                           if (e) v = LocalVerdict{LocalVerdict::Kind::tempfail, "451 4.3.0 milter error", {}};
                           promise->set_value(std::move(v));
                       });
        LocalVerdict verdict{LocalVerdict::Kind::tempfail, "451 4.3.0 mta-core is stopping", {}};
        try {
            verdict = verdict_of.get();
        } catch (const std::future_error&) {
        }
        const std::string from = "from=<" + maillog::printable(q->envelope.sender) + ">";
        switch (verdict.kind) {
            case LocalVerdict::Kind::tempfail:
                // Left in maildrop/ for a later scan, as a full disk is.
                maillog::line("cleanup", id + ": milter-reject: END-OF-MESSAGE from local: " +
                                             maillog::printable(verdict.reply) + "; " + from + "; kept in maildrop");
                return;
            case LocalVerdict::Kind::discard:
                maillog::line("cleanup", id + ": milter-discard: END-OF-MESSAGE from local: milter triggers DISCARD "
                                             "action; " + from);
                ::unlink(path.c_str());
                return;
            case LocalVerdict::Kind::reject: {
                maillog::line("cleanup", id + ": milter-reject: END-OF-MESSAGE from local: " +
                                             maillog::printable(verdict.reply) + "; " + from);
                // The submitter is gone: the refusal comes back as a bounce.
                if (!q->envelope.sender.empty()) {
                    std::vector<qmgr::Failure> failures;
                    for (const auto& r : q->envelope.recipients)
                        failures.push_back({r.address, r.original, "5.7.1", "X-Postfix; " + verdict.reply});
                    queue::Envelope bounce;
                    bounce.id = store_.new_id();
                    bounce.arrival = std::time(nullptr);
                    bounce.recipients.push_back({q->envelope.sender, q->envelope.sender, false, 0});
                    bounce.protocol = "local";
                    std::string report = qmgr::make_bounce(settings.message.myhostname, id, q->envelope.sender,
                                                           failures, q->content, q->envelope.arrival, false);
                    if (store_.commit(bounce, report) != 0) return;  // kept in maildrop: tried again
                    maillog::line("bounce", id + ": sender non-delivery notification: " + bounce.id);
                    queued.push_back(bounce.id);
                }
                ::unlink(path.c_str());
                return;
            }
            case LocalVerdict::Kind::hold:
                hold = true;
                maillog::line("cleanup", id + ": milter-hold: END-OF-MESSAGE from local: " +
                                             maillog::printable(verdict.hold_reason) + "; " + from);
                break;
            case LocalVerdict::Kind::queue:
                break;
        }
        q->envelope = std::move(*envelope);
        q->content = std::move(*content);
    }
    int err = store_.commit(q->envelope, q->content);
    if (!err && hold) err = store_.move(id, queue::Place::active, queue::Place::hold);
    if (err) {
        // Left in maildrop/ for the next scan (a full disk clears).
        maillog::line("pickup", id + ": warning: queue file write error: " + std::strerror(err));
        return;
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        maillog::line("pickup", "warning: cannot remove maildrop/" + maillog::printable(name) + ": " +
                                    std::strerror(errno) + " (it may be delivered twice)");
    int dir_err = 0;
    proto::fs::fsync_dir(maildrop_directory(), dir_err);
    std::string message_id(field_value(q->content, "Message-ID").value_or(""));
    maillog::line("cleanup", id + ": message-id=" + maillog::printable(message_id.substr(0, 200)));
    if (hold) return;  // until `queue release`
    maillog::line("qmgr", id + ": from=<" + maillog::printable(q->envelope.sender) +
                              ">, size=" + std::to_string(q->content.size()) +
                              ", nrcpt=" + std::to_string(q->envelope.recipients.size()) + " (queue active)");
    queued.push_back(id);
}

}  // namespace mta::pickup
