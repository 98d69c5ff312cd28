// JSON configuration, read key by key: each parameter is declared once, where
// it is read, with its default and bounds. Unknown keys and bad values are
// errors that name the key; finish() reports keys nobody read.
//
// Durations take seconds as a number, or Postfix time units as a string:
// "300s", "5m", "2h", "35d", "1w".
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "net/address.h"
#include "policy/action.h"

namespace proto::config {

class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Reader {
public:
    // obj must be a JSON object (or null = empty); context prefixes key names
    // in errors, e.g. "rules[2]".
    explicit Reader(const nlohmann::json& obj, std::string context = "");
    ~Reader();
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    bool has(std::string_view key) const;
    std::int64_t integer(std::string_view key, std::int64_t def, std::int64_t min,
                         std::int64_t max);
    std::chrono::seconds duration(std::string_view key, std::chrono::seconds def,
                                  std::chrono::seconds min, std::chrono::seconds max);
    std::chrono::milliseconds milliseconds(std::string_view key, std::chrono::milliseconds def,
                                           std::chrono::milliseconds min,
                                           std::chrono::milliseconds max);
    bool boolean(std::string_view key, bool def);
    std::string string(std::string_view key, std::string_view def);
    // One of choices, matched case-insensitively; returns the spelling in choices.
    std::string choice(std::string_view key, std::string_view def,
                       const std::vector<std::string>& choices);
    // A string or an array of strings.
    std::vector<std::string> strings(std::string_view key, const std::vector<std::string>& def);
    policy::Action action(std::string_view key, std::string_view def);
    net::CidrList cidrs(std::string_view key, const std::vector<std::string>& def);
    std::vector<net::Endpoint> endpoints(std::string_view key,
                                         const std::vector<std::string>& def);
    // Raw access for nested structures (lists of objects); marks the key read.
    // Returns nullptr if absent.
    const nlohmann::json* raw(std::string_view key);

    // Throw ConfigError for every key that was present but never read.
    void finish() const;
    [[noreturn]] void fail(std::string_view key, std::string_view why) const;
    std::string name(std::string_view key) const;

private:
    const nlohmann::json* find(std::string_view key);
    const nlohmann::json& obj_;
    std::string context_;
    std::set<std::string, std::less<>> read_;
};

// Parse a duration string ("300", "300s", "5m", ...) into seconds; throws
// std::invalid_argument.
std::chrono::seconds parse_duration(std::string_view text);

// Read and parse a JSON file; throws ConfigError with the file name and the
// parser's position.
std::unique_ptr<nlohmann::json> load_file(const std::string& path);

}  // namespace proto::config
