// Unit tests of the configuration reader: defaults, bounds, types, unknown
// keys, durations, actions and networks, each error naming its key.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "daemon/config.h"

using proto::config::ConfigError;
using proto::config::Reader;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {
std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}
}  // namespace

TEST(Config, DefaultsWhenAbsent) {
    json j = json::object();
    Reader r(j);
    EXPECT_EQ(r.integer("n", 5, 0, 10), 5);
    EXPECT_EQ(r.duration("d", 300s, 0s, 1000s), 300s);
    EXPECT_TRUE(r.boolean("b", true));
    EXPECT_EQ(r.string("s", "x"), "x");
    EXPECT_EQ(r.action("a", "DEFER_IF_PERMIT later").kind,
              proto::policy::ActionKind::defer_if_permit);
    EXPECT_NO_THROW(r.finish());
}

TEST(Config, ValuesAndUnits) {
    json j = {{"n", 7}, {"d1", 60}, {"d2", "5m"}, {"d3", "2d"}, {"d4", "1w"}, {"s", "y"},
              {"list", {"a", "b"}}, {"one", "c"}, {"c", "JSON"}, {"nets", {"10.0.0.0/8"}}};
    Reader r(j);
    EXPECT_EQ(r.integer("n", 0, 0, 10), 7);
    EXPECT_EQ(r.duration("d1", 0s, 0s, 10000000s), 60s);
    EXPECT_EQ(r.duration("d2", 0s, 0s, 10000000s), 300s);
    EXPECT_EQ(r.duration("d3", 0s, 0s, 10000000s), 172800s);
    EXPECT_EQ(r.duration("d4", 0s, 0s, 10000000s), 604800s);
    EXPECT_EQ(r.string("s", ""), "y");
    EXPECT_EQ(r.strings("list", {}), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(r.strings("one", {}), (std::vector<std::string>{"c"}));
    EXPECT_EQ(r.choice("c", "text", {"text", "json"}), "json");
    EXPECT_TRUE(r.cidrs("nets", {}).contains("10.9.8.7"));
    EXPECT_NO_THROW(r.finish());
}

TEST(Config, ErrorsNameTheKey) {
    json j = {{"n", 11}, {"t", "x"}, {"d", "5 parsecs"}, {"b", "yes"}, {"a", "MAYBE"},
              {"c", "xml"}, {"nets", {"300.1.1.1"}}, {"typo_key", 1}};
    Reader r(j);
    EXPECT_NE(error_of([&] { r.integer("n", 0, 0, 10); }).find("\"n\""), std::string::npos);
    EXPECT_NE(error_of([&] { r.integer("t", 0, 0, 10); }).find("\"t\""), std::string::npos);
    EXPECT_NE(error_of([&] { r.duration("d", 0s, 0s, 10s); }).find("\"d\""), std::string::npos);
    EXPECT_NE(error_of([&] { r.boolean("b", false); }).find("\"b\""), std::string::npos);
    EXPECT_NE(error_of([&] { r.action("a", "DUNNO"); }).find("\"a\""), std::string::npos);
    EXPECT_NE(error_of([&] { r.choice("c", "text", {"text", "json"}); }).find("one of"),
              std::string::npos);
    EXPECT_NE(error_of([&] { r.cidrs("nets", {}); }).find("300.1.1.1"), std::string::npos);
    auto unknown = error_of([&] { r.finish(); });
    EXPECT_NE(unknown.find("typo_key"), std::string::npos);
    EXPECT_NE(unknown.find("unknown key"), std::string::npos);
}

TEST(Config, NestedContextInErrors) {
    json j = {{"limit", -1}};
    Reader r(j, "rules[2]");
    EXPECT_NE(error_of([&] { r.integer("limit", 1, 1, 100); }).find("rules[2].limit"),
              std::string::npos);
}

TEST(Config, NotAnObject) {
    json j = json::array();
    EXPECT_THROW(Reader r(j), ConfigError);
}

TEST(Config, ParseDuration) {
    EXPECT_EQ(proto::config::parse_duration("0"), 0s);
    EXPECT_EQ(proto::config::parse_duration("90s"), 90s);
    EXPECT_EQ(proto::config::parse_duration("3h"), 10800s);
    EXPECT_THROW(proto::config::parse_duration(""), std::invalid_argument);
    EXPECT_THROW(proto::config::parse_duration("-1"), std::invalid_argument);
    EXPECT_THROW(proto::config::parse_duration("1y"), std::invalid_argument);
    EXPECT_THROW(proto::config::parse_duration("99999999999999999w"), std::invalid_argument);
}
