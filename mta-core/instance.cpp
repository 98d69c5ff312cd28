// Building one configuration; see instance.h. Parameter meanings are
// postconf(5)'s; where mta-core differs, docs/mta-core.md lists it.
#include "instance.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <pwd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/ssl/context.hpp>
#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "daemon/log.h"
#include "daemon/metrics.h"
#include "smtp/address.h"
#include "delivery/destination.h"
#include "delivery/mx.h"
#include "delivery/smtp_tls.h"
#include "dns/resolver.h"
#include "maillog.h"
#include "sasl/sasl.h"
#include "tables/tables.h"

namespace mta {

namespace asio = boost::asio;
using config::ConfigError;
using config::Settings;

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string dir_of(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

// The local interface addresses (for mynetworks_style and our own address
// literals).
struct Interface {
    proto::net::IpAddress address;
    int prefix = 0;
};
std::vector<Interface> interfaces() {
    std::vector<Interface> out;
    struct ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return out;
    for (auto* i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr || !(i->ifa_flags & IFF_UP)) continue;
        int family = i->ifa_addr->sa_family;
        if (family != AF_INET && family != AF_INET6) continue;
        char host[INET6_ADDRSTRLEN] = "";
        const void* src = family == AF_INET
                              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr)
                              : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr);
        ::inet_ntop(family, src, host, sizeof host);
        auto ip = proto::net::IpAddress::parse(host);
        if (!ip) continue;
        int prefix = ip->bits();
        if (i->ifa_netmask) {
            prefix = 0;
            const auto* m = family == AF_INET
                                ? reinterpret_cast<const unsigned char*>(&reinterpret_cast<sockaddr_in*>(i->ifa_netmask)->sin_addr)
                                : reinterpret_cast<const unsigned char*>(&reinterpret_cast<sockaddr_in6*>(i->ifa_netmask)->sin6_addr);
            for (int b = 0; b < ip->bits() / 8; ++b) prefix += __builtin_popcount(m[b]);
        }
        out.push_back({*ip, prefix});
    }
    ::freeifaddrs(list);
    return out;
}

std::string host_name() {
    char buf[256] = "";
    ::gethostname(buf, sizeof buf - 1);
    std::string h = buf;
    if (h.find('.') == std::string::npos) {
        struct addrinfo hints {};
        hints.ai_flags = AI_CANONNAME;
        struct addrinfo* res = nullptr;
        if (::getaddrinfo(h.c_str(), nullptr, &hints, &res) == 0) {
            if (res && res->ai_canonname && std::strchr(res->ai_canonname, '.')) h = res->ai_canonname;
            ::freeaddrinfo(res);
        }
    }
    if (h.find('.') == std::string::npos) h += ".localdomain";  // as Postfix does
    return lower(h);
}

// The global session cap: sessions are coroutines, not processes, so
// Postfix's default_process_limit does not apply; what bounds them is file
// descriptors. The soft limit is raised to the hard one, and a reserve is
// kept for queue files, policy and delivery connections and the listeners.
std::size_t session_cap() {
    struct rlimit rl;
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 900;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
        ::getrlimit(RLIMIT_NOFILE, &rl);
    }
    constexpr std::size_t reserve = 256;
    std::size_t n = rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : static_cast<std::size_t>(rl.rlim_cur);
    return n > reserve * 2 ? n - reserve : n / 2;
}

// "smtp" -> 25, "submission" -> 587, "2525" -> 2525.
int service_port(const std::string& name) {
    if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) return std::stoi(name);
    if (name == "submissions" || name == "smtps") return 465;
    if (struct servent* s = ::getservbyname(name.c_str(), "tcp")) return ntohs(static_cast<uint16_t>(s->s_port));
    return -1;
}

// Everything the tables and policy services of one configuration share.
struct Builder {
    Settings main;
    std::string config_dir;
    std::string queue_dir;
    asio::any_io_executor executor;
    bool check_only;
    proto::metrics::Registry* metrics = nullptr;
    std::map<std::string, std::shared_ptr<const tables::Table>> tables;
    std::map<std::string, std::shared_ptr<restrictions::PolicyService>> policies;
    std::map<std::string, std::shared_ptr<sasl::Backend>> sasl_backends;
    std::shared_ptr<dns::AresResolver> resolver;  // one per configuration, shared by listeners
    std::vector<Interface> ifaces = interfaces();

    std::shared_ptr<const tables::Table> table(const std::string& spec, tables::Flavour flavour) {
        auto key = spec + (flavour == tables::Flavour::aliases ? "#aliases" : "");
        if (auto it = tables.find(key); it != tables.end()) return it->second;
        std::string s = spec;
        if (s.starts_with("proxy:")) s = s.substr(6);  // no proxymap here: read directly
        std::shared_ptr<const tables::Table> t = tables::open_table(s, flavour, config_dir);
        tables[key] = t;
        return t;
    }

    // A policy service element: "inet:host:port", "unix:private/x", or a
    // "{ ADDR, timeout=..., default_action=..., ... }" group (postconf(5)).
    std::shared_ptr<restrictions::PolicyService> policy(const Settings& s, const std::string& element) {
        if (auto it = policies.find(element); it != policies.end()) return it->second;
        std::vector<std::string> items{element};
        if (auto g = config::parse_group(element)) items = g->items;
        if (items.empty()) throw ConfigError("check_policy_service: empty { } group");
        proto::policy::ClientOptions o;
        o.timeout = s.time("smtpd_policy_service_timeout");
        o.max_idle = s.time("smtpd_policy_service_max_idle");
        o.max_ttl = s.time("smtpd_policy_service_max_ttl");
        std::string default_action = s.str("smtpd_policy_service_default_action");
        std::string context = s.str("smtpd_policy_service_policy_context");
        for (std::size_t i = 1; i < items.size(); ++i) {
            auto nv = config::split_nameval(items[i]);
            if (!nv) throw ConfigError("check_policy_service " + element + ": expected name=value: " + items[i]);
            auto& [name, value] = *nv;
            if (name == "timeout") o.timeout = config::parse_time(value, 's', "timeout");
            else if (name == "max_idle") o.max_idle = config::parse_time(value, 's', "max_idle");
            else if (name == "max_ttl") o.max_ttl = config::parse_time(value, 's', "max_ttl");
            else if (name == "default_action") default_action = value;
            else if (name == "policy_context") context = value;
            else if (name == "try_limit" || name == "request_limit") {}
            else throw ConfigError("check_policy_service " + element + ": unknown setting " + name);
        }
        auto action = proto::policy::parse_action(default_action);
        if (!action.action)
            throw ConfigError("check_policy_service " + element + ": default_action: " + action.error);
        o.default_action = *action.action;
        // Postfix notation; a relative unix: path is under queue_directory.
        std::string address = items[0];
        if (address.starts_with("unix:") && address.size() > 5 && address[5] != '/')
            address = "unix:" + queue_dir + "/" + address.substr(5);
        auto ep = proto::net::parse_endpoint(address);
        if (!ep.endpoint) throw ConfigError("check_policy_service " + items[0] + ": " + ep.error);
        auto p = std::make_shared<restrictions::PolicyService>();
        p->spec = items[0];
        p->policy_context = context;
        if (!check_only) p->client = std::make_unique<proto::policy::Client>(executor, *ep.endpoint, o);
        policies[element] = p;
        return p;
    }

