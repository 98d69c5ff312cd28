// The Maildir delivery algorithm (maildir(5), Dovecot's and OpenSMTPD's
// practice), blocking, for a worker thread:
//
//   create an unnamed file in tmp/ (O_TMPFILE), mode 0600; write; fsync;
//   link it into new/<unique>; fsync new/ (concurrent deliveries into one
//   Maildir share that fsync: group commit). Without O_TMPFILE or a usable
//   /proc: tmp/<unique> with O_EXCL|O_NOFOLLOW, renamed into new/.
//   A new Maildir is built under a hidden name beside it and renamed into
//   place whole; directories created on the way have their parents fsynced
//   before the message is written.
//
// Guarantees: a success is returned only after both fsyncs; on any failure
// (ENOSPC, EIO, EACCES, ...) the tmp file is removed and nothing is left in
// new/, so the caller answers with a temporary error and the sender retries.
// A crash at any point leaves at most a file in tmp/, which is removed once
// older than tmp_max_age.
//
// Unique names: <sec>.M<usec>P<pid>Q<counter>.<host>,S=<size>,W=<crlf size>
// (Dovecot reads S= and W= instead of stat()ing and counting lines). The
// counter is per process and atomic, so threads never collide.
//
// Limits: Maildir++ quota (maildirsize) is honoured when the file exists; it
// is recalculated from the file names when it grows past 5120 bytes, as the
// Maildir++ specification says. The folder and path arguments must already
// be validated (recipient.h); this file does not interpret addresses.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace maildir {

struct WriteOptions {
    std::string hostname = "localhost";
    bool quota = true;
    std::chrono::seconds tmp_max_age{36 * 3600};
    std::string create_below;  // create missing parents of the Maildir below this directory
    bool unnamed_tmp = true;   // O_TMPFILE where possible; false: always a named tmp/ file
};

struct WriteResult {
    enum class Status { ok, over_quota, failed } status = Status::failed;
    std::string error;  // for logs and replies (strerror text, never file contents)
    int error_number = 0;
    std::string file;   // new/ path on success
};

// Deliver prefix + body into the Maildir at root (created with mode 0700 when
// missing), into the Maildir++ folder `folder` (".work") when it is non-empty
// and exists, else into INBOX.
WriteResult deliver(const std::string& root, const std::string& folder, std::string_view prefix,
                    std::string_view body, const WriteOptions& options);

// A unique file name for the given size fields (exposed for tests).
std::string unique_name(const std::string& hostname, std::size_t size, std::size_t crlf_size);

// Remove tmp/ files older than max_age; returns how many were removed. Runs
// at most every 8 hours per Maildir (tracked by tmp/'s access time, as Dovecot
// does), unless force.
int clean_tmp(const std::string& dir, std::chrono::seconds max_age, bool force = false);

struct Quota {
    std::int64_t max_bytes = 0;  // 0 = no limit
    std::int64_t max_count = 0;
    std::int64_t bytes = 0;
    std::int64_t count = 0;
    std::size_t file_size = 0;
};
// Parse a maildirsize file's content; false if it is malformed.
bool parse_maildirsize(std::string_view content, Quota& out);

}  // namespace maildir
