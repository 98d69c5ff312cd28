#include "daemon/config.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace proto::config {

using nlohmann::json;

namespace {
const json& empty_object() {
    static const json e = json::object();
    return e;
}

// MAILPOLICY_LIST_CONFIG_KEYS=1 in the environment: every key a Reader
// looks up is printed to stderr as "config key: NAME" (nested ones as
// "rules[0].limit"). The keys a program accepts are exactly the keys its
// readers look up, so this is how the manual-page test learns them from the
// program itself rather than from a list kept by hand. Not for operators.
bool list_keys() {
    static const bool on = [] {
        const char* v = std::getenv("MAILPOLICY_LIST_CONFIG_KEYS");
        return v != nullptr && std::string_view(v) == "1";
    }();
    return on;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}
}  // namespace

Reader::Reader(const json& obj, std::string context)
    : obj_(obj.is_null() ? empty_object() : obj), context_(std::move(context)) {
    if (!obj_.is_object()) throw ConfigError((context_.empty() ? "configuration" : context_) +
                                             ": expected a JSON object");
}

Reader::~Reader() = default;

std::string Reader::name(std::string_view key) const {
    return context_.empty() ? std::string(key) : context_ + "." + std::string(key);
}

void Reader::fail(std::string_view key, std::string_view why) const {
    throw ConfigError("\"" + name(key) + "\": " + std::string(why));
}

bool Reader::has(std::string_view key) const { return obj_.contains(std::string(key)); }

const json* Reader::find(std::string_view key) {
    if (read_.emplace(key).second && list_keys())
        std::fprintf(stderr, "config key: %s\n", name(key).c_str());
    auto it = obj_.find(std::string(key));
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
}

const json* Reader::raw(std::string_view key) { return find(key); }

std::int64_t Reader::integer(std::string_view key, std::int64_t def, std::int64_t min,
                             std::int64_t max) {
    const json* v = find(key);
    if (!v) return def;
    if (!v->is_number_integer()) fail(key, "expected an integer");
    auto n = v->get<std::int64_t>();
    if (n < min || n > max)
        fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return n;
}

std::chrono::seconds parse_duration(std::string_view text) {
    if (text.empty()) throw std::invalid_argument("empty duration");
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || n < 0) throw std::invalid_argument("bad duration");
    std::string_view unit(p, static_cast<std::size_t>(text.data() + text.size() - p));
    std::int64_t mult = 1;
    if (unit.empty() || unit == "s") mult = 1;
    else if (unit == "m") mult = 60;
    else if (unit == "h") mult = 3600;
    else if (unit == "d") mult = 86400;
    else if (unit == "w") mult = 7 * 86400;
    else throw std::invalid_argument("unknown time unit");
    if (n > INT64_MAX / mult) throw std::invalid_argument("duration too large");
    return std::chrono::seconds(n * mult);
}

std::chrono::seconds Reader::duration(std::string_view key, std::chrono::seconds def,
                                      std::chrono::seconds min, std::chrono::seconds max) {
    const json* v = find(key);
    if (!v) return def;
    std::chrono::seconds s;
    if (v->is_number_integer()) {
        s = std::chrono::seconds(v->get<std::int64_t>());
    } else if (v->is_string()) {
        try {
            s = parse_duration(v->get<std::string>());
        } catch (const std::invalid_argument&) {
            fail(key, "expected seconds, or a number with unit s, m, h, d or w");
        }
    } else {
        fail(key, "expected seconds, or a number with unit s, m, h, d or w");
    }
    if (s < min || s > max)
        fail(key, "must be between " + std::to_string(min.count()) + "s and " +
                      std::to_string(max.count()) + "s");
    return s;
}

std::chrono::milliseconds Reader::milliseconds(std::string_view key,
                                               std::chrono::milliseconds def,
                                               std::chrono::milliseconds min,
                                               std::chrono::milliseconds max) {
    const json* v = find(key);
    if (!v) return def;
    if (!v->is_number_integer()) fail(key, "expected milliseconds as an integer");
    std::chrono::milliseconds ms(v->get<std::int64_t>());
    if (ms < min || ms > max)
        fail(key, "must be between " + std::to_string(min.count()) + " and " +
                      std::to_string(max.count()) + " milliseconds");
    return ms;
}

bool Reader::boolean(std::string_view key, bool def) {
    const json* v = find(key);
    if (!v) return def;
    if (!v->is_boolean()) fail(key, "expected true or false");
    return v->get<bool>();
}

std::string Reader::string(std::string_view key, std::string_view def) {
    const json* v = find(key);
    if (!v) return std::string(def);
    if (!v->is_string()) fail(key, "expected a string");
    return v->get<std::string>();
}

std::string Reader::choice(std::string_view key, std::string_view def,
                           const std::vector<std::string>& choices) {
    std::string value = string(key, def);
    for (const auto& c : choices)
        if (iequals(c, value)) return c;
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
    fail(key, "must be one of " + list);
}

std::vector<std::string> Reader::strings(std::string_view key,
                                         const std::vector<std::string>& def) {
    const json* v = find(key);
    if (!v) return def;
    if (v->is_string()) return {v->get<std::string>()};
    if (!v->is_array()) fail(key, "expected a string or a list of strings");
    std::vector<std::string> out;
    for (const auto& e : *v) {
        if (!e.is_string()) fail(key, "expected a list of strings");
        out.push_back(e.get<std::string>());
    }
    return out;
}

policy::Action Reader::action(std::string_view key, std::string_view def) {
    std::string text = string(key, def);
    auto parsed = policy::parse_action(text);
    if (!parsed.action) fail(key, "not an access(5) action: " + parsed.error);
    return *parsed.action;
}

net::CidrList Reader::cidrs(std::string_view key, const std::vector<std::string>& def) {
    auto list = strings(key, def);
    try {
        return net::CidrList::parse(list);
    } catch (const std::invalid_argument& e) {
        fail(key, e.what());
    }
}

std::vector<net::Endpoint> Reader::endpoints(std::string_view key,
                                             const std::vector<std::string>& def) {
    std::vector<net::Endpoint> out;
    for (const auto& text : strings(key, def)) {
        auto parsed = net::parse_endpoint(text);
        if (!parsed.endpoint) fail(key, "\"" + text + "\": " + parsed.error);
        out.push_back(*parsed.endpoint);
    }
    return out;
}

void Reader::finish() const {
    for (auto it = obj_.begin(); it != obj_.end(); ++it)
        if (!read_.contains(it.key())) throw ConfigError("\"" + name(it.key()) + "\": unknown key");
}

std::unique_ptr<json> load_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw ConfigError(path + ": cannot open");
    try {
        auto j = std::make_unique<json>(json::parse(in, nullptr, true, /*ignore_comments=*/true));
        if (!j->is_object()) throw ConfigError(path + ": expected a JSON object");
        return j;
    } catch (const json::parse_error& e) {
        throw ConfigError(path + ": " + e.what());
    }
}

}  // namespace proto::config