    // A list of domain names and tables (mydestination, relay_domains, ...).
    std::function<bool(std::string_view)> domain_matcher(const Settings& s, std::string_view param) {
        std::set<std::string> names;
        std::vector<std::shared_ptr<const tables::Table>> maps;
        bool parents = s.str("parent_domain_matches_subdomains").find(param) != std::string::npos;
        for (const auto& e : s.list(param)) {
            if (e.find(':') != std::string::npos && e.front() != '[') {
                maps.push_back(table(e, tables::Flavour::access));
            } else if (e.front() == '/') {
                throw ConfigError(std::string(param) + ": file names in lists are not supported: use a table (texthash:" + e + ")");
            } else {
                names.insert(lower(e));
            }
        }
        return [names, maps, parents](std::string_view domain) {
            std::string d = lower(domain);
            if (names.count(d)) return true;
            if (parents) {
                for (auto dot = d.find('.'); dot != std::string::npos; dot = d.find('.', dot + 1))
                    if (names.count(d.substr(dot + 1)) || names.count(d.substr(dot))) return true;
            }
            for (const auto& m : maps)
                if (tables::lookup_domain(*m, d, parents)) return true;
            return false;
        };
    }

    // virtual_alias_maps (any domain) then alias_maps (local domains, by
    // local part), recursively, as Postfix's cleanup and local(8) expand
    // them; bare names get @myorigin. Bounded: depth 20 and 1000 addresses
    // (virtual_alias_recursion_limit, virtual_alias_expansion_limit).
    std::function<std::vector<std::string>(const std::string&)> alias_expander(
        const Settings& s, std::function<bool(std::string_view)> is_local) {
        std::vector<std::shared_ptr<const tables::Table>> virtual_maps, local_maps;
        for (const auto& m : s.list("virtual_alias_maps")) virtual_maps.push_back(table(m, tables::Flavour::access));
        for (const auto& m : s.list("alias_maps")) local_maps.push_back(table(m, tables::Flavour::aliases));
        if (virtual_maps.empty() && local_maps.empty()) return nullptr;
        std::string myorigin = lower(s.str("myorigin"));
        std::string delimiter = s.str("recipient_delimiter");
        auto lookup = [=](const std::string& address) -> std::optional<std::string> {
            for (const auto& m : virtual_maps)
                if (auto v = tables::lookup_address(*m, address, delimiter, false)) return v;
            auto at = address.rfind('@');
            if (at == std::string::npos || !is_local(lower(address.substr(at + 1)))) return std::nullopt;
            std::string local = lower(address.substr(0, at));
            if (!delimiter.empty())
                if (auto d = local.find_first_of(delimiter); d != std::string::npos) local.resize(d);
            for (const auto& m : local_maps)
                if (auto v = m->lookup(local)) return v;
            return std::nullopt;
        };
        return [lookup, myorigin](const std::string& address) {
            std::vector<std::string> out;
            std::function<void(const std::string&, int)> walk = [&](const std::string& a, int depth) {
                if (out.size() >= 1000) return;
                auto hit = depth < 20 ? lookup(a) : std::nullopt;
                if (!hit) {
                    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
                    return;
                }
                for (auto target : config::split_list(*hit)) {
                    if (target.size() > 1 && target.front() == '"' && target.back() == '"')
                        target = target.substr(1, target.size() - 2);
                    if (target.empty()) continue;
                    // |command, /file and :include: are not delivered by
                    // mta-core: kept as they are, the queue manager bounces them.
                    if (target[0] == '|' || target[0] == '/' || target.starts_with(":include:")) {
                        out.push_back(target);
                        continue;
                    }
                    if (target.find('@') == std::string::npos) target += "@" + myorigin;
                    if (lower(target) == lower(a)) {
                        if (std::find(out.begin(), out.end(), target) == out.end()) out.push_back(target);
                    } else {
                        walk(target, depth + 1);
                    }
                }
            };
            walk(address, 0);
            return out;
        };
    }

    std::shared_ptr<asio::ssl::context> tls_context(const Settings& s, const std::string& service) {
        std::string cert = s.str("smtpd_tls_cert_file");
        std::string key = s.str("smtpd_tls_key_file");
        std::string eccert = s.str("smtpd_tls_eccert_file");
        std::string eckey = s.str("smtpd_tls_eckey_file");
        if (cert.empty() && eccert.empty()) return nullptr;
        auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
        SSL_CTX* native = ctx->native_handle();
        auto load = [&](const std::string& c, const std::string& k) {
            if (c.empty()) return;
            boost::system::error_code ec;
            ctx->use_certificate_chain_file(c, ec);
            if (ec) throw ConfigError(service + ": smtpd_tls_cert_file " + c + ": " + ec.message());
            ctx->use_private_key_file(k.empty() ? c : k, asio::ssl::context::pem, ec);
            if (ec) throw ConfigError(service + ": smtpd_tls_key_file " + (k.empty() ? c : k) + ": " + ec.message());
            if (SSL_CTX_check_private_key(native) != 1)
                throw ConfigError(service + ": the key " + (k.empty() ? c : k) + " does not match " + c);
        };
        load(cert, key);
        load(eccert, eckey);
        // Protocols: ">=TLSv1.2" or "!SSLv3, !TLSv1, ..."; mta-core never goes below 1.2.
        int min_version = TLS1_2_VERSION;
        std::string protocols = s.str(s.str("smtpd_tls_security_level") == "encrypt" ? "smtpd_tls_mandatory_protocols" : "smtpd_tls_protocols");
        if (protocols.find(">=TLSv1.3") != std::string::npos || protocols.find("!TLSv1.2") != std::string::npos)
            min_version = TLS1_3_VERSION;
        SSL_CTX_set_min_proto_version(native, min_version);
        SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
        // Session resumption for smtpd_tls_session_cache_timeout (tickets and
        // the internal cache; one process, so no external cache is needed).
        auto timeout = s.time("smtpd_tls_session_cache_timeout");
        SSL_CTX_set_timeout(native, static_cast<long>(timeout.count()));
        SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
        static const unsigned char sid[] = "mta-core";
        SSL_CTX_set_session_id_context(native, sid, sizeof sid - 1);
        return ctx;
    }

