// The queue directory: where an accepted message lives until delivered.
//
//   incoming/ID   being written where O_TMPFILE is not available (a file
//                 written with O_TMPFILE has no name until it is complete);
//                 never delivered; removed at start
//   active/ID     complete and durable: file and directory fsynced before the
//                 client got its 250; delivered, retried, or bounced
//   hold/ID       kept until released (HOLD actions, `queue hold`)
//   corrupt/ID    a file that does not parse, kept for the operator
//   defer/ID      why a deferred message waits and until when (advisory,
//                 defer_info.h), for `mta-core queue list`
//
// Every call blocks on the file system: run it off the I/O thread. Durability
// (the rule behind the 250): write, fsync(file), name it in active/ (linkat
// of an O_TMPFILE file, or rename from incoming/), fsync(active/) through the group commit shared by concurrent sessions
// (proto/fs/dir_sync.h). A recipient is marked done by rewriting its one
// flag byte in place and fdatasync; when every recipient is done the file is
// removed. A crash between a delivery and its mark delivers again: delivery
// is at least once, never at most once.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "queue/defer_info.h"
#include "queue/queue_file.h"

namespace mta::queue {

enum class Place { incoming, active, hold, corrupt };
std::string_view place_name(Place place);

struct Loaded {
    Envelope envelope;
    std::string content;
};

class QueueStore {
public:
    explicit QueueStore(std::string directory);
    const std::string& directory() const { return directory_; }

    // Make the four subdirectories (mode 0700); throws std::system_error.
    void prepare() const;
    // A new queue id: 12 upper-case hex digits, time-ordered, unique in this
    // queue (the file is created with O_EXCL).
    std::string new_id() const;

    // Store a message durably in active/. 0, or the errno (ENOSPC, EDQUOT,
    // EIO...) after removing what was written.
    int commit(const Envelope& envelope, std::string_view content) const;

    // Read one message. nullopt and error set if missing or corrupt.
    std::optional<Loaded> load(Place place, const std::string& id, std::string* error) const;
    // Mark the given recipient indexes done (durably); removes the file when
    // all are done. 0 or errno.
    int mark_done(const std::string& id, const Envelope& envelope,
                  const std::vector<std::size_t>& indexes) const;
    // Move a message between places (hold/release/corrupt). 0 or errno.
    int move(const std::string& id, Place from, Place to) const;
    int remove(Place place, const std::string& id) const;
    // Queue ids in a place, oldest first (ids are time-ordered).
    std::vector<std::string> list(Place place) const;
    // The deferral note of a message (advisory: written without fsync,
    // replaced whole by rename; removed with the message).
    void write_defer_info(const std::string& id, const DeferInfo& info) const;
    std::optional<DeferInfo> read_defer_info(const std::string& id) const;
    void remove_defer_info(const std::string& id) const;
    // Remove incoming/ leftovers of a crash; returns how many.
    std::size_t remove_incomplete() const;

    std::string path(Place place, std::string_view id) const;

private:
    std::string directory_;
};

// The id is made of [0-9A-F] only: safe as a file name.
bool valid_id(std::string_view id);

}  // namespace mta::queue
