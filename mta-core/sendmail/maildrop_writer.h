// The postdrop helper's one job: put a maildrop file into
// $queue_directory/maildrop durably, as the invoking user.
//
// maildrop/ is mode 1730, owned by mail_owner and setgid_group: members of
// the group (the helper, setgid) may create files but not list or read the
// directory, and the sticky bit keeps users from removing each other's
// files. Files are created mode 0644 (the pickup side, as mail_owner, reads
// them; nobody else can reach them through the directory) under a "t."
// name with O_EXCL, written, fsynced, then renamed to their final name,
// which pickup watches for. The directory itself cannot be opened for
// fsync by the group (it has no read permission), so the helper syncs the
// file system (syncfs(2)) after the rename: the entry is on disk before
// sendmail reports success.
#pragma once

#include <string>
#include <string_view>

namespace mta::sendmail {

constexpr std::string_view kTempPrefix = "t.";

// 0 and name set, or the errno after removing what was written.
int write_maildrop(const std::string& maildrop_directory, std::string_view file, std::string* name);

}  // namespace mta::sendmail