    std::shared_ptr<smtpd::SmtpdConfig> smtpd(const Settings& s, const std::string& service) {
        auto c = std::make_shared<smtpd::SmtpdConfig>();
        c->service = service;
        c->myhostname = s.str("myhostname");
        c->myorigin = s.str("myorigin");
        c->banner = s.str("smtpd_banner");
        c->helo_required = s.boolean("smtpd_helo_required");
        c->delay_reject = s.boolean("smtpd_delay_reject");
        c->disable_vrfy = s.boolean("disable_vrfy_command");
        c->message_size_limit = static_cast<std::size_t>(s.integer("message_size_limit", 0, 1LL << 40));
        c->line_length_limit = static_cast<std::size_t>(s.integer("line_length_limit", 512, 1 << 20));
        c->header_size_limit = static_cast<std::size_t>(s.integer("header_size_limit", 1024, 1 << 26));
        c->hopcount_limit = static_cast<std::size_t>(s.integer("hopcount_limit", 1, 1000));
        c->recipient_limit = static_cast<std::size_t>(s.integer("smtpd_recipient_limit", 1, 1 << 20));
        c->timeout = s.time("smtpd_timeout");
        c->junk_command_limit = static_cast<std::size_t>(s.integer("smtpd_junk_command_limit", 1, 1 << 20));
        c->soft_error_limit = static_cast<std::size_t>(s.integer("smtpd_soft_error_limit", 1, 1 << 20));
        c->hard_error_limit = static_cast<std::size_t>(s.integer("smtpd_hard_error_limit", 1, 1 << 20));
        c->error_sleep_time = s.time("smtpd_error_sleep_time");
        std::string bare = lower(s.str("smtpd_forbid_bare_newline"));
        if (bare == "normalize" || bare == "no") c->bare_newline = smtpd::BareNewline::normalize;
        else if (bare == "yes" || bare == "reject") c->bare_newline = smtpd::BareNewline::reject_and_disconnect;
        else throw ConfigError("smtpd_forbid_bare_newline: expected yes, no or normalize, not \"" + bare + "\"");
        c->forbid_unauth_pipelining = s.boolean("smtpd_forbid_unauth_pipelining");
        c->smtputf8 = s.boolean("smtputf8_enable");
        std::string level = lower(s.str("smtpd_tls_security_level"));
        if (level.empty() && s.boolean("smtpd_use_tls")) level = "may";
        if (level.empty() && s.boolean("smtpd_enforce_tls")) level = "encrypt";
        if (level.empty() || level == "none") c->tls_level = smtpd::TlsLevel::none;
        else if (level == "may") c->tls_level = smtpd::TlsLevel::may;
        else if (level == "encrypt") c->tls_level = smtpd::TlsLevel::encrypt;
        else throw ConfigError(service + ": smtpd_tls_security_level: expected none, may or encrypt, not \"" + level + "\"");
        c->wrappermode = s.boolean("smtpd_tls_wrappermode");
        c->tls_auth_only = s.boolean("smtpd_tls_auth_only");
        c->tls_received_header = s.boolean("smtpd_tls_received_header");
        c->tls_loglevel = static_cast<int>(s.integer("smtpd_tls_loglevel", 0, 4));
        if (c->tls_level != smtpd::TlsLevel::none || c->wrappermode) {
            c->tls = tls_context(s, service);
            if (!c->tls)
                throw ConfigError(service + ": smtpd_tls_security_level = " + level +
                                  " needs smtpd_tls_cert_file (and smtpd_tls_key_file)");
        }
        c->sasl_enable = s.boolean("smtpd_sasl_auth_enable");
        c->sasl_response_limit = static_cast<std::size_t>(s.integer("smtpd_sasl_response_limit", 1, 1 << 24));
        if (c->sasl_enable) {
            sasl::Settings ss;
            ss.type = lower(s.str("smtpd_sasl_type"));
            ss.path = s.str("smtpd_sasl_path");
            ss.service = s.str("smtpd_sasl_service");
            ss.local_domain = s.str("smtpd_sasl_local_domain");
            ss.security_options = s.str("smtpd_sasl_security_options");
            ss.tls_security_options = s.str("smtpd_sasl_tls_security_options");
            ss.cyrus_config_path = s.str("cyrus_sasl_config_path");
            if (ss.type != "cyrus" && ss.type != "dovecot")
                throw ConfigError(service + ": smtpd_sasl_type = " + ss.type + ": expected cyrus or dovecot");
            std::string key = ss.type + "|" + ss.path + "|" + ss.service + "|" + ss.local_domain + "|" +
                              ss.security_options + "|" + ss.tls_security_options + "|" + ss.cyrus_config_path;
            if (auto it = sasl_backends.find(key); it != sasl_backends.end()) {
                c->sasl = it->second;
            } else {
                try {
                    c->sasl = sasl::make_backend(ss, executor);
                } catch (const std::exception& e) {
                    throw ConfigError(service + ": smtpd_sasl_type = " + ss.type + ", smtpd_sasl_path = " +
                                      ss.path + ": " + e.what());
                }
                sasl_backends[key] = c->sasl;
            }
        }
        c->peername_lookup = s.boolean("smtpd_peername_lookup");
        if (!check_only) {
            if (!resolver) resolver = std::make_shared<dns::AresResolver>(executor, dns::Options{});
            c->resolver = resolver;
        }
        c->compatibility_level = s.str("compatibility_level");
        // smtpd_milters (and non_smtpd_milters, checked here too).
        auto milters = std::make_shared<milter::MilterSettings>(milter::read_milter_settings(s, queue_dir));
        if (!milters->smtpd.empty()) c->milters = std::move(milters);

        auto open = [&](const std::string& spec) { return table(spec, tables::Flavour::access); };
        auto make_policy = [&](const std::string& e) { return policy(s, e); };
        auto list = [&](std::string_view param) {
            try {
                return restrictions::parse_list(s.list(param), open, make_policy);
            } catch (const std::invalid_argument& e) {
                throw ConfigError(service + ": " + std::string(param) + ": " + e.what());
            }
        };
        c->client = list("smtpd_client_restrictions");
        c->helo = list("smtpd_helo_restrictions");
        c->sender = list("smtpd_sender_restrictions");
        c->relay = list("smtpd_relay_restrictions");
        c->recipient = list("smtpd_recipient_restrictions");
        c->data = list("smtpd_data_restrictions");
        c->end_of_data = list("smtpd_end_of_data_restrictions");
        if (s.boolean("smtpd_reject_unlisted_recipient"))
            c->unlisted_recipient = restrictions::parse_list({"reject_unlisted_recipient"}, open, make_policy);
        // The one rule with no daemon running (Postfix enforces the same).
        if (!restrictions::guards_relay(c->relay) && !restrictions::guards_relay(c->recipient))
            throw ConfigError(service + ": in parameter smtpd_relay_restrictions or "
                              "smtpd_recipient_restrictions, specify at least one working instance of: "
                              "reject_unauth_destination, defer_unauth_destination, reject, defer, "
                              "defer_if_permit");

        auto& env = c->env;
        env.resolver = c->resolver.get();
        try {
            std::vector<std::string> nets;
            for (const auto& n : s.list("mynetworks")) {
                if (n.find(':') != std::string::npos && n.front() != '[' && !std::isxdigit(static_cast<unsigned char>(n.front())))
                    throw ConfigError("mynetworks: tables are not supported here: " + n);
                nets.push_back(n);
            }
            env.mynetworks = proto::net::CidrList::parse(nets);
            std::vector<std::string> excl;
            for (const auto& n : s.list("smtpd_forbid_bare_newline_exclusions")) excl.push_back(n);
            c->bare_newline_exclusions = proto::net::CidrList::parse(excl);
        } catch (const std::invalid_argument& e) {
            throw ConfigError(std::string("mynetworks: ") + e.what());
        }
        auto mydestination = domain_matcher(s, "mydestination");
        std::vector<std::string> own;
        for (const auto& i : ifaces) own.push_back(lower(i.address.to_string()));
        env.is_local_domain = [mydestination, own](std::string_view d) {
            if (d.size() > 2 && d.front() == '[' && d.back() == ']') {
                std::string inner(d.substr(1, d.size() - 2));
                if (inner.starts_with("ipv6:")) inner = inner.substr(5);
                auto ip = proto::net::IpAddress::parse(inner);
                return ip && std::find(own.begin(), own.end(), ip->to_string()) != own.end();
            }
            return mydestination(d);
        };
        env.is_relay_domain = domain_matcher(s, "relay_domains");
        auto valias = domain_matcher(s, "virtual_alias_domains");
        auto vmailbox = domain_matcher(s, "virtual_mailbox_domains");
        env.is_virtual_domain = [valias, vmailbox](std::string_view d) { return valias(d) || vmailbox(d); };
        env.recipient_delimiter = s.str("recipient_delimiter");
        env.myorigin = s.str("myorigin");
        env.parent_domain_matches_subdomains =
            s.str("parent_domain_matches_subdomains").find("smtpd_access_maps") != std::string::npos;
        if (s.is_set("smtpd_sender_login_maps") || !s.str("smtpd_sender_login_maps").empty()) {
            auto maps = s.list("smtpd_sender_login_maps");
            if (!maps.empty()) env.sender_login_maps = table(maps.front(), tables::Flavour::access);
        }
        // local_recipient_maps: passwd and aliases by default; empty = accept all.
        std::vector<std::shared_ptr<const tables::Table>> local_maps;
        for (const auto& m : s.list("local_recipient_maps"))
            local_maps.push_back(table(m, m.find("alias") != std::string::npos ? tables::Flavour::aliases
                                                                               : tables::Flavour::access));
        std::vector<std::shared_ptr<const tables::Table>> virtual_maps;
        for (const auto& m : s.list("virtual_mailbox_maps")) virtual_maps.push_back(table(m, tables::Flavour::access));
        for (const auto& m : s.list("virtual_alias_maps")) virtual_maps.push_back(table(m, tables::Flavour::access));
        std::string delimiter = env.recipient_delimiter;
        auto is_local = env.is_local_domain;
        env.is_known_recipient = [local_maps, virtual_maps, delimiter, is_local, vmailbox, valias](
                                     std::string_view address) -> std::optional<bool> {
            auto at = address.rfind('@');
            std::string local = lower(address.substr(0, at));
            std::string domain = at == std::string_view::npos ? "" : lower(address.substr(at + 1));
            if (is_local(domain)) {
                if (local_maps.empty()) return true;
                std::string base = local;
                if (!delimiter.empty()) {
                    auto d = base.find_first_of(delimiter);
                    if (d != std::string::npos) base = base.substr(0, d);
                }
                for (const auto& m : local_maps)
                    if (m->lookup(base) || m->lookup(local)) return true;
                return false;
            }
            if (vmailbox(domain) || valias(domain)) {
                if (virtual_maps.empty()) return !vmailbox(domain);
                for (const auto& m : virtual_maps)
                    if (tables::lookup_address(*m, address, delimiter, false)) return true;
                return false;
            }
            return true;
        };
        c->expand = alias_expander(s, env.is_local_domain);
        auto code = [&](std::string_view name) { return static_cast<int>(s.integer(name, 400, 599)); };
        env.reject_code = code("reject_code");
        env.defer_code = code("defer_code");
        env.relay_domains_reject_code = code("relay_domains_reject_code");
        env.unknown_client_reject_code = code("unknown_client_reject_code");
        env.unknown_hostname_reject_code = code("unknown_hostname_reject_code");
        env.unknown_address_reject_code = code("unknown_address_reject_code");
        env.non_fqdn_reject_code = code("non_fqdn_reject_code");
        env.invalid_hostname_reject_code = code("invalid_hostname_reject_code");
        env.maps_rbl_reject_code = code("maps_rbl_reject_code");
        env.access_map_reject_code = code("access_map_reject_code");
        env.access_map_defer_code = code("access_map_defer_code");
        env.unknown_local_recipient_reject_code = code("unknown_local_recipient_reject_code");
        // Postfix accepts exactly these two (smtpd_check.c); anything else is fatal there too.
        auto defer_if_permit = [&](std::string_view name) {
            std::string value = s.str(name);
            if (value == "defer_if_permit") return true;
            if (value == "defer") return false;
            throw ConfigError(std::string(name) + " = " + value + ": specify defer or defer_if_permit");
        };
        env.unknown_client_tempfail_defer_if_permit = defer_if_permit("reject_tempfail_action");
        env.unknown_helo_tempfail_defer_if_permit = defer_if_permit("unknown_helo_hostname_tempfail_action");
        env.unknown_address_tempfail_defer_if_permit = defer_if_permit("unknown_address_tempfail_action");
        env.on_warning = [](const std::string& text) { proto::log::warning(text); };
        {
            // default_rbl_reply is a raw parameter: expanded here, per listing.
            std::vector<std::shared_ptr<const tables::Table>> reply_maps;
            for (const auto& m : s.list("rbl_reply_maps")) reply_maps.push_back(table(m, tables::Flavour::access));
            auto settings = std::make_shared<const config::Settings>(s);
            std::string fallback = s.raw("default_rbl_reply");
            (void)settings->expand(fallback, {});  // a syntax error is a config error now, not at the first hit
            env.rbl_reply = [settings, reply_maps, fallback](const std::string& domain,
                                                             const restrictions::Environment::Macros& macros) {
                std::string text = fallback;
                for (const auto& m : reply_maps)
                    if (auto found = m->lookup(domain)) {
                        text = *found;
                        break;
                    }
                return settings->expand(text, macros);
            };
        }
        if (metrics) {
            auto* registry = metrics;
            env.on_policy = [registry](const restrictions::PolicyService& service,
                                       std::chrono::steady_clock::duration latency, bool ok) {
                registry->histogram("policy_service_latency_seconds", "check_policy_service round trips",
                                    {{"service", service.spec}})
                    .observe(std::chrono::duration<double>(latency).count());
                if (!ok)
                    registry->counter("policy_service_failures_total",
                                      "Policy queries answered with the default action", {{"service", service.spec}})
                        .inc();
            };
        }
        auto limit = [&](std::string_view name) { return static_cast<std::size_t>(s.integer(name, 0, 1 << 30)); };
        c->client_connection_count_limit = limit("smtpd_client_connection_count_limit");
        c->client_connection_rate_limit = limit("smtpd_client_connection_rate_limit");
        c->client_message_rate_limit = limit("smtpd_client_message_rate_limit");
        c->client_recipient_rate_limit = limit("smtpd_client_recipient_rate_limit");
        c->client_auth_rate_limit = limit("smtpd_client_auth_rate_limit");
        c->client_new_tls_session_rate_limit = limit("smtpd_client_new_tls_session_rate_limit");
        c->anvil_rate_time_unit = s.time("anvil_rate_time_unit");
        try {
            std::vector<std::string> exceptions;
            for (const auto& n : s.list("smtpd_client_event_limit_exceptions")) exceptions.push_back(n);
            c->client_event_limit_exceptions = proto::net::CidrList::parse(exceptions);
        } catch (const std::invalid_argument& e) {
            throw ConfigError(service + ": smtpd_client_event_limit_exceptions: " + e.what());
        }
        c->max_connections = session_cap();
        return c;
    }
};

