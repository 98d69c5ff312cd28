// Nexthop resolution for the smtp transport; see mx.h.
#include "delivery/mx.h"

#include <algorithm>
#include <random>

#include "dns/resolver.h"
#include "net/address.h"

namespace mta::delivery {

namespace asio = boost::asio;
using restrictions::DnsAnswer;

std::string Target::text() const {
    bool v6 = address.find(':') != std::string::npos;
    return host + "[" + (v6 ? "ipv6:" : "") + address + "]:" + std::to_string(port);
}

namespace {

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string without_root_dot(std::string s) {
    if (s.size() > 1 && s.back() == '.') s.pop_back();
    return s;
}

bool is_self(const MxOptions& o, const std::string& host, const std::vector<std::string>& addresses) {
    if (!o.myhostname.empty() && lower(without_root_dot(host)) == lower(o.myhostname)) return true;
    for (const auto& a : addresses)
        if (std::find(o.own_addresses.begin(), o.own_addresses.end(), a) != o.own_addresses.end()) return true;
    return false;
}

// Addresses of one family allowed by inet_protocols, canonical text, shuffled.
std::vector<std::string> usable(const MxOptions& o, const std::vector<std::string>& values) {
    static thread_local std::minstd_rand rng{std::random_device{}()};
    std::vector<std::string> out;
    for (const auto& v : values) {
        auto ip = proto::net::IpAddress::parse(v);
        if (!ip || (ip->v6 ? !o.ipv6 : !o.ipv4)) continue;
        out.push_back(ip->to_string());
    }
    std::shuffle(out.begin(), out.end(), rng);
    return out;
}

// Postfix's wording (smtp_addr.c), so log readers find what they know.
Resolution not_found(const std::string& name, const char* type, bool temporary) {
    Resolution r;
    r.kind = temporary ? Resolution::Kind::defer : Resolution::Kind::bounce;
    r.dsn = temporary ? "4.4.3" : "5.4.4";
    r.reason = "Host or domain name not found. Name service error for name=" + name + " type=" + type +
               (temporary ? ": Host not found, try again" : ": Host not found");
    return r;
}

}  // namespace

asio::awaitable<Resolution> resolve_destination(dns::AresResolver& resolver, Destination d, MxOptions o) {
    Resolution result;
    // An address (bracketed or not) is used as it is.
    if (auto ip = proto::net::IpAddress::parse(d.host.starts_with("ipv6:") ? d.host.substr(5) : d.host)) {
        if (ip->v6 ? !o.ipv6 : !o.ipv4) {
            result.kind = Resolution::Kind::bounce;
            result.dsn = "5.4.4";
            result.reason = "address " + d.host + " is of a family inet_protocols excludes";
            co_return result;
        }
        result.targets.push_back({ip->to_string(), ip->to_string(), d.port, 0});
        co_return result;
    }
    struct Host {
        std::string name;
        int preference;
    };
    std::vector<Host> hosts;
    if (d.mx_lookup && o.dns) {
        DnsAnswer::Status status = DnsAnswer::not_found;
        std::string domain = d.host;
        auto lookup = resolver.mx(domain, status);
        std::vector<dns::MxRecord> records = co_await std::move(lookup);
        if (status == DnsAnswer::temporary) co_return not_found(d.host, "MX", true);
        if (status == DnsAnswer::found && records.size() == 1 && records[0].host.empty()) {
            // RFC 7505 3: a domain that declares it accepts no mail.
            result.kind = Resolution::Kind::bounce;
            result.dsn = "5.1.10";
            result.reason = "Domain " + d.host + " does not accept mail (nullMX)";
            co_return result;
        }
        for (const auto& r : records)
            if (!r.host.empty()) hosts.push_back({r.host, r.preference});
        if (hosts.empty()) {
            // RFC 5321 5.1: no MX, the domain itself is the implicit MX.
            DnsAnswer answer;
            std::string name = d.host;
            auto a = resolver.addresses(name);
            answer = co_await std::move(a);
            if (answer.status == DnsAnswer::temporary) co_return not_found(d.host, "A", true);
            auto addrs = usable(o, answer.values);
            if (addrs.empty()) co_return not_found(d.host, "A", false);
            if (is_self(o, d.host, addrs)) {
                result.kind = Resolution::Kind::bounce;
                result.dsn = "5.4.6";
                result.reason = "mail for " + d.host + " loops back to myself";
                co_return result;
            }
            for (const auto& a2 : addrs) {
                if (o.address_limit && result.targets.size() >= o.address_limit) break;
                result.targets.push_back({d.host, a2, d.port, 0});
            }
            co_return result;
        }
    } else {
        hosts.push_back({d.host, 0});
    }
    // Each host's addresses, in preference order; the first host that is
    // this server ends the list (smtp_find_self, smtp_truncate_self).
    bool any_temporary = false, looped = false;
    int self_preference = 0;
    std::vector<Target> targets;
    for (const auto& h : hosts) {
        if (looped && h.preference >= self_preference) break;
        DnsAnswer answer;
        std::string name = h.name;
        auto a = resolver.addresses(name);
        answer = co_await std::move(a);
        if (answer.status == DnsAnswer::temporary) any_temporary = true;
        auto addrs = usable(o, answer.values);
        if (d.mx_lookup && o.dns && is_self(o, h.name, addrs)) {
            looped = true;
            self_preference = h.preference;
            // Hosts of equal preference already listed are dropped too.
            std::erase_if(targets, [&](const Target& t) { return t.preference >= self_preference; });
            continue;
        }
        for (const auto& a2 : addrs) targets.push_back({without_root_dot(h.name), a2, d.port, h.preference});
    }
    if (o.address_limit && targets.size() > o.address_limit) targets.resize(o.address_limit);
    if (!targets.empty()) {
        result.targets = std::move(targets);
        co_return result;
    }
    if (looped) {
        result.kind = Resolution::Kind::bounce;
        result.dsn = "5.4.6";
        result.reason = "mail for " + d.host + " loops back to myself";
        co_return result;
    }
    if (any_temporary) co_return not_found(hosts.size() == 1 ? hosts[0].name : d.host, "A", true);
    co_return not_found(hosts.size() == 1 ? hosts[0].name : d.host, "A", false);
}

}  // namespace mta::delivery
