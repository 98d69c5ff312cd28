// Configuration and operator command of policyd-ratelimit. See program.h.
#include "program.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "daemon/log.h"
#include "redis_store.h"

namespace ratelimit {

using proto::config::ConfigError;
using proto::config::Reader;
using namespace std::chrono_literals;

namespace {

Rule read_rule(Reader& r, bool default_dry_run) {
    Rule rule;
    if (!r.has("name")) r.fail("name", "every rule needs a name");
    rule.name = r.string("name", "");
    if (!valid_rule_name(rule.name))
        r.fail("name", "use 1-64 letters, digits, '_', '-' or '.'");
    if (!r.has("key")) r.fail("key", "every rule needs a key (a list of attributes)");
    for (const auto& a : r.strings("key", {})) {
        auto attr = parse_key_attribute(a);
        if (!attr)
            r.fail("key", "unknown attribute \"" + a +
                              "\" (sasl_username, sender, sender_domain, client_address, "
                              "client_network, recipient, recipient_domain)");
        rule.key.push_back(*attr);
    }
    if (rule.key.empty()) r.fail("key", "must name at least one attribute");
    rule.ipv4_prefix = static_cast<int>(r.integer("ipv4_prefix", 24, 0, 32));
    rule.ipv6_prefix = static_cast<int>(r.integer("ipv6_prefix", 64, 0, 128));
    if (!r.has("count")) r.fail("count", "recipients, messages, size or connections");
    rule.count = *parse_count_kind(
        r.choice("count", "recipients", {"recipients", "messages", "size", "connections"}));
    if (!r.has("limit")) r.fail("limit", "every rule needs a limit");
    rule.limit = r.integer("limit", 0, 0, kMaxLimit);
    if (!r.has("window")) r.fail("window", "every rule needs a window (seconds or \"1h\")");
    rule.window_seconds =
        r.duration("window", 0s, 1s, std::chrono::seconds(kMaxWindowSeconds)).count();
    if (const auto* match = r.raw("match")) {
        if (!match->is_object())
            r.fail("match", "expected an object: attribute -> value, \"/regex/\" or a list");
        for (const auto& [attribute, spec] : match->items()) {
            Match m;
            if (attribute.empty() || attribute.find('=') != std::string::npos)
                r.fail("match", "bad attribute name \"" + attribute + "\"");
            m.set_attribute(attribute);
            std::vector<std::string> texts;
            if (spec.is_string()) {
                texts.push_back(spec.get<std::string>());
            } else if (spec.is_array() && !spec.empty()) {
                for (const auto& e : spec) {
                    if (!e.is_string()) r.fail("match", attribute + ": expected strings");
                    texts.push_back(e.get<std::string>());
                }
            } else {
                r.fail("match", attribute + ": expected a string or a list of strings");
            }
            try {
                for (const auto& t : texts) m.add(t);
            } catch (const std::invalid_argument& e) {
                r.fail("match", attribute + ": " + e.what());
            }
            rule.match.push_back(std::move(m));
        }
    }
    rule.action = r.action("action", kDefaultAction);
    rule.dry_run = r.boolean("dry_run", default_dry_run);
    r.finish();
    return rule;
}

std::string read_secret(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ConfigError("hash_key_file: cannot read " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    if (s.size() < 16) throw ConfigError("hash_key_file: the secret needs at least 16 characters");
    return s;
}

}  // namespace

std::shared_ptr<Settings> read_settings(Reader& r) {
    auto s = std::make_shared<Settings>();
    bool dry_run = r.boolean("dry_run", false);
    s->on_store_error = r.action("on_store_error", "DUNNO");
    std::string prefix = r.string("key_prefix", "rl");
    if (prefix.empty() || prefix.size() > 64 || prefix.find_first_of("{} \t\r\n") != std::string::npos)
        r.fail("key_prefix", "1-64 characters without braces or spaces");
    std::string secret_file = r.string("hash_key_file", "");
    std::string secret = secret_file.empty() ? "" : read_secret(secret_file);
    s->namer = BucketNamer(prefix, secret);
    s->log_keys = secret.empty();

    if (const auto* rules = r.raw("rules")) {
        if (!rules->is_array()) r.fail("rules", "expected a list of rule objects");
        if (rules->size() > 1000) r.fail("rules", "at most 1000 rules");
        for (std::size_t i = 0; i < rules->size(); ++i) {
            const auto& obj = (*rules)[i];
            std::string ctx = r.name("rules") + "[" + std::to_string(i) + "]";
            if (!obj.is_object()) throw ConfigError(ctx + ": expected an object");
            Reader rr(obj, ctx);
            Rule rule = read_rule(rr, dry_run);
            for (const auto& other : s->rules)
                if (other.name == rule.name)
                    throw ConfigError(ctx + ".name: duplicate rule name \"" + rule.name + "\"");
            s->rules.push_back(std::move(rule));
        }
    }

    std::string overrides = r.string("overrides", "");
    if (!overrides.empty()) {
        std::ifstream in(overrides, std::ios::binary);
        if (!in) r.fail("overrides", "cannot read " + overrides);
        std::stringstream ss;
        ss << in.rdbuf();
        auto parsed = parse_overrides(ss.str());
        if (!parsed.error.empty()) throw ConfigError(overrides + ": " + parsed.error);
        if (auto err = apply_overrides(s->rules, parsed.lines); !err.empty())
            throw ConfigError(overrides + ": " + err);
    }
    return s;
}

RateLimitProgram::RateLimitProgram()
    : info_{"policyd-ratelimit",
            "exact, atomic rate limits per user, sender or client, shared in Redis",
            "inet:127.0.0.1:10032", true,
            "  show RULE KEY...    print the usage of one bucket (KEY: one value per key\n"
            "                      attribute of the rule, in its order)\n"
            "  reset RULE KEY...   empty that bucket\n"} {}

std::shared_ptr<proto::policy::Decider> RateLimitProgram::configure(Reader& reader,
                                                                     proto::daemon::Runtime& rt) {
    auto settings = read_settings(reader);
    if (settings->rules.empty() && !rt.check_only)
        proto::log::warning("no rules configured: every request gets DUNNO");
    settings_ = settings;
    if (!rt.redis) return nullptr;  // --check-config or a command: nothing will serve
    auto store = std::make_shared<RedisRateStore>(*rt.redis, rt.redis_timeout);
    return std::make_shared<RateDecider>(settings, std::move(store), rt.clock, rt.metrics);
}

int RateLimitProgram::command(const std::vector<std::string>& args, proto::daemon::Runtime& rt) {
    const std::string& verb = args[0];
    if (verb != "show" && verb != "reset") return Program::command(args, rt);
    if (args.size() < 3) {
        std::cerr << info_.name << ": usage: " << verb << " RULE KEY...\n";
        return 2;
    }
    const Rule* rule = nullptr;
    for (const auto& r : settings_->rules)
        if (r.name == args[1]) rule = &r;
    if (!rule) {
        std::cerr << info_.name << ": no rule named \"" << args[1] << "\"\n";
        return 2;
    }
    if (args.size() - 2 != rule->key.size()) {
        std::cerr << info_.name << ": rule " << rule->name << " is keyed by";
        for (auto a : rule->key) std::cerr << ' ' << to_string(a);
        std::cerr << ": give " << rule->key.size() << " value(s)\n";
        return 2;
    }
    std::vector<std::string> values;
    for (std::size_t i = 0; i < rule->key.size(); ++i)
        values.push_back(
            normalise_key_text(rule->key[i], args[2 + i], rule->ipv4_prefix, rule->ipv6_prefix));
    const std::string bucket = settings_->namer.name(rule->name, values);
    std::string shown;
    for (const auto& v : values) shown += (shown.empty() ? "" : " ") + v;
    try {
        if (verb == "reset") {
            bool existed = reset_bucket(rt.redis_url, bucket);
            std::printf("%s %s: %s\n", rule->name.c_str(), shown.c_str(),
                        existed ? "reset" : "was already empty");
            return 0;
        }
        Override limit = rule->limit_for(values);
        if (limit.unlimited) {
            std::printf("%s %s: unlimited (override)\n", rule->name.c_str(), shown.c_str());
            return 0;
        }
        const std::int64_t window_ms = rule->window_seconds * 1000;
        BucketUsage u = read_usage(rt.redis_url, bucket, limit.limit, window_ms, rt.clock.now_ms());
        // max: ceil(-1e-9) is -0, which printf shows as "-0".
        double used = std::max(0.0, std::ceil(u.level - 1e-9));
        double left = std::max(0.0, static_cast<double>(limit.limit) - u.level);
        std::printf("rule:      %s (%s per %llds, key %s)\n", rule->name.c_str(),
                    std::string(to_string(rule->count)).c_str(),
                    static_cast<long long>(rule->window_seconds), shown.c_str());
        std::printf("bucket:    %s%s\n", bucket.c_str(), u.exists ? "" : " (empty)");
        std::printf("used:      %.0f of %lld%s\n", used, static_cast<long long>(limit.limit),
                    limit.limit != rule->limit ? " (override)" : "");
        std::printf("available: %.0f\n", std::floor(left + 1e-9));
        if (u.exists && limit.limit > 0)
            std::printf("empty in:  %.0fs\n",
                        std::ceil(u.level * static_cast<double>(window_ms) /
                                  static_cast<double>(limit.limit) / 1000.0));
        return 0;
    } catch (const std::exception& e) {
        // Errors of the Redis client name the server already.
        std::cerr << info_.name << ": " << e.what() << "\n";
        return 1;
    }
}

}  // namespace ratelimit
