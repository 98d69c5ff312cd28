// Unit tests of the rule logic: stages, key normalisation, match, overrides
// file, bucket names and configuration errors. No I/O.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "bucket_key.h"
#include "daemon/config.h"
#include "program.h"
#include "rule.h"
#include "support/process.h"

using namespace ratelimit;
using proto::policy::Request;

namespace {

Request req(std::initializer_list<std::pair<const char*, const char*>> attrs) {
    Request r;
    for (const auto& [k, v] : attrs) r.append(k, v);
    return r;
}

std::shared_ptr<Settings> settings(const std::string& json) {
    auto doc = nlohmann::json::parse(json);
    proto::config::Reader reader(doc);
    auto s = read_settings(reader);
    reader.finish();
    return s;
}

std::string config_error(const std::string& json) {
    try {
        settings(json);
    } catch (const proto::config::ConfigError& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST(RateRule, RolesPerCountKindAndStage) {
    Rule r;
    r.count = CountKind::recipients;
    EXPECT_EQ(r.role(Stage::rcpt), Role::consume);
    EXPECT_EQ(r.role(Stage::end_of_message), Role::none);
    EXPECT_EQ(r.role(Stage::connect), Role::none);
    r.count = CountKind::messages;
    EXPECT_EQ(r.role(Stage::mail), Role::check);
    EXPECT_EQ(r.role(Stage::rcpt), Role::check);
    EXPECT_EQ(r.role(Stage::data), Role::check);
    EXPECT_EQ(r.role(Stage::end_of_message), Role::consume);
    EXPECT_EQ(r.role(Stage::connect), Role::none);
    r.count = CountKind::size;
    EXPECT_EQ(r.role(Stage::end_of_message), Role::consume);
    EXPECT_EQ(r.role(Stage::rcpt), Role::check);
    r.count = CountKind::connections;
    EXPECT_EQ(r.role(Stage::connect), Role::consume);
    EXPECT_EQ(r.role(Stage::rcpt), Role::none);
    EXPECT_EQ(parse_stage("end-of-message"), Stage::end_of_message);
    EXPECT_EQ(parse_stage("VRFY"), Stage::other);
    EXPECT_EQ(parse_stage(""), Stage::other);
}

TEST(RateRule, SizeCostIsDeclaredThenActual) {
    Rule r;
    r.count = CountKind::size;
    EXPECT_EQ(r.cost(req({{"size", "12345"}}), Stage::end_of_message), 12345);
    EXPECT_EQ(r.cost(req({{"size", "0"}}), Stage::rcpt), 1);  // room for at least one byte
    EXPECT_EQ(r.cost(req({{"size", "500"}}), Stage::rcpt), 500);
    EXPECT_EQ(r.cost(req({{"size", "12x"}}), Stage::end_of_message), 0);  // garbage counts nothing
    EXPECT_EQ(r.cost(req({{"size", "99999999999999999999999"}}), Stage::end_of_message), kMaxLimit);
    r.count = CountKind::messages;
    EXPECT_EQ(r.cost(req({{"size", "12345"}}), Stage::end_of_message), 1);
}

TEST(RateRule, KeyValuesAreNormalised) {
    auto r = req({{"sasl_username", "Alice@Example.COM"},
                  {"sender", "Bob@Mail.Example.ORG."},
                  {"client_address", "::ffff:192.0.2.77"},
                  {"recipient", "Carol@Dest.Example"}});
    EXPECT_EQ(key_value(r, KeyAttribute::sasl_username, 24, 64), "alice@example.com");
    EXPECT_EQ(key_value(r, KeyAttribute::sender, 24, 64), "bob@mail.example.org.");
    EXPECT_EQ(key_value(r, KeyAttribute::sender_domain, 24, 64), "mail.example.org");
    EXPECT_EQ(key_value(r, KeyAttribute::client_address, 24, 64), "192.0.2.77");
    EXPECT_EQ(key_value(r, KeyAttribute::client_network, 24, 64), "192.0.2.0/24");
    EXPECT_EQ(key_value(r, KeyAttribute::client_network, 16, 64), "192.0.0.0/16");
    EXPECT_EQ(key_value(r, KeyAttribute::recipient_domain, 24, 64), "dest.example");
    auto v6 = req({{"client_address", "2001:DB8:1:2:3::4"}});
    EXPECT_EQ(key_value(v6, KeyAttribute::client_network, 24, 48), "2001:db8:1::/48");
    // The null sender has no domain; an absent attribute is empty.
    EXPECT_EQ(key_value(req({{"sender", ""}}), KeyAttribute::sender_domain, 24, 64), "");
    EXPECT_EQ(key_value(req({}), KeyAttribute::sasl_username, 24, 64), "");
}

TEST(RateRule, EmptyKeyMeansTheRuleDoesNotApply) {
    Rule r;
    r.key = {KeyAttribute::sasl_username, KeyAttribute::client_address};
    EXPECT_FALSE(r.key_values(req({{"client_address", "192.0.2.1"}})).has_value());
    EXPECT_FALSE(r.key_values(req({{"sasl_username", ""}, {"client_address", "192.0.2.1"}})));
    auto v = r.key_values(req({{"sasl_username", "U"}, {"client_address", "192.0.2.1"}}));
    ASSERT_TRUE(v);
    EXPECT_EQ(join_key(*v), "u\x1f" "192.0.2.1");
}

TEST(RateRule, MatchExactListAndRegex) {
    Match m;
    m.set_attribute("sasl_method");
    m.add("PLAIN");
    m.add("login");
    EXPECT_TRUE(m.matches("plain"));
    EXPECT_TRUE(m.matches("LOGIN"));
    EXPECT_FALSE(m.matches("CRAM-MD5"));
    EXPECT_FALSE(m.matches(""));

    Match re;
    re.add("/^[a-z]+\\.example\\.(com|net)$/");
    EXPECT_TRUE(re.matches("Mail.Example.COM"));  // case-insensitive
    EXPECT_FALSE(re.matches("mail.example.org"));
    // A NUL inside a value does not cut the value short.
    EXPECT_FALSE(re.matches(std::string_view("mail.example.com\0x", 18)));

    Match bad;
    EXPECT_THROW(bad.add("//"), std::invalid_argument);
    EXPECT_THROW(bad.add("/a(/"), std::invalid_argument);
    // Patterns whose compiled form would explode are refused before regcomp.
    EXPECT_THROW(bad.add("/ab++/"), std::invalid_argument);
    EXPECT_THROW(bad.add("/a*{2}/"), std::invalid_argument);
    EXPECT_THROW(bad.add("/" + std::string(20, '(') + "a" + [] {
                     std::string s;
                     for (int i = 0; i < 20; ++i) s += ")+";
                     return s;
                 }() + "/"),
                 std::invalid_argument);
    EXPECT_THROW(bad.add("/((a{99}){99}){99}/"), std::invalid_argument);
    EXPECT_THROW(bad.add("/x{1000000000}/"), std::invalid_argument);
    // Ordinary patterns, repetitions and bracket expressions with ']' pass.
    Match ok;
    EXPECT_NO_THROW(ok.add("/^(mx|smtp)[0-9]{1,3}\\.(example|test)\\.(com|net)$/"));
    EXPECT_NO_THROW(ok.add("/^[]a-z[:digit:]+]{2,64}@(sub\\.)*example\\.org$/"));
    EXPECT_NO_THROW(ok.add("/(a+b?c*){50}/"));
    EXPECT_TRUE(ok.matches("mx12.example.net"));
    EXPECT_TRUE(ok.matches("ab]9@sub.sub.example.org"));

    Rule rule;
    Match d;
    d.set_attribute("sender_domain");  // derived attribute
    d.add("example.com");
    rule.match.push_back(d);
    EXPECT_TRUE(rule.matches(req({{"sender", "x@EXAMPLE.com"}})));
    EXPECT_FALSE(rule.matches(req({{"sender", "x@example.org"}})));
}

TEST(RateRule, OverridesFileParsesAndReportsTheLine) {
    auto ok = parse_overrides(
        "# comment\n\nsubmission alice@example.com 5000\r\n"
        "  submission\t@bulk.example unlimited # trailing\n"
        "pair u 192.0.2.1 0\n");
    ASSERT_EQ(ok.error, "");
    ASSERT_EQ(ok.lines.size(), 3u);
    EXPECT_EQ(ok.lines[0].rule, "submission");
    EXPECT_EQ(ok.lines[0].values, std::vector<std::string>{"alice@example.com"});
    EXPECT_EQ(ok.lines[0].value.limit, 5000);
    EXPECT_TRUE(ok.lines[1].value.unlimited);
    EXPECT_EQ(ok.lines[2].values.size(), 2u);
    EXPECT_EQ(ok.lines[2].line, 5);

    EXPECT_EQ(parse_overrides("a b\n").error, "line 1: expected RULE KEY... LIMIT");
    EXPECT_NE(parse_overrides("\nr k -1\n").error.find("line 2: limit"), std::string::npos);
    EXPECT_NE(parse_overrides("r k 10x\n").error.find("limit"), std::string::npos);
    EXPECT_NE(parse_overrides("r{ k 1\n").error.find("bad rule name"), std::string::npos);
}

TEST(RateRule, OverridesApplyByKeyThenDomain) {
    std::vector<Rule> rules(2);
    rules[0].name = "submission";
    rules[0].key = {KeyAttribute::sasl_username};
    rules[0].limit = 100;
    rules[1].name = "net";
    rules[1].key = {KeyAttribute::client_network};
    rules[1].limit = 10;
    auto parsed = parse_overrides(
        "submission Alice@Example.com 5000\nsubmission @Bulk.Example. unlimited\n"
        "net 198.51.100.77 0\n");
    ASSERT_EQ(apply_overrides(rules, parsed.lines), "");
    EXPECT_EQ(rules[0].limit_for({"alice@example.com"}).limit, 5000);
    EXPECT_TRUE(rules[0].limit_for({"news@bulk.example"}).unlimited);
    EXPECT_EQ(rules[0].limit_for({"bob@example.com"}).limit, 100);
    EXPECT_FALSE(rules[0].limit_for({"bob@example.com"}).unlimited);
    // The network override was masked like request values are.
    EXPECT_EQ(rules[1].limit_for({"198.51.100.0/24"}).limit, 0);

    auto unknown = parse_overrides("nosuch x 1\n");
    EXPECT_NE(apply_overrides(rules, unknown.lines).find("no rule named \"nosuch\""),
              std::string::npos);
    auto arity = parse_overrides("\n\nsubmission a b 1\n");
    EXPECT_NE(apply_overrides(rules, arity.lines).find("line 3: rule \"submission\" has 1"),
              std::string::npos);
}

TEST(RateRule, BucketNamesAreThoseOfEarlierVersions) {
    // Values from the previous, hand-written SipHash: existing buckets in
    // Redis must keep their names.
    EXPECT_EQ(BucketNamer("rl", "a secret of enough length").name("user_rcpt", {"secret-user"}),
              "rl:b:{878d811d4466e0beecb9b3319c529553}");
    EXPECT_EQ(BucketNamer("rl", "").name("per_client", {"192.0.2.1", "Alice@Example.org"}),
              "rl:b:{25a7f627193b2c4d0b0c841db77a1772}");
}

TEST(RateRule, BucketNamesAreHashTaggedStableAndDistinct) {
    BucketNamer plain("rl", "");
    std::string a = plain.name("r1", {"alice"});
    EXPECT_EQ(a.size(), std::string("rl:b:{").size() + 32 + 1);
    EXPECT_EQ(a.rfind("rl:b:{", 0), 0u);
    EXPECT_EQ(a.back(), '}');
    EXPECT_EQ(a, BucketNamer("rl", "").name("r1", {"alice"}));
    EXPECT_NE(a, plain.name("r2", {"alice"}));
    EXPECT_NE(a, plain.name("r1", {"alicf"}));
    EXPECT_NE(plain.name("r1", {"a", "b"}), plain.name("r1", {"a\x1f" "b", ""}));
    EXPECT_NE(a, BucketNamer("rl", "a secret of sixteen+").name("r1", {"alice"}));
    // Braces in values never reach the key.
    EXPECT_EQ(plain.name("r1", {"{x}"}).find("{x}"), std::string::npos);
}

TEST(RateConfig, ReadsRulesWithDefaults) {
    auto s = settings(R"({"rules": [
        {"name": "submission", "key": ["sasl_username"], "count": "recipients",
         "limit": 500, "window": "1d"},
        {"name": "inbound", "key": ["client_network"], "ipv4_prefix": 28, "count": "messages",
         "limit": 50, "window": 60, "match": {"sasl_username": "", "sender": ["/@a\\./", "x@y"]},
         "action": "450 4.7.1 slow down", "dry_run": true}]})");
    ASSERT_EQ(s->rules.size(), 2u);
    EXPECT_EQ(s->rules[0].window_seconds, 86400);
    EXPECT_EQ(s->rules[0].action.to_string(), std::string(kDefaultAction));
    EXPECT_FALSE(s->rules[0].dry_run);
    EXPECT_EQ(s->rules[1].ipv4_prefix, 28);
    EXPECT_EQ(s->rules[1].match.size(), 2u);
    EXPECT_TRUE(s->rules[1].dry_run);
    EXPECT_EQ(s->rules[1].action.code, "450");
    EXPECT_EQ(s->on_store_error.kind, proto::policy::ActionKind::dunno);
    EXPECT_TRUE(s->log_keys);
}

TEST(RateConfig, ErrorsNameTheKey) {
    auto rule = [](const std::string& extra) {
        return R"({"rules": [{"name": "r", "key": ["sender"], "count": "messages", "limit": 1, "window": 60)" +
               extra + "}]}";
    };
    EXPECT_NE(config_error(rule(R"(, "colour": 1)")).find("rules[0].colour"), std::string::npos);
    EXPECT_NE(config_error(R"({"rules": [{"key": ["sender"]}]})").find("rules[0].name"),
              std::string::npos);
    EXPECT_NE(config_error(R"({"rules": [{"name": "r", "key": ["helo"], "count": "messages", "limit": 1, "window": 60}]})")
                  .find("unknown attribute \"helo\""),
              std::string::npos);
    EXPECT_NE(config_error(R"({"rules": [{"name": "r", "key": [], "count": "messages", "limit": 1, "window": 60}]})")
                  .find("rules[0].key"),
              std::string::npos);
    EXPECT_NE(config_error(R"({"rules": [{"name": "r", "key": ["sender"], "count": "bytes", "limit": 1, "window": 60}]})")
                  .find("rules[0].count"),
              std::string::npos);
    EXPECT_NE(config_error(R"({"rules": [{"name": "r", "key": ["sender"], "count": "size", "window": 60}]})")
                  .find("rules[0].limit"),
              std::string::npos);
    EXPECT_NE(config_error(rule(R"(, "match": {"sender": "/(/"})")).find("rules[0].match"),
              std::string::npos);
    EXPECT_NE(config_error(rule(R"(, "action": "MAYBE")")).find("rules[0].action"),
              std::string::npos);
    EXPECT_NE(config_error(R"({"rules": [{"name": "r", "key": ["sender"], "count": "messages", "limit": 1, "window": 60},
                                         {"name": "r", "key": ["sender"], "count": "messages", "limit": 1, "window": 60}]})")
                  .find("duplicate rule name"),
              std::string::npos);
    EXPECT_NE(config_error(R"({"rules": {}})").find("rules"), std::string::npos);
    EXPECT_NE(config_error(R"({"on_store_error": "SOMETIMES"})").find("on_store_error"),
              std::string::npos);
    EXPECT_NE(config_error(R"({"overrides": "/nonexistent/file"})").find("overrides"),
              std::string::npos);
    EXPECT_NE(config_error(R"({"key_prefix": "a{b"})").find("key_prefix"), std::string::npos);
}

TEST(RateConfig, OverridesFileErrorsNameFileAndLine) {
    testsupport::TempDir dir;
    dir.write("over", "r x 10\nr y nope\n");
    auto err = config_error(R"({"overrides": ")" + dir.file("over") +
                            R"(", "rules": [{"name": "r", "key": ["sender"], "count": "messages", "limit": 1, "window": 60}]})");
    EXPECT_NE(err.find(dir.file("over") + ": line 2"), std::string::npos) << err;
}
