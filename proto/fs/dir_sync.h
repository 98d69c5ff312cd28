// Durable directory entries: fsync(2) of a directory, and the group commit
// that lets many threads renaming into one directory share one fsync.
//
// Why: a file fsynced and renamed into a directory is on disk only once the
// directory itself is fsynced (rename(2) changes the directory, not the
// file). Maildir delivery and the mail queue both answer "delivered" or
// "queued" only after that, so under load they would serialise on one fsync
// each; with the group commit an fsync that starts after a caller's ticket
// covers every rename made before the ticket was taken.
#pragma once

#include <string>

namespace proto::fs {

// fsync the directory at path; false and err set on failure.
bool fsync_dir(const std::string& path, int& err);

// The same, shared: callers that arrive while another thread is fsyncing
// path wait for the next fsync, which covers all of them. Thread-safe.
bool fsync_dir_shared(const std::string& path, int& err);

}  // namespace proto::fs