// "lmtp:unix:/path", "lmtp:inet:host:port", "lmtp:[host]:port", "smtp:[host]:port",
// "[host]:port", "host": a nexthop for the queue manager.
std::optional<delivery::Nexthop> parse_nexthop(std::string text, bool default_lmtp, std::string* error) {
    delivery::Nexthop n;
    n.lmtp = default_lmtp;
    if (text.starts_with("lmtp:")) {
        n.lmtp = true;
        text = text.substr(5);
    } else if (text.starts_with("smtp:")) {
        n.lmtp = false;
        text = text.substr(5);
    } else if (text.starts_with("relay:")) {
        n.lmtp = false;
        text = text.substr(6);
    }
    if (!n.lmtp && !text.starts_with("unix:") && !text.starts_with("inet:")) {
        // The smtp transport: a destination found by DNS when delivered
        // (delivery/mx.h), "[host]:port" without an MX lookup.
        auto d = delivery::parse_destination(text, error);
        if (!d) return std::nullopt;
        n.text = d->text();
        n.destination = std::move(*d);
        return n;
    }
    if (!text.starts_with("unix:") && !text.starts_with("inet:")) {
        // LMTP: [host]:port or host[:port], the host itself.
        std::string host = text, port = n.lmtp ? "24" : "25";
        if (host.starts_with("[")) {
            auto close = host.find(']');
            if (close == std::string::npos) {
                if (error) *error = "missing ] in " + text;
                return std::nullopt;
            }
            if (close + 1 < host.size() && host[close + 1] == ':') port = host.substr(close + 2);
            host = host.substr(1, close - 1);
        } else if (auto colon = host.rfind(':'); colon != std::string::npos && host.find(':') == colon) {
            port = host.substr(colon + 1);
            host = host.substr(0, colon);
        }
        text = "inet:" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
    }
    auto ep = proto::net::parse_endpoint(text);
    if (!ep.endpoint) {
        if (error) *error = ep.error;
        return std::nullopt;
    }
    n.endpoint = *ep.endpoint;
    if (n.endpoint.kind == proto::net::Endpoint::Kind::unix_socket)
        n.text = n.endpoint.path;
    else
        n.text = n.endpoint.host + "[" + n.endpoint.host + "]:" + std::to_string(n.endpoint.port);
    return n;
}

