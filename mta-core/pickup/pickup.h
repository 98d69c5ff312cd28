// Pickup: turns the files the sendmail command leaves in
// $queue_directory/maildrop into queue files (Postfix's pickup(8)).
//
// It watches maildrop/ with inotify, scans it at start (mail submitted
// while mta-core was stopped) and every 60 seconds as a fallback (pickup's
// wakeup time in Postfix's master.cf). One scan runs at a time, on the
// blocking pool; a request during a scan runs one more scan after it.
//
// Security: every file was written by an unprivileged user and is hostile
// input. A file is opened without following symbolic links, must be a
// regular file with one link and at most the size a message within
// message_size_limit makes, and must parse strictly (maildrop_file.h);
// its owner is the submitting uid, whatever the file says. A file that
// fails is moved to corrupt/ (or removed if it cannot be moved) with a
// warning naming the reason, so it is never read twice; no file stops the
// others. A message is committed to active/ (fsynced, as SMTP mail) before
// its maildrop file is removed: a crash between the two delivers twice,
// never loses mail.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "milter/milter_config.h"
#include "pickup/pickup_message.h"
#include "queue/queue_store.h"

namespace mta::pickup {

struct Settings {
    MessageSettings message;
    std::size_t message_size_limit = 10240000;
    // non_smtpd_milters (local_milters.h); none when null.
    std::shared_ptr<const milter::MilterSettings> milters;
};

class Pickup : public std::enable_shared_from_this<Pickup> {
public:
    // queued: called on io for each committed message (hands it to qmgr).
    Pickup(boost::asio::any_io_executor io, boost::asio::any_io_executor blocking, const queue::QueueStore& store,
           std::function<void(const std::string&)> queued);
    ~Pickup();
    void configure(Settings settings);
    // Start watching and scanning as soon as io runs.
    void start();
    void stop();

    // One pass over maildrop/ (blocking); the ids it queued. For tests.
    std::vector<std::string> scan_now();

    std::string maildrop_directory() const { return store_.directory() + "/maildrop"; }

private:
    struct Watch;
    void watch();
    void request_scan();
    void wait_event();
    void wait_timer();
    void process(const std::string& name, const Settings& settings, std::vector<std::string>& queued);
    void move_aside(const std::string& name, const std::string& reason);

    boost::asio::any_io_executor io_;
    boost::asio::any_io_executor blocking_;
    const queue::QueueStore& store_;
    std::function<void(const std::string&)> queued_;
    std::unique_ptr<Watch> watch_;
    bool scanning_ = false;  // io thread only
    bool rescan_ = false;
    bool stopped_ = false;
    std::mutex mutex_;  // settings_ and refused_, read by the scan
    Settings settings_;
    std::vector<std::string> refused_;  // names that could be neither moved nor removed
};

}  // namespace mta::pickup
