// Redis Cluster codec: key slots, the slot map from CLUSTER SLOTS or CLUSTER
// SHARDS, and the classification of error replies that steer a cluster
// client. No I/O, so it is tested on captured replies and fuzzed.
//
// Spec: https://redis.io/docs/reference/cluster-spec/ ("Keys distribution
// model", "Hash tags", "Redirection and resharding").
//
// Limits: a slot map holds at most slot_count ranges (one per slot), node
// lists at most max_nodes_per_range entries; anything else is refused as
// malformed rather than trusted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "redis/client.h"

namespace proto::redis::cluster {

constexpr int slot_count = 16384;
constexpr std::size_t max_nodes_per_range = 64;

// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as the spec's
// reference implementation.
std::uint16_t crc16(std::string_view data);

// The slot of a key: CRC16 of the key, or of the text between the first '{'
// and the next '}' when that text is not empty (a hash tag), modulo 16384.
std::uint16_t key_slot(std::string_view key);

// One range of slots and the nodes serving it.
struct SlotRange {
    std::uint16_t first = 0;
    std::uint16_t last = 0;
    HostPort master;
    std::vector<HostPort> replicas;
};

struct SlotMap {
    std::vector<SlotRange> ranges;  // sorted by first, not overlapping

    const SlotRange* find(std::uint16_t slot) const;  // null: no node serves it
    std::vector<HostPort> masters() const;            // distinct, in map order
    std::vector<HostPort> nodes() const;              // masters, then replicas
    bool covers_all() const;
};

// CLUSTER SLOTS (RESP2): [[first, last, [host, port, id, ...], replicas...], ...].
// A node that does not know its own address reports "" or "?"; it is the
// node that answered, `answered_by`. Returns nullopt and sets *error on a
// malformed reply.
std::optional<SlotMap> parse_slots(const Reply& reply, const HostPort& answered_by,
                                   std::string* error = nullptr);

// CLUSTER SHARDS (Redis 7, RESP2 maps as flat arrays): per shard "slots"
// [first, last, ...] and "nodes" with "endpoint"/"ip", "port" (or
// "tls-port" when use_tls), "role" and "health". Failed nodes are left out.
std::optional<SlotMap> parse_shards(const Reply& reply, const HostPort& answered_by,
                                    bool use_tls, std::string* error = nullptr);

// What an error reply asks a cluster (or Sentinel) client to do.
enum class ErrorKind {
    none,         // not an error reply
    moved,        // the slot lives elsewhere for good: retry there, refresh the map
    ask,          // the slot is migrating: ASKING then the command, there, once
    tryagain,     // multi-key command during a migration: back off, retry
    clusterdown,  // no node serves the slot right now: back off, refresh, retry
    noscript,     // this node's script cache lacks the script: load and retry
    readonly,     // a replica (e.g. a demoted master): find the master again
    loading,      // the node is loading its data set: back off, retry
    masterdown,   // a replica lost its master: back off, retry
    other,        // an error for the caller
};

struct Classified {
    ErrorKind kind = ErrorKind::none;
    std::uint16_t slot = 0;  // moved, ask
    HostPort target;         // moved, ask; host empty: the node that answered
};

Classified classify(const Reply& reply);
const char* kind_name(ErrorKind kind);

// One RESP reply decoded by hiredis' reader (for tests and fuzzing; the
// client decodes its stream itself). nullopt for an incomplete or invalid
// input.
std::optional<Reply> decode_reply(std::string_view bytes);

}  // namespace proto::redis::cluster