std::vector<std::string> words(const std::string& text) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : text + " ") {
        if (c == ' ' || c == ',' || c == '\t') {
            if (!cur.empty()) out.push_back(cur);
            cur.clear();
        } else {
            cur.push_back(c);
        }
    }
    return out;
}

// The smtp transport's settings: DNS, TLS, AUTH, timeouts and limits
// (Postfix's smtp_* parameters), for the queue manager.
void configure_smtp_transport(Builder& b, const std::string& myhostname, qmgr::Settings& q) {
    Settings& s = b.main;
    auto& t = q.timeouts;
    t.connect = s.time("smtp_connect_timeout");
    t.helo = s.time("smtp_helo_timeout");
    t.mail = s.time("smtp_mail_timeout");
    t.rcpt = s.time("smtp_rcpt_timeout");
    t.data_init = s.time("smtp_data_init_timeout");
    t.data_xfer = s.time("smtp_data_xfer_timeout");
    t.data_done = s.time("smtp_data_done_timeout");
    t.quit = s.time("smtp_quit_timeout");
    t.starttls = s.time("smtp_starttls_timeout");
    t.sasl = t.helo;
    t.rset = s.time("smtp_rset_timeout");
    q.connection_cache = s.boolean("smtp_connection_cache_on_demand");
    q.connection_cache_time = s.time("smtp_connection_cache_time_limit");
    if (t.connect.count() == 0) t.connect = std::chrono::seconds(30);  // 0: the kernel's own, far longer
    // smtp_destination_concurrency_limit exists (as in Postfix) when
    // master.cf has an smtp service; $default_destination_concurrency_limit otherwise.
    const char* per_destination = !s.str("smtp_destination_concurrency_limit").empty()
                                      ? "smtp_destination_concurrency_limit"
                                      : "default_destination_concurrency_limit";
    q.concurrency = static_cast<std::size_t>(s.integer(per_destination, 1, 1000));
    q.lmtp_concurrency = static_cast<std::size_t>(s.integer("default_destination_concurrency_limit", 1, 1000));
    q.process_limit = static_cast<std::size_t>(s.integer("default_process_limit", 1, 100000));
    q.mx_session_limit = static_cast<std::size_t>(s.integer("smtp_mx_session_limit", 1, 100));

    // DNS: inet_protocols, our own addresses for loop detection.
    delivery::MxOptions mx;
    std::string protocols = lower(s.str("inet_protocols"));
    mx.ipv4 = protocols == "all" || protocols.find("ipv4") != std::string::npos;
    mx.ipv6 = protocols == "all" || protocols.find("ipv6") != std::string::npos;
    std::string level = lower(s.str("smtp_dns_support_level"));
    if (!level.empty() && level != "enabled" && level != "disabled" && level != "dnssec")
        throw ConfigError("smtp_dns_support_level = " + level + ": expected enabled, disabled or dnssec");
    // dnssec: answers are used as "enabled" (no DANE here).
    mx.dns = level != "disabled";
    mx.myhostname = myhostname;
    mx.address_limit = static_cast<std::size_t>(s.integer("smtp_mx_address_limit", 0, 1000));
    auto add_own = [&](const std::string& a) {
        if (auto ip = proto::net::IpAddress::parse(a.starts_with("[") ? a.substr(1, a.size() - 2) : a))
            mx.own_addresses.push_back(ip->to_string());
    };
    for (const auto& i : s.list("inet_interfaces")) {
        std::string li = lower(i);
        if (li == "all") {
            for (const auto& f : b.ifaces) mx.own_addresses.push_back(f.address.to_string());
        } else if (li == "loopback-only") {
            add_own("127.0.0.1");
            add_own("::1");
        } else {
            add_own(i);
        }
    }
    for (const auto& i : s.list("proxy_interfaces")) add_own(i);
    if (!b.check_only) {
        auto resolver = b.resolver;
        if (!resolver) resolver = b.resolver = std::make_shared<dns::AresResolver>(b.executor, dns::Options{});
        q.resolve = [resolver, mx](delivery::Destination d) {
            return delivery::resolve_destination(*resolver, std::move(d), mx);
        };
    }

    // TLS: the default level and per-destination policy (TLS_README).
    // Set empty (Postfix's own default), it means no TLS, as in Postfix.
    std::string level_text = lower(s.str("smtp_tls_security_level"));
    auto tls_level = level_text.empty() ? delivery::TlsLevel::none : delivery::parse_tls_level(level_text);
    if (!tls_level)
        throw ConfigError("smtp_tls_security_level = " + s.str("smtp_tls_security_level") +
                          ": mta-core sends with none, may, encrypt, verify or secure");
    delivery::TlsPolicy tls;
    tls.level = *tls_level;
    auto verify_match = words(s.str("smtp_tls_verify_cert_match"));
    auto secure_match = words(s.str("smtp_tls_secure_cert_match"));
    tls.match = tls.level == delivery::TlsLevel::secure ? secure_match : verify_match;
    if (!b.check_only) {
        try {
            tls.opportunistic = delivery::make_client_context(s.str("smtp_tls_CAfile"), s.str("smtp_tls_CApath"),
                                                              s.str("smtp_tls_protocols"));
            tls.mandatory = delivery::make_client_context(s.str("smtp_tls_CAfile"), s.str("smtp_tls_CApath"),
                                                          s.str("smtp_tls_mandatory_protocols"));
        } catch (const std::runtime_error& e) {
            throw ConfigError(e.what());
        }
    }
    std::shared_ptr<const tables::Table> tls_policy_map;
    if (auto pm = s.list("smtp_tls_policy_maps"); !pm.empty()) tls_policy_map = b.table(pm.front(), tables::Flavour::access);

    // AUTH: credentials per nexthop (SASL_README).
    bool sasl_enable = s.boolean("smtp_sasl_auth_enable");
    std::shared_ptr<const tables::Table> passwords;
    if (auto pm = s.list("smtp_sasl_password_maps"); sasl_enable && !pm.empty())
        passwords = b.table(pm.front(), tables::Flavour::access);
    auto sasl_security = delivery::parse_sasl_security(s.str("smtp_sasl_security_options"));
    auto sasl_tls_security = delivery::parse_sasl_security(s.str("smtp_sasl_tls_security_options"));
    auto mechanism_filter = words(s.str("smtp_sasl_mechanism_filter"));

    delivery::SessionOptions base;
    base.helo_name = q.helo_name;
    base.timeouts = t;
    base.bind_address = s.str("smtp_bind_address");
    base.bind_address6 = s.str("smtp_bind_address6");
    base.tls = tls;
    base.sasl_security = sasl_security;
    base.sasl_tls_security = sasl_tls_security;
    base.sasl_mechanism_filter = mechanism_filter;
    base.line_length_limit = static_cast<std::size_t>(s.integer("smtp_line_length_limit", 0, 1 << 20));
    q.smtp_session = [base, tls_policy_map, passwords, verify_match, secure_match](
                         const delivery::Nexthop& hop, const delivery::Target& target) {
        delivery::SessionOptions o = base;
        const std::string nexthop = hop.destination ? hop.destination->text() : hop.text;
        const std::string domain = hop.destination ? lower(hop.destination->host) : "";
        o.host = target.host;
        o.nexthop = domain;
        o.peer = target.text();
        // The policy table is searched with the nexthop as written
        // ("[host]:port", "example.com"), then, for a domain, its parents
        // as ".example.com" (TLS_README, "TLS policy table").
        if (tls_policy_map) {
            auto hit = tls_policy_map->lookup(lower(nexthop));
            for (auto dot = domain.find('.'); !hit && hop.destination && hop.destination->mx_lookup &&
                                              dot != std::string::npos;
                 dot = domain.find('.', dot + 1))
                hit = tls_policy_map->lookup(domain.substr(dot));
            if (hit) {
                std::string err;
                auto p = delivery::parse_tls_policy(*hit, base.tls, verify_match, secure_match, &err);
                if (p) o.tls = *p;
                else maillog::line("smtp", "warning: smtp_tls_policy_maps entry for " + nexthop + ": " + err);
            }
        }
        // smtp_sasl_password_maps: the nexthop as written, then the host.
        if (passwords) {
            auto hit = passwords->lookup(lower(nexthop));
            if (!hit) hit = passwords->lookup(lower(target.host));
            if (hit) o.sasl = delivery::parse_credentials(*hit);
        }
        return o;
    };
}

}  // namespace

