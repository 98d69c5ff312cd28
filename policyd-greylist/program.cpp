// policyd-greylist's Program: configuration, decider, operator commands.
#include "program.h"

#include <ctime>
#include <iostream>

#include "daemon/log.h"
#include "redis_store.h"
#include "sender.h"

namespace greylist {

namespace {

using proto::redis::Reply;

const char* kCommandsHelp =
    "  show|allow|delete CLIENT_ADDRESS SENDER RECIPIENT [CLIENT_NAME]\n"
    "                      look up, pass (as if retried) or forget one triplet;\n"
    "                      SENDER \"<>\" is the null sender; CLIENT_NAME is the\n"
    "                      verified client name, for the pool-aware client key\n"
    "  show|allow|delete client CLIENT_ADDRESS [CLIENT_NAME]\n"
    "                      look up, whitelist (until max_age without mail) or\n"
    "                      forget a client key and its auto-whitelist count\n"
    "  Exit status: 0 done, 1 not found, 2 usage or Redis error.\n";

std::string date(std::int64_t seconds) {
    std::time_t t = static_cast<std::time_t>(seconds);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buffer[64];
    std::size_t n = std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return std::string(buffer, n);
}

std::string ttl_text(long long ttl) {
    if (ttl == -2) return "gone";
    if (ttl == -1) return "no TTL";
    return std::to_string(ttl) + "s";
}

}  // namespace

GreylistProgram::GreylistProgram() {
    info_.name = "policyd-greylist";
    info_.summary = "greylisting policy service for Postfix, state shared in Redis";
    info_.default_listen = "inet:127.0.0.1:10023";
    info_.uses_redis = true;
    info_.commands_help = kCommandsHelp;
}

std::shared_ptr<proto::policy::Decider> GreylistProgram::configure(proto::config::Reader& reader,
                                                                   proto::daemon::Runtime& rt) {
    auto settings = std::make_shared<const Settings>(read_settings(reader));
    // The Public Suffix List is loaded once; it does not change on reload.
    if (!keyer_) keyer_ = std::make_shared<const ClientKeyer>();
    settings_ = settings;
    if (!rt.redis) return nullptr;  // --check-config or an operator command
    if (settings->privacy_key_builtin)
        proto::log::warning(
            "privacy is on without privacy_key_file: keys are hashed with a public key, "
            "so addresses can be confirmed by guessing; set privacy_key_file");
    if (!metrics_) metrics_ = std::make_shared<DeciderMetrics>(rt.metrics);
    auto store = std::make_shared<RedisGreylistStore>(*rt.redis, settings->keys(), settings->rules,
                                                      rt.redis_timeout);
    return std::make_shared<GreylistDecider>(settings, std::move(store), keyer_, rt.clock,
                                             metrics_);
}

int GreylistProgram::command(const std::vector<std::string>& args, proto::daemon::Runtime& rt) {
    return run_command(args, rt, std::cout, std::cerr);
}

int GreylistProgram::run_command(const std::vector<std::string>& args, proto::daemon::Runtime& rt,
                                 std::ostream& out, std::ostream& err) {
    auto usage = [&]() {
        err << "usage: policyd-greylist [--config FILE] [--redis URL] COMMAND ...\n"
            << kCommandsHelp;
        return 2;
    };
    if (args.empty() || !settings_ || !keyer_) return usage();
    const std::string& verb = args[0];
    if (verb != "show" && verb != "allow" && verb != "delete") return usage();
    const Settings& s = *settings_;
    const bool client_only = args.size() >= 2 && args[1] == "client";
    std::size_t base = client_only ? 2 : 1;
    std::size_t needed = client_only ? 1 : 3;
    if (args.size() < base + needed || args.size() > base + needed + 1) return usage();

    auto address = proto::net::IpAddress::parse(args[base]);
    if (!address) {
        err << "policyd-greylist: \"" << args[base] << "\" is not an IP address\n";
        return 2;
    }
    std::string client_name = args.size() == base + needed + 1 ? args.back() : "unknown";
    std::string client =
        keyer_->key(s.client_key, *address, client_name, s.ipv4_prefix, s.ipv6_prefix);
    StoreKeys keys = s.keys();
    std::string key;
    if (client_only) {
        key = keys.client(client);
    } else {
        std::string sender = args[base + 1] == "<>" ? "" : args[base + 1];
        key = keys.triplet({client, normalise_sender(sender), lower_ascii(args[base + 2])});
    }
    const std::int64_t now = rt.clock.now_seconds();
    const std::string what = client_only ? "client" : "triplet";
    out << what << " key " << key << " (client key " << (s.privacy ? "hashed" : client) << ")\n";

    try {
        auto call = [&](const std::vector<std::string>& command) {
            Reply r = proto::redis::command_sync(rt.redis_url, command);
            if (r.is_error()) throw std::runtime_error(rt.redis_url.to_string() + ": " + r.str);
            return r;
        };
        if (verb == "delete") {
            Reply r = call({"DEL", key});
            out << (r.integer > 0 ? "deleted\n" : "not found\n");
            return r.integer > 0 ? 0 : 1;
        }
        const std::string max_age = std::to_string(s.rules.max_age);
        if (verb == "allow") {
            if (client_only)
                call({"EVAL",
                      "redis.call('HSET', KEYS[1], 'a', '1') "
                      "return redis.call('EXPIRE', KEYS[1], ARGV[1])",
                      "1", key, max_age});
            else
                call({"SET", key, std::to_string(-now), "EX", max_age});
            out << "allowed for " << max_age << "s without mail (max_age)\n";
            return 0;
        }
        // show
        long long ttl = call({"TTL", key}).integer;
        if (client_only) {
            Reply r = call({"HGETALL", key});
            if (r.elements.empty()) {
                out << "not found\n";
                return 1;
            }
            std::string n = "0", l, a;
            for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2) {
                const std::string& f = r.elements[i].str;
                if (f == "n") n = r.elements[i + 1].str;
                if (f == "l") l = r.elements[i + 1].str;
                if (f == "a") a = r.elements[i + 1].str;
            }
            long long count = std::atoll(n.c_str());
            bool auto_listed =
                s.rules.auto_whitelist_clients > 0 && count >= s.rules.auto_whitelist_clients;
            out << "successful retries counted: " << count << "\n";
            if (!l.empty()) out << "last counted: " << date(std::atoll(l.c_str())) << "\n";
            out << "whitelisted: "
                << (a == "1" ? "yes (allowed by operator)"
                             : auto_listed ? "yes (auto-whitelisted)" : "no")
                << "\n";
            out << "expires in: " << ttl_text(ttl) << "\n";
            return 0;
        }
        Reply r = call({"GET", key});
        if (r.type == Reply::Type::nil) {
            out << "not found\n";
            return 1;
        }
        long long v = std::atoll(r.str.c_str());
        if (v > 0) {
            out << "state: waiting for a retry\nfirst seen: " << date(v) << " (" << (now - v)
                << "s ago)\n"
                << "a retry passes from " << date(v + s.rules.delay) << " until "
                << date(v + s.rules.retry_window) << "\n";
        } else {
            out << "state: passed\nlast seen: " << date(-v) << " (" << (now + v) << "s ago)\n";
        }
        out << "expires in: " << ttl_text(ttl) << "\n";
        return 0;
    } catch (const std::exception& e) {
        // Errors of the Redis client name the server already.
        err << "policyd-greylist: " << e.what() << "\n";
        return 2;
    }
}

}  // namespace greylist
