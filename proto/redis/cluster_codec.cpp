// Redis Cluster codec. See cluster.h.
#include "redis/cluster.h"
#include "redis/reply_reader.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <memory>

namespace proto::redis::cluster {

namespace {

constexpr std::array<std::uint16_t, 256> make_crc_table() {
    std::array<std::uint16_t, 256> table{};
    for (unsigned i = 0; i < 256; ++i) {
        std::uint16_t crc = static_cast<std::uint16_t>(i << 8);
        for (int bit = 0; bit < 8; ++bit)
            crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
        table[i] = crc;
    }
    return table;
}

constexpr auto crc_table = make_crc_table();

void set_error(std::string* error, std::string text) {
    if (error) *error = std::move(text);
}

bool as_slot(const Reply& r, std::uint16_t& out) {
    if (r.type != Reply::Type::integer || r.integer < 0 || r.integer >= slot_count) return false;
    out = static_cast<std::uint16_t>(r.integer);
    return true;
}

bool as_port(const Reply& r, std::uint16_t& out) {
    long long value = -1;
    if (r.type == Reply::Type::integer) {
        value = r.integer;
    } else if (r.type == Reply::Type::string) {
        auto [end, ec] = std::from_chars(r.str.data(), r.str.data() + r.str.size(), value);
        if (ec != std::errc() || end != r.str.data() + r.str.size()) return false;
    }
    if (value <= 0 || value > 65535) return false;
    out = static_cast<std::uint16_t>(value);
    return true;
}

std::string node_host(const std::string& reported, const HostPort& answered_by) {
    if (reported.empty() || reported == "?") return answered_by.host;
    return reported;
}

// Sorts, then refuses overlaps (a node mid-reshard never reports two owners
// of one slot; a reply that does is not to be routed by).
bool finish(SlotMap& map, std::string* error) {
    std::sort(map.ranges.begin(), map.ranges.end(),
              [](const SlotRange& a, const SlotRange& b) { return a.first < b.first; });
    for (std::size_t i = 1; i < map.ranges.size(); ++i) {
        if (map.ranges[i].first <= map.ranges[i - 1].last) {
            set_error(error, "overlapping slot ranges");
            return false;
        }
    }
    return true;
}

// RESP2 map: a flat array of name, value pairs.
const Reply* field(const Reply& map, std::string_view name) {
    if (map.type != Reply::Type::array) return nullptr;
    for (std::size_t i = 0; i + 1 < map.elements.size(); i += 2) {
        const Reply& key = map.elements[i];
        if ((key.type == Reply::Type::string || key.type == Reply::Type::status) && key.str == name)
            return &map.elements[i + 1];
    }
    return nullptr;
}

}  // namespace

std::uint16_t crc16(std::string_view data) {
    std::uint16_t crc = 0;
    for (unsigned char c : data)
        crc = static_cast<std::uint16_t>((crc << 8) ^ crc_table[((crc >> 8) ^ c) & 0xff]);
    return crc;
}

std::uint16_t key_slot(std::string_view key) {
    auto open = key.find('{');
    if (open != std::string_view::npos) {
        auto close = key.find('}', open + 1);
        if (close != std::string_view::npos && close != open + 1)
            key = key.substr(open + 1, close - open - 1);
    }
    return crc16(key) & (slot_count - 1);
}

const SlotRange* SlotMap::find(std::uint16_t slot) const {
    auto it = std::upper_bound(ranges.begin(), ranges.end(), slot,
                               [](std::uint16_t s, const SlotRange& r) { return s < r.first; });
    if (it == ranges.begin()) return nullptr;
    --it;
    return slot <= it->last ? &*it : nullptr;
}

std::vector<HostPort> SlotMap::masters() const {
    std::vector<HostPort> out;
    for (const auto& range : ranges)
        if (std::find(out.begin(), out.end(), range.master) == out.end()) out.push_back(range.master);
    return out;
}

std::vector<HostPort> SlotMap::nodes() const {
    std::vector<HostPort> out = masters();
    for (const auto& range : ranges)
        for (const auto& replica : range.replicas)
            if (std::find(out.begin(), out.end(), replica) == out.end()) out.push_back(replica);
    return out;
}

bool SlotMap::covers_all() const {
    int next = 0;
    for (const auto& range : ranges) {
        if (range.first != next) return false;
        next = range.last + 1;
    }
    return next == slot_count;
}

std::optional<SlotMap> parse_slots(const Reply& reply, const HostPort& answered_by,
                                   std::string* error) {
    if (reply.type != Reply::Type::array) {
        set_error(error, "CLUSTER SLOTS: not an array");
        return std::nullopt;
    }
    if (reply.elements.size() > static_cast<std::size_t>(slot_count)) {
        set_error(error, "CLUSTER SLOTS: too many ranges");
        return std::nullopt;
    }
    SlotMap map;
    for (const Reply& entry : reply.elements) {
        if (entry.type != Reply::Type::array || entry.elements.size() < 3 ||
            entry.elements.size() > 2 + max_nodes_per_range) {
            set_error(error, "CLUSTER SLOTS: malformed range");
            return std::nullopt;
        }
        SlotRange range;
        if (!as_slot(entry.elements[0], range.first) || !as_slot(entry.elements[1], range.last) ||
            range.first > range.last) {
            set_error(error, "CLUSTER SLOTS: bad slot numbers");
            return std::nullopt;
        }
        for (std::size_t i = 2; i < entry.elements.size(); ++i) {
            const Reply& node = entry.elements[i];
            HostPort where;
            if (node.type != Reply::Type::array || node.elements.size() < 2 ||
                node.elements[0].type != Reply::Type::string || !as_port(node.elements[1], where.port)) {
                set_error(error, "CLUSTER SLOTS: malformed node");
                return std::nullopt;
            }
            where.host = node_host(node.elements[0].str, answered_by);
            if (i == 2)
                range.master = std::move(where);
            else
                range.replicas.push_back(std::move(where));
        }
        map.ranges.push_back(std::move(range));
    }
    if (!finish(map, error)) return std::nullopt;
    return map;
}

std::optional<SlotMap> parse_shards(const Reply& reply, const HostPort& answered_by, bool use_tls,
                                    std::string* error) {
    if (reply.type != Reply::Type::array || reply.elements.size() > static_cast<std::size_t>(slot_count)) {
        set_error(error, "CLUSTER SHARDS: not an array of shards");
        return std::nullopt;
    }
    SlotMap map;
    for (const Reply& shard : reply.elements) {
        const Reply* slots = field(shard, "slots");
        const Reply* nodes = field(shard, "nodes");
        if (!slots || !nodes || slots->type != Reply::Type::array || slots->elements.size() % 2 != 0 ||
            nodes->type != Reply::Type::array || nodes->elements.size() > max_nodes_per_range) {
            set_error(error, "CLUSTER SHARDS: malformed shard");
            return std::nullopt;
        }
        std::optional<HostPort> master;
        std::vector<HostPort> replicas;
        for (const Reply& node : nodes->elements) {
            const Reply* role = field(node, "role");
            const Reply* health = field(node, "health");
            const Reply* port = field(node, use_tls ? "tls-port" : "port");
            const Reply* endpoint = field(node, "endpoint");
            if (!endpoint) endpoint = field(node, "ip");
            if (!role || !port || !endpoint || endpoint->type != Reply::Type::string) {
                set_error(error, "CLUSTER SHARDS: malformed node");
                return std::nullopt;
            }
            if (health && health->str == "fail") continue;
            HostPort where;
            if (!as_port(*port, where.port)) {
                set_error(error, "CLUSTER SHARDS: bad port");
                return std::nullopt;
            }
            where.host = node_host(endpoint->str, answered_by);
            if (role->str == "master") {
                master = std::move(where);
            } else {
                replicas.push_back(std::move(where));
            }
        }
        if (slots->elements.empty()) continue;  // a shard without slots serves nothing
        if (!master) {
            set_error(error, "CLUSTER SHARDS: slots without a live master");
            return std::nullopt;
        }
        for (std::size_t i = 0; i < slots->elements.size(); i += 2) {
            SlotRange range;
            if (!as_slot(slots->elements[i], range.first) || !as_slot(slots->elements[i + 1], range.last) ||
                range.first > range.last) {
                set_error(error, "CLUSTER SHARDS: bad slot numbers");
                return std::nullopt;
            }
            range.master = *master;
            range.replicas = replicas;
            map.ranges.push_back(std::move(range));
            if (map.ranges.size() > static_cast<std::size_t>(slot_count)) {
                set_error(error, "CLUSTER SHARDS: too many ranges");
                return std::nullopt;
            }
        }
    }
    if (!finish(map, error)) return std::nullopt;
    return map;
}

Classified classify(const Reply& reply) {
    Classified out;
    if (reply.type != Reply::Type::error) return out;
    std::string_view text = reply.str;
    auto word_end = text.find(' ');
    std::string_view word = text.substr(0, word_end);
    if (word == "MOVED" || word == "ASK") {
        // "MOVED 3999 127.0.0.1:6381"; the host may be empty (":6381") when
        // the node's preferred endpoint is unknown; IPv6 hosts are bare.
        std::string_view rest = word_end == std::string_view::npos ? "" : text.substr(word_end + 1);
        auto space = rest.find(' ');
        std::string_view slot = rest.substr(0, space);
        std::string_view where = space == std::string_view::npos ? "" : rest.substr(space + 1);
        auto colon = where.rfind(':');
        unsigned slot_value = 0;
        auto [slot_end, slot_ec] = std::from_chars(slot.data(), slot.data() + slot.size(), slot_value);
        Reply port;
        port.type = Reply::Type::string;
        if (colon != std::string_view::npos) port.str = std::string(where.substr(colon + 1));
        if (slot.empty() || slot_ec != std::errc() || slot_end != slot.data() + slot.size() ||
            slot_value >= static_cast<unsigned>(slot_count) || colon == std::string_view::npos ||
            !as_port(port, out.target.port)) {
            out.kind = ErrorKind::other;  // a malformed redirect is not followed
            return out;
        }
        out.kind = word == "MOVED" ? ErrorKind::moved : ErrorKind::ask;
        out.slot = static_cast<std::uint16_t>(slot_value);
        std::string_view host = where.substr(0, colon);
        if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
        out.target.host = std::string(host);
        return out;
    }
    if (word == "TRYAGAIN") out.kind = ErrorKind::tryagain;
    else if (word == "CLUSTERDOWN") out.kind = ErrorKind::clusterdown;
    else if (word == "NOSCRIPT") out.kind = ErrorKind::noscript;
    else if (word == "READONLY") out.kind = ErrorKind::readonly;
    else if (word == "LOADING") out.kind = ErrorKind::loading;
    else if (word == "MASTERDOWN") out.kind = ErrorKind::masterdown;
    else out.kind = ErrorKind::other;
    return out;
}

const char* kind_name(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::none: return "none";
        case ErrorKind::moved: return "moved";
        case ErrorKind::ask: return "ask";
        case ErrorKind::tryagain: return "tryagain";
        case ErrorKind::clusterdown: return "clusterdown";
        case ErrorKind::noscript: return "noscript";
        case ErrorKind::readonly: return "readonly";
        case ErrorKind::loading: return "loading";
        case ErrorKind::masterdown: return "masterdown";
        case ErrorKind::other: return "other";
    }
    return "other";
}

std::optional<Reply> decode_reply(std::string_view bytes) {
    ReaderPtr reader = make_reader();
    if (redisReaderFeed(reader.get(), bytes.data(), bytes.size()) != REDIS_OK) return std::nullopt;
    void* object = nullptr;
    if (redisReaderGetReply(reader.get(), &object) != REDIS_OK || !object) return std::nullopt;
    std::unique_ptr<Reply> reply(static_cast<Reply*>(object));
    return std::move(*reply);
}

}  // namespace proto::redis::cluster
