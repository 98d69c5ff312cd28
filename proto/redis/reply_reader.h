// hiredis' reply reader building Reply trees directly, with the bounds
// hiredis 0.14 lacks: an array header over max_reply_elements is a protocol
// error instead of an allocation of that many slots (found by fuzzing: a
// "*1555555555" header asked calloc for 12 GB). Shared by the client's
// connection and cluster::decode_reply.
#pragma once

#include <memory>

#include "redis/client.h"

struct redisReader;

namespace proto::redis {

constexpr int max_reply_elements = 1 << 20;
// Keep the reader's buffer between reads up to this size instead of freeing
// it after each batch (hiredis' default is 16 KiB, smaller than one read).
constexpr std::size_t reader_kept_buffer = 256u << 10;

struct ReaderDeleter {
    void operator()(redisReader* reader) const;
};
using ReaderPtr = std::unique_ptr<redisReader, ReaderDeleter>;

// A reader whose replies are heap Reply objects (free with delete).
ReaderPtr make_reader();

}  // namespace proto::redis
