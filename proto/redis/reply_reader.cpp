// hiredis reader callbacks that build Reply trees. See reply_reader.h.
#include "redis/reply_reader.h"

#include <hiredis/hiredis.h>

#include <new>

namespace proto::redis {

namespace {

// ---- Reply trees built by hiredis callbacks --------------------------------
// A root reply is heap-allocated and owned by hiredis until handed to us;
// children live inside their parent's `elements`, sized once by
// create_array, so their addresses are stable. hiredis only ever frees roots.
// Exceptions must not cross the C code: failures become NULL, which hiredis
// reports as an out-of-memory protocol error.
template <typename Fill>
void* build_reply(const redisReadTask* task, Fill&& fill) noexcept {
    try {
        if (task->parent) {
            auto* parent = static_cast<Reply*>(task->parent->obj);
            Reply& child = parent->elements.at(static_cast<std::size_t>(task->idx));
            fill(child);
            return &child;
        }
        auto root = std::make_unique<Reply>();
        fill(*root);
        return root.release();
    } catch (...) {
        return nullptr;
    }
}

void* create_string(const redisReadTask* task, char* data, size_t length) {
    return build_reply(task, [&](Reply& reply) {
        switch (task->type) {
            case REDIS_REPLY_ERROR: reply.type = Reply::Type::error; break;
            case REDIS_REPLY_STATUS: reply.type = Reply::Type::status; break;
            default: reply.type = Reply::Type::string; break;
        }
        reply.str.assign(data, length);
    });
}

void* create_array(const redisReadTask* task, int elements) {
    if (elements < 0 || elements > max_reply_elements) return nullptr;
    return build_reply(task, [&](Reply& reply) {
        reply.type = Reply::Type::array;
        reply.elements.resize(static_cast<std::size_t>(elements));
    });
}

void* create_integer(const redisReadTask* task, long long value) {
    return build_reply(task, [&](Reply& reply) {
        reply.type = Reply::Type::integer;
        reply.integer = value;
    });
}

void* create_nil(const redisReadTask* task) {
    return build_reply(task, [](Reply& reply) { reply.type = Reply::Type::nil; });
}

void free_reply(void* reply) { delete static_cast<Reply*>(reply); }

redisReplyObjectFunctions reply_functions = {create_string, create_array, create_integer,
                                             create_nil, free_reply};

}  // namespace

void ReaderDeleter::operator()(redisReader* reader) const { redisReaderFree(reader); }

ReaderPtr make_reader() {
    ReaderPtr reader(redisReaderCreateWithFunctions(&reply_functions));
    if (!reader) throw std::bad_alloc();
    reader->maxbuf = reader_kept_buffer;
    return reader;
}


}  // namespace proto::redis
