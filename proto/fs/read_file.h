// Reading a whole file that this program itself wrote or an operator
// controls (a queue file, a maildirsize file): O_NOFOLLOW, EINTR retried,
// at most max_bytes kept, so a file that grew out of bounds cannot exhaust
// memory.
#pragma once

#include <cstddef>
#include <string>

namespace proto::fs {

// Fills out (replacing it) and returns true, or returns false with err set.
// Stops reading once max_bytes are held (the rest of the file is not read).
bool read_file(const std::string& path, std::string& out, int& err, std::size_t max_bytes);

}  // namespace proto::fs