std::shared_ptr<Instance> build_instance(const std::string& main_cf_path,
                                         asio::any_io_executor executor, bool check_only,
                                         proto::metrics::Registry* metrics) {
    auto inst = std::make_shared<Instance>();
    auto main = config::load_main_cf(main_cf_path);
    inst->config_directory = dir_of(main_cf_path);
    auto master = config::load_master_cf(inst->config_directory + "/master.cf");
    for (const auto& w : main.warnings) inst->warnings.push_back(w);
    Builder b{Settings(main, master), inst->config_directory, {}, executor, check_only, metrics, {}, {}, {}, {}};
    Settings& s = b.main;
    s.set_computed_default("config_directory", inst->config_directory);
    std::string hostname = host_name();
    s.set_computed_default("myhostname", hostname);
    auto dot = hostname.find('.');
    s.set_computed_default("mydomain", dot == std::string::npos ? "localdomain" : hostname.substr(dot + 1));
    {
        std::string style = lower(s.str("mynetworks_style"));
        std::string nets;
        for (const auto& i : b.ifaces) {
            int prefix = style == "host" ? i.address.bits() : i.prefix;
            if (style == "class" && !i.address.v6) prefix = std::min(i.prefix, 24);
            std::string net = i.address.masked(prefix).to_string();
            if (i.address.v6) net = "[" + net + "]";
            nets += (nets.empty() ? "" : " ") + net + "/" + std::to_string(prefix);
        }
        if (!nets.empty()) s.set_computed_default("mynetworks", nets);
    }
    inst->warnings = s.validate();
    for (const auto& n : s.ignored_notes()) inst->warnings.push_back(n);
    inst->print_config = s.print_non_default();
    inst->queue_directory = s.str("queue_directory");
    b.queue_dir = inst->queue_directory;
    inst->mail_owner = s.str("mail_owner");
    inst->syslog_name = s.str("syslog_name");
    inst->maillog_file = s.str("maillog_file");
    inst->myhostname = s.str("myhostname");
    inst->setgid_group = s.str("setgid_group");
    if (!check_only && ::getpwnam(inst->mail_owner.c_str()) == nullptr && ::geteuid() == 0)
        throw ConfigError("mail_owner: no such user \"" + inst->mail_owner + "\"");
    std::string home_mailbox = s.str("home_mailbox");
    if (!home_mailbox.empty() && home_mailbox != "Maildir/")
        throw ConfigError("home_mailbox = " + home_mailbox +
                          ": mta-core delivers to Maildir/ only (through delivery-maildir)");

    // master.cf: smtpd listeners and spawn services; everything else is
    // Postfix's own plumbing, which mta-core does itself.
    std::vector<std::string> interfaces_list = s.list("inet_interfaces");
    std::string protocols = lower(s.str("inet_protocols"));
    bool want4 = protocols == "all" || protocols.find("ipv4") != std::string::npos;
    bool want6 = protocols == "all" || protocols.find("ipv6") != std::string::npos;
    for (const auto& e : master) {
        std::string where = e.file + ", line " + std::to_string(e.line);
        if (e.command == "smtpd" && e.type == "inet") {
            Settings ls = s.with_service(e);
            auto cfg = b.smtpd(ls, e.service);
            std::vector<std::string> hosts;
            std::string port_name = e.service;
            if (auto colon = e.service.rfind(':'); colon != std::string::npos) {
                hosts.push_back(e.service.substr(0, colon));
                port_name = e.service.substr(colon + 1);
                if (hosts.back().starts_with("[")) hosts.back() = hosts.back().substr(1, hosts.back().size() - 2);
            } else {
                for (const auto& i : interfaces_list) {
                    std::string li = lower(i);
                    if (li == "all") {
                        if (want4) hosts.push_back("0.0.0.0");
                        if (want6) hosts.push_back("::");
                    } else if (li == "loopback-only") {
                        if (want4) hosts.push_back("127.0.0.1");
                        if (want6) hosts.push_back("::1");
                    } else {
                        hosts.push_back(i);
                    }
                }
            }
            int port = service_port(port_name);
            if (port <= 0 || port > 65535) throw ConfigError(where + ": unknown service \"" + port_name + "\"");
            for (const auto& h : hosts) {
                proto::net::Endpoint ep;
                ep.kind = proto::net::Endpoint::Kind::inet;
                ep.host = h;
                ep.port = static_cast<std::uint16_t>(port);
                inst->listeners.push_back({e.service, ep, cfg});
            }
        } else if (e.command == "spawn") {
            SpawnService sp;
            sp.name = e.service;
            sp.socket_path = inst->queue_directory + "/private/" + e.service;
            for (const auto& a : e.args) {
                if (a.starts_with("user=")) sp.user = a.substr(5);
                else if (a.starts_with("argv=")) sp.argv.push_back(a.substr(5));
                else if (!sp.argv.empty()) sp.argv.push_back(a);
            }
            if (sp.argv.empty()) throw ConfigError(where + ": spawn service " + e.service + " has no argv=");
            if (sp.user.empty()) throw ConfigError(where + ": spawn service " + e.service + " has no user=");
            if (sp.user == "root") throw ConfigError(where + ": spawn service " + e.service + ": user=root is not allowed");
            if (!check_only && ::getpwnam(sp.user.c_str()) == nullptr)
                throw ConfigError(where + ": spawn service " + e.service + ": no such user " + sp.user);
            // maxproc: "-" means default_process_limit; 0 (unlimited in
            // Postfix) still gets a bound here.
            long limit = e.maxproc == "-" ? s.integer("default_process_limit", 1, 100000) : std::stol(e.maxproc);
            sp.max_processes = limit <= 0 ? 1000 : static_cast<std::size_t>(limit);
            sp.time_limit = s.time(e.service + "_time_limit");
            inst->spawn.push_back(sp);
        } else {
            inst->warnings.push_back(where + ": master.cf service " + e.service + " (" + e.command +
                                     ") is not needed by mta-core; ignored");
        }
    }
    if (inst->listeners.empty()) throw ConfigError(inst->config_directory + "/master.cf: no smtpd inet service");

    // Routing for the queue manager.
    auto& q = inst->qmgr;
    q.helo_name = s.str("smtp_helo_name");
    if (q.helo_name.empty()) q.helo_name = inst->myhostname;
    q.myorigin = s.str("myorigin");
    q.minimal_backoff = s.time("minimal_backoff_time");
    q.maximal_backoff = s.time("maximal_backoff_time");
    q.maximal_queue_lifetime = s.time("maximal_queue_lifetime", 'd');
    q.bounce_queue_lifetime = s.time("bounce_queue_lifetime", 'd');
    q.bounce_size_limit = static_cast<std::size_t>(s.integer("bounce_size_limit", 0, 1ll << 30));
    q.delay_warning_time = s.time("delay_warning_time", 'h');
    {
        // notify_classes (postconf(5)): bounce and 2bounce are what mta-core
        // has; the other classes are accepted and send nothing.
        static constexpr std::string_view known[] = {"bounce", "2bounce", "data", "delay", "policy",
                                                     "protocol", "resource", "software"};
        auto qualify = [&](std::string a) {
            return a.find('@') == std::string::npos ? a + "@" + s.str("myorigin") : a;
        };
        for (const auto& c : s.list("notify_classes")) {
            std::string cls = lower(c);
            if (std::find(std::begin(known), std::end(known), cls) == std::end(known))
                throw ConfigError("notify_classes: unknown class \"" + c + "\"");
            if (cls == "bounce") q.bounce_notice_recipient = qualify(s.str("bounce_notice_recipient"));
            if (cls == "2bounce") q.double_bounce_notice_recipient = qualify(s.str("2bounce_notice_recipient"));
        }
    }
    q.lmtp_line_length_limit = static_cast<std::size_t>(s.integer("lmtp_line_length_limit", 0, 1 << 20));
    std::string error;
    auto transport_of = [&](std::string_view param) -> std::optional<delivery::Nexthop> {
        std::string t = s.str(param);
        // "local" and "virtual" (Postfix's own agents) mean delivery-maildir
        // at its default LMTP address.
        if (t.empty() || t == "local" || t == "virtual" || t.starts_with("local:") || t.starts_with("virtual:"))
            t = "lmtp:inet:127.0.0.1:24";
        auto n = parse_nexthop(t, true, &error);
        if (!n) throw ConfigError(std::string(param) + " = " + t + ": " + error);
        return n;
    };
    auto local_hop = transport_of("mailbox_transport");
    auto virtual_hop = transport_of("virtual_transport");
    configure_smtp_transport(b, inst->myhostname, q);
    std::optional<delivery::Nexthop> relayhost;
    if (!s.str("relayhost").empty()) {
        relayhost = parse_nexthop("smtp:" + s.str("relayhost"), false, &error);
        if (!relayhost) throw ConfigError("relayhost: " + error);
    }
    // default_transport: "smtp" (the recipient's domain by MX) or a fixed nexthop.
    std::optional<delivery::Nexthop> default_hop;
    if (std::string dt = s.str("default_transport"); dt != "smtp" && dt != "smtp:") {
        if (!dt.starts_with("smtp:") && !dt.starts_with("relay:") && !dt.starts_with("lmtp:"))
            throw ConfigError("default_transport = " + dt + ": mta-core delivers with smtp or lmtp only");
        default_hop = parse_nexthop(dt, false, &error);
        if (!default_hop) throw ConfigError("default_transport: " + error);
    }
    std::shared_ptr<const tables::Table> transport_maps;
    if (auto tm = s.list("transport_maps"); !tm.empty()) transport_maps = b.table(tm.front(), tables::Flavour::access);
    auto any_cfg = inst->listeners.front().config;
    auto is_local = any_cfg->env.is_local_domain;
    auto is_virtual = b.domain_matcher(s, "virtual_mailbox_domains");
    // Local submission: pickup qualifies and expands as SMTP mail is.
    auto& p = inst->pickup;
    p.message.myhostname = inst->myhostname;
    p.message.myorigin = lower(s.str("myorigin"));
    p.message.mydomain = lower(s.str("mydomain"));
    p.message.append_dot_mydomain = s.boolean("append_dot_mydomain");
    p.message.expand = b.alias_expander(s, is_local);
    p.message_size_limit = static_cast<std::size_t>(s.integer("message_size_limit", 0, 1LL << 40));
    {
        // non_smtpd_milters: the milters of local mail, run by pickup.
        auto local = std::make_shared<milter::MilterSettings>(milter::read_milter_settings(s, inst->queue_directory));
        if (!local->non_smtpd.empty()) {
            local->smtpd = local->non_smtpd;
            p.milters = std::move(local);
        }
    }
    q.filter_route = [](const std::string& filter, const std::string& rcpt) -> qmgr::Route {
        qmgr::Route r;
        r.address = rcpt;
        std::string err;
        auto n = parse_nexthop(filter, false, &err);
        if (!n) {
            r.kind = qmgr::Route::Kind::defer;
            r.reason = "bad FILTER action \"" + filter + "\": " + err;
            return r;
        }
        r.nexthop = *n;
        return r;
    };
    q.route = [=](const std::string& rcpt) -> qmgr::Route {
        qmgr::Route r;
        r.address = rcpt;
        if (rcpt.empty() || rcpt[0] == '|' || rcpt[0] == '/' || rcpt.starts_with(":include:")) {
            r.kind = qmgr::Route::Kind::bounce;
            r.reason = "mta-core does not deliver to commands, files or :include: lists (alias " + rcpt + ")";
            return r;
        }
        auto at = rcpt.rfind('@');
        std::string domain = at == std::string::npos ? "" : lower(rcpt.substr(at + 1));
        if (transport_maps) {
            auto hit = tables::lookup_domain(*transport_maps, domain, true);
            if (!hit) hit = transport_maps->lookup(lower(rcpt));
            // "smtp" or "smtp:" alone: the recipient's domain (transport(5)).
            if (hit && (*hit == "smtp" || *hit == "smtp:" || *hit == "relay:")) hit = "smtp:" + domain;
            if (hit) {
                std::string err;
                auto n = parse_nexthop(*hit, false, &err);
                if (!n) {
                    r.kind = qmgr::Route::Kind::defer;
                    r.reason = "bad transport_maps entry \"" + *hit + "\": " + err;
                    return r;
                }
                r.nexthop = *n;
                return r;
            }
        }
        if (is_local(domain)) {
            r.nexthop = *local_hop;
            return r;
        }
        if (is_virtual(domain)) {
            r.nexthop = *virtual_hop;
            return r;
        }
        if (relayhost) {
            r.nexthop = *relayhost;
            return r;
        }
        if (default_hop) {
            r.nexthop = *default_hop;
            return r;
        }
        // default_transport = smtp: the recipient's domain, by MX; a domain
        // literal ([192.0.2.1]) is that address.
        std::string err;
        auto d = delivery::parse_destination(domain, &err);
        if (!d || domain.empty()) {
            r.kind = qmgr::Route::Kind::bounce;
            r.reason = "bad recipient domain \"" + domain + "\"";
            return r;
        }
        r.nexthop.lmtp = false;
        r.nexthop.text = d->text();
        r.nexthop.destination = std::move(*d);
        return r;
    };
    return inst;
}

}  // namespace mta
