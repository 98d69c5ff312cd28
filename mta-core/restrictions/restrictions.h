// Restriction lists, with Postfix's semantics (postconf(5),
// SMTPD_ACCESS_README): items are evaluated in order; the first decisive
// result (permit or a refusal) ends the list; "permit" ends only its own list
// and evaluation goes on with the next; DEFER_IF_PERMIT and DEFER_IF_REJECT
// are remembered and applied when the stage's final result is known.
//
// Every item is a row of one keyword table (restrictions.cpp): its name,
// what argument it takes, and what it checks. Built-in items need only
// local facts (or DNS, through Resolver); every other decision is
// check_policy_service, through proto/policy's pooled client.
//
// Replies that come from a table or a policy service are validated before
// use (reply class, enhanced code, no control characters, length); a bad one
// counts as a failure of that table or service.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/address.h"
#include "policy/action.h"
#include "policy/client.h"
#include "restrictions/facts.h"

namespace mta::tables {
class Table;
}

namespace mta::restrictions {

// A check_policy_service target with Postfix's per-service settings.
struct PolicyService {
    std::string spec;  // as written, for logs
    std::unique_ptr<proto::policy::Client> client;
    std::string policy_context;
};

enum class Kind {
    permit, reject, defer, defer_if_permit, defer_if_reject, warn_if_reject,
    permit_mynetworks, permit_sasl_authenticated, permit_auth_destination,
    reject_unauth_destination, defer_unauth_destination, reject_unauth_pipelining,
    reject_non_fqdn_helo_hostname, reject_invalid_helo_hostname, reject_unknown_helo_hostname,
    reject_unknown_client_hostname, reject_unknown_reverse_client_hostname,
    reject_non_fqdn_sender, reject_non_fqdn_recipient,
    reject_unknown_sender_domain, reject_unknown_recipient_domain,
    reject_unlisted_recipient, reject_unlisted_sender,
    reject_sender_login_mismatch, reject_authenticated_sender_login_mismatch,
    reject_unauthenticated_sender_login_mismatch, reject_known_sender_login_mismatch,
    reject_rbl_client, reject_rhsbl_client, reject_rhsbl_sender, reject_rhsbl_helo,
    reject_rhsbl_recipient, permit_dnswl_client,
    check_client_access, check_reverse_client_hostname_access, check_helo_access,
    check_sender_access, check_recipient_access, check_policy_service,
};

struct Item {
    Kind kind;
    std::string name;  // the keyword as written
    std::string arg;   // table spec, DNS list domain, policy address
    std::shared_ptr<const tables::Table> table;
    std::shared_ptr<PolicyService> policy;
    // reject_rbl_client zone=d.d.d.[lo..hi]: which answers count (empty: any 127.x).
    std::string rbl_filter;
};
using List = std::vector<Item>;

// Answers restrictions need from DNS. Every call completes within its own
// timeout; a failure is "temporary".
struct DnsAnswer {
    enum Status { found, not_found, temporary } status = not_found;
    std::vector<std::string> values;  // addresses (A/AAAA) or names
};
class Resolver {
public:
    virtual ~Resolver() = default;
    virtual boost::asio::awaitable<DnsAnswer> addresses(std::string name) = 0;  // A and AAAA
    virtual boost::asio::awaitable<DnsAnswer> mail_exchangers(std::string domain) = 0;  // MX
    virtual boost::asio::awaitable<DnsAnswer> text(std::string name) = 0;  // TXT
};

// The facts about this server that built-in items need (from main.cf).
struct Environment {
    proto::net::CidrList mynetworks;
    std::function<bool(std::string_view domain)> is_local_domain;    // mydestination + own literals
    std::function<bool(std::string_view domain)> is_relay_domain;    // relay_domains
    std::function<bool(std::string_view domain)> is_virtual_domain;  // virtual alias/mailbox
    // reject_unlisted_recipient/sender: nullopt = cannot say (table failure).
    std::function<std::optional<bool>(std::string_view address)> is_known_recipient;
    std::shared_ptr<const tables::Table> sender_login_maps;
    Resolver* resolver = nullptr;
    std::string recipient_delimiter;
    std::string myorigin;  // the domain of a bare local part (append_at_myorigin)
    bool parent_domain_matches_subdomains = true;
    // Postfix's reply codes (postconf(5)).
    int reject_code = 554, defer_code = 450, relay_domains_reject_code = 554,
        unknown_client_reject_code = 450, unknown_hostname_reject_code = 450,
        unknown_address_reject_code = 450, non_fqdn_reject_code = 504,
        invalid_hostname_reject_code = 501, maps_rbl_reject_code = 554,
        access_map_reject_code = 554, access_map_defer_code = 450,
        unknown_local_recipient_reject_code = 550, unverified_sender_reject_code = 450;
    // What a reject-type check does when DNS fails temporarily: defer_if_permit
    // (keep looking for a reason to reject) or defer at once (postconf(5)
    // reject_tempfail_action and its finer-grained siblings).
    bool unknown_helo_tempfail_defer_if_permit = true;     // unknown_helo_hostname_tempfail_action
    bool unknown_address_tempfail_defer_if_permit = true;  // unknown_address_tempfail_action
    bool unknown_client_tempfail_defer_if_permit = true;   // reject_tempfail_action
    // default_rbl_reply and rbl_reply_maps (postconf(5)): the reply text for
    // a DNS list hit, from the list's domain and the macros of the listing;
    // unset, Postfix's default text is used. May throw (a bad template).
    using Macros = std::map<std::string, std::string, std::less<>>;
    std::function<std::string(const std::string& rbl_domain, const Macros& macros)> rbl_reply;
    // Called for each policy query (service, latency) for metrics and logs.
    std::function<void(const PolicyService&, std::chrono::steady_clock::duration, bool ok)>
        on_policy;
    // Called for WARN/INFO results and item failures: one log line.
    std::function<void(const std::string& text)> on_warning;
};

// Parse one restriction list (already split by the config reader). open_table
// opens a table spec; make_policy builds a policy service from its element
// ("unix:private/x" or "{ inet:h:p, timeout=10s, default_action=DUNNO }").
// Throws std::invalid_argument naming the bad element.
List parse_list(const std::vector<std::string>& elements,
                const std::function<std::shared_ptr<const tables::Table>(const std::string&)>& open_table,
                const std::function<std::shared_ptr<PolicyService>(const std::string&)>& make_policy);

// True if the list can refuse a relay by itself (Postfix requires one such
// item in smtpd_relay_restrictions or smtpd_recipient_restrictions).
bool guards_relay(const List& list);

// The outcome of one stage (all its lists).
struct Verdict {
    enum class Kind { dunno, permit, refuse } kind = Kind::dunno;
    std::string reply;  // "554 5.7.1 <...>: Recipient address rejected: Access denied"
    std::string reason_class;  // for logs/metrics: the item that decided
};

// DEFER_IF_PERMIT/DEFER_IF_REJECT state, carried across the lists of one stage.
struct Deferrals {
    std::string if_permit;  // reply to give if the final result is permit
    std::string if_reject;  // reply to give instead of a reject
};

// Evaluate one list at one stage. Returns dunno, permit or refuse.
boost::asio::awaitable<Verdict> evaluate(const List& list, Stage stage, const Facts& facts,
                                         const Environment& env, Effects& effects,
                                         Deferrals& deferrals);

// Apply the deferrals to a stage's final verdict (after all its lists).
Verdict finish(Verdict verdict, const Deferrals& deferrals);

// Turn a policy/access action into a verdict, as Postfix's smtpd_check does
// with access(5) results; nullopt for DUNNO-like results that go on. Exposed
// for tests.
std::optional<Verdict> apply_action(const proto::policy::Action& action, Stage stage,
                                    const std::string& subject, const Environment& env,
                                    Effects& effects, Deferrals& deferrals, std::string* problem);

// Reply text validation shared with the session (milter and table texts).
bool safe_reply_text(std::string_view text);

}  // namespace mta::restrictions
