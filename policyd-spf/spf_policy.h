// The policy of policyd-spf: options with the meanings and defaults of
// policyd-spf.conf(5), the verdict for a message from its SPF outcomes
// (reject, defer or a header), and the Received-SPF (RFC 7208 section 9.1)
// and Authentication-Results (RFC 8601) headers. Pure code, no I/O: the
// decider (spf_decider.h) gathers the outcomes and calls verdict().
//
// Security: header values come from the SMTP client (HELO, MAIL FROM) and
// from DNS (explanations); they are reduced to printable ASCII, bounded in
// length and quoted where RFC 7208/8601 syntax needs it, so a client cannot
// inject header lines or break the header's structure.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "net/address.h"
#include "policy/decider.h"
#include "spf_checker.h"

namespace spf {

enum class HeloReject { spf_not_pass, softfail, fail, null, never, no_check };
enum class MailFromReject { fail, softfail, never, no_check };
enum class HeaderType { spf, ar, none };

struct Options {
    HeloReject helo_reject = HeloReject::fail;
    MailFromReject mail_from_reject = MailFromReject::fail;
    bool permerror_reject = false;
    bool temperror_defer = false;
    proto::net::CidrList skip_addresses;  // default loopback
    proto::net::CidrList whitelist;
    std::vector<std::string> helo_whitelist;    // HELO names, lower case
    std::vector<std::string> domain_whitelist;  // domains whose SPF pass whitelists the IP
    std::vector<std::string> reject_not_pass_domains;
    HeaderType header_type = HeaderType::spf;
    std::string authserv_id;  // default: this host's name
    bool hide_receiver = false;
    std::chrono::seconds lookup_time{20};
    int void_limit = 2;
    bool dry_run = false;
    // Per-message results (one evaluation and one header per message).
    std::size_t instance_cache_entries = 20000;
    std::chrono::seconds instance_cache_ttl{600};
};

// Engine settings read at start only (threads and cache sizes).
struct EngineOptions {
    std::size_t workers = 32;
    std::size_t max_queue = 4096;
    std::size_t dns_cache_entries = 100000;
};

// Read every policyd-spf key; throws config::ConfigError naming the key.
Options read_options(proto::config::Reader& reader);
EngineOptions read_engine_options(proto::config::Reader& reader);

struct Facts {
    std::string client_ip;
    std::string helo;
    std::string sender;  // as sent, may be empty (null sender)
    std::string sender_domain() const;
};

// The HELO name is listed in helo_whitelist (case-insensitive, trailing dot
// ignored); the decider then checks that it has the client's address.
bool helo_whitelisted(const Options& options, const std::string& helo);

// Why a message is not checked at all, or nullopt (client address rules;
// helo_whitelist needs DNS and is the decider's).
std::optional<std::string> skip_reason(const Options& options, const Facts& facts);

// The decision for a message. helo is the HELO outcome when HELO was checked;
// mailfrom the MAIL FROM outcome when checked (for a null sender, the HELO
// evaluation as postmaster@HELO, identity helo).
proto::policy::Decision verdict(const Options& options, const Facts& facts,
                                const std::optional<Outcome>& helo,
                                const std::optional<Outcome>& mailfrom);

// Header lines without "PREPEND " (e.g. "Received-SPF: Pass (...) ...").
std::string received_spf(const Options& options, const Facts& facts, Identity identity,
                         const Outcome& outcome);
std::string authentication_results(const Options& options, const Facts& facts, Identity identity,
                                   const Outcome& outcome);

// Printable ASCII only, at most max bytes (header and reply text).
std::string printable(std::string_view text, std::size_t max);

}  // namespace spf
