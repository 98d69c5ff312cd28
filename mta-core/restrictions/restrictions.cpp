// Restriction lists; see restrictions.h. Reply texts, codes and the order of
// checks follow Postfix's smtpd_check.c so a client sees the same answers.
#include "restrictions/restrictions.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <stdexcept>

#include "tables/tables.h"
#include "smtp/address.h"

namespace mta::restrictions {

namespace asio = boost::asio;
using proto::policy::Action;
using proto::policy::ActionKind;

namespace {

enum class Arg { none, table, domain, policy };

// The keyword table: adding a restriction is adding a row here and a case
// in check().
struct Keyword {
    std::string_view name;
    Kind kind;
    Arg arg;
};
constexpr std::array kKeywords{
    Keyword{"permit", Kind::permit, Arg::none},
    Keyword{"reject", Kind::reject, Arg::none},
    Keyword{"defer", Kind::defer, Arg::none},
    Keyword{"defer_if_permit", Kind::defer_if_permit, Arg::none},
    Keyword{"defer_if_reject", Kind::defer_if_reject, Arg::none},
    Keyword{"warn_if_reject", Kind::warn_if_reject, Arg::none},
    Keyword{"permit_mynetworks", Kind::permit_mynetworks, Arg::none},
    Keyword{"permit_sasl_authenticated", Kind::permit_sasl_authenticated, Arg::none},
    Keyword{"permit_auth_destination", Kind::permit_auth_destination, Arg::none},
    Keyword{"reject_unauth_destination", Kind::reject_unauth_destination, Arg::none},
    Keyword{"defer_unauth_destination", Kind::defer_unauth_destination, Arg::none},
    Keyword{"reject_unauth_pipelining", Kind::reject_unauth_pipelining, Arg::none},
    Keyword{"reject_non_fqdn_helo_hostname", Kind::reject_non_fqdn_helo_hostname, Arg::none},
    Keyword{"reject_non_fqdn_hostname", Kind::reject_non_fqdn_helo_hostname, Arg::none},
    Keyword{"reject_invalid_helo_hostname", Kind::reject_invalid_helo_hostname, Arg::none},
    Keyword{"reject_invalid_hostname", Kind::reject_invalid_helo_hostname, Arg::none},
    Keyword{"reject_unknown_helo_hostname", Kind::reject_unknown_helo_hostname, Arg::none},
    Keyword{"reject_unknown_hostname", Kind::reject_unknown_helo_hostname, Arg::none},
    Keyword{"reject_unknown_client_hostname", Kind::reject_unknown_client_hostname, Arg::none},
    Keyword{"reject_unknown_client", Kind::reject_unknown_client_hostname, Arg::none},
    Keyword{"reject_unknown_reverse_client_hostname", Kind::reject_unknown_reverse_client_hostname,
            Arg::none},
    Keyword{"reject_non_fqdn_sender", Kind::reject_non_fqdn_sender, Arg::none},
    Keyword{"reject_non_fqdn_recipient", Kind::reject_non_fqdn_recipient, Arg::none},
    Keyword{"reject_unknown_sender_domain", Kind::reject_unknown_sender_domain, Arg::none},
    Keyword{"reject_unknown_recipient_domain", Kind::reject_unknown_recipient_domain, Arg::none},
    Keyword{"reject_unlisted_recipient", Kind::reject_unlisted_recipient, Arg::none},
    Keyword{"check_recipient_maps", Kind::reject_unlisted_recipient, Arg::none},
    Keyword{"reject_unlisted_sender", Kind::reject_unlisted_sender, Arg::none},
    Keyword{"reject_sender_login_mismatch", Kind::reject_sender_login_mismatch, Arg::none},
    Keyword{"reject_authenticated_sender_login_mismatch",
            Kind::reject_authenticated_sender_login_mismatch, Arg::none},
    Keyword{"reject_unauthenticated_sender_login_mismatch",
            Kind::reject_unauthenticated_sender_login_mismatch, Arg::none},
    Keyword{"reject_known_sender_login_mismatch", Kind::reject_known_sender_login_mismatch,
            Arg::none},
    Keyword{"reject_rbl_client", Kind::reject_rbl_client, Arg::domain},
    Keyword{"reject_rhsbl_client", Kind::reject_rhsbl_client, Arg::domain},
    Keyword{"reject_rhsbl_sender", Kind::reject_rhsbl_sender, Arg::domain},
    Keyword{"reject_rhsbl_helo", Kind::reject_rhsbl_helo, Arg::domain},
    Keyword{"reject_rhsbl_recipient", Kind::reject_rhsbl_recipient, Arg::domain},
    Keyword{"permit_dnswl_client", Kind::permit_dnswl_client, Arg::domain},
    Keyword{"check_client_access", Kind::check_client_access, Arg::table},
    Keyword{"check_reverse_client_hostname_access", Kind::check_reverse_client_hostname_access,
            Arg::table},
    Keyword{"check_helo_access", Kind::check_helo_access, Arg::table},
    Keyword{"check_sender_access", Kind::check_sender_access, Arg::table},
    Keyword{"check_recipient_access", Kind::check_recipient_access, Arg::table},
    Keyword{"check_policy_service", Kind::check_policy_service, Arg::policy},
};

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// The domain of an address, lower case, trailing dots removed.
std::string domain_of(std::string_view address) {
    auto at = address.rfind('@');
    if (at == std::string_view::npos) return {};
    std::string d = lower(address.substr(at + 1));
    while (!d.empty() && d.back() == '.') d.pop_back();
    return d;
}
std::string local_of(std::string_view address) {
    auto at = address.rfind('@');
    return std::string(at == std::string_view::npos ? address : address.substr(0, at));
}

bool is_address_literal(std::string_view d) { return d.size() > 2 && d.front() == '[' && d.back() == ']'; }

// RFC 1035 host name syntax (letters, digits, hyphens; labels of 1..63).
bool valid_hostname(std::string_view name) {
    if (name.empty() || name.size() > 255) return false;
    std::size_t label = 0;
    char prev = '.';
    for (char c : name) {
        if (c == '.') {
            if (label == 0 || prev == '-') return false;
            label = 0;
        } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') {
            if (label == 0 && c == '-') return false;
            if (++label > 63) return false;
        } else {
            return false;
        }
        prev = c;
    }
    return prev != '-';
}

bool fqdn_address(std::string_view address) {
    std::string d = domain_of(address);
    if (d.empty()) return false;
    return is_address_literal(d) || d.find('.') != std::string::npos;
}

struct Subject {
    std::string name;
    std::string_view cls;
};

Subject stage_subject(Stage stage, const Facts& f) {
    switch (stage) {
        case Stage::client: return {f.namaddr(), "Client host"};
        case Stage::helo: return {f.helo, "Helo command"};
        case Stage::sender: return {f.sender, "Sender address"};
        case Stage::relay:
        case Stage::recipient: return {f.recipient, "Recipient address"};
        case Stage::data: return {"DATA", "Data command"};
        case Stage::end_of_data: return {"END-OF-MESSAGE", "End-of-data"};
    }
    return {f.recipient, "Recipient address"};
}

std::string default_enhanced(int code, std::string_view fallback_tail = "7.1") {
    return std::to_string(code / 100) + "." + std::string(fallback_tail);
}

std::string rejected(int code, std::string_view enhanced, const Subject& s, std::string_view text) {
    std::string r = std::to_string(code);
    r += ' ';
    r += enhanced;
    r += " <";
    r += s.name;
    r += ">: ";
    r += s.cls;
    r += " rejected: ";
    r += text;
    return r;
}

Verdict refuse(std::string reply, std::string reason) {
    return {Verdict::Kind::refuse, std::move(reply), std::move(reason)};
}

// Does the relay check pass for this recipient? Routing inside the local part
// (user%host@, user@host@, host!user@) is judged by where it would really go,
// as Postfix's resolver does, so no such trick relays.
bool authorized_destination(std::string_view recipient, const Environment& env) {
    std::string local = local_of(recipient);
    std::string domain = domain_of(recipient);
    if (recipient.find('@') == std::string_view::npos) domain = lower(env.myorigin);
    std::string routed;
    if (auto at = local.rfind('@'); at != std::string::npos)
        routed = lower(local.substr(at + 1));
    else if (auto pct = local.rfind('%'); pct != std::string::npos)
        routed = lower(local.substr(pct + 1));
    else if (auto bang = local.find('!'); bang != std::string::npos)
        routed = lower(local.substr(0, bang));
    auto ours = [&](const std::string& d) {
        return !d.empty() && ((env.is_local_domain && env.is_local_domain(d)) ||
                              (env.is_virtual_domain && env.is_virtual_domain(d)) ||
                              (env.is_relay_domain && env.is_relay_domain(d)));
    };
    if (!routed.empty()) {
        while (!routed.empty() && routed.back() == '.') routed.pop_back();
        if (!ours(routed)) return false;
    }
    return ours(domain);
}

// "127.0.0.[2..11]" / "127.0.0.2" against one A record.
bool rbl_match(std::string_view filter, std::string_view address) {
    if (filter.empty()) return address.starts_with("127.");
    std::size_t fi = 0, ai = 0;
    for (int octet = 0; octet < 4; ++octet) {
        std::size_t fend = filter.find('.', fi);
        std::size_t aend = address.find('.', ai);
        std::string_view f = filter.substr(fi, fend == std::string_view::npos ? fend : fend - fi);
        std::string_view a = address.substr(ai, aend == std::string_view::npos ? aend : aend - ai);
        int value = 0;
        for (char c : a) value = value * 10 + (c - '0');
        if (f.size() > 2 && f.front() == '[' && f.back() == ']') {
            std::string_view inner = f.substr(1, f.size() - 2);
            auto dots = inner.find("..");
            int lo = 0, hi = 0;
            std::string_view los = dots == std::string_view::npos ? inner : inner.substr(0, dots);
            std::string_view his = dots == std::string_view::npos ? inner : inner.substr(dots + 2);
            for (char c : los) lo = lo * 10 + (c - '0');
            for (char c : his) hi = hi * 10 + (c - '0');
            if (value < lo || value > hi) return false;
        } else if (f != a) {
            return false;
        }
        if (fend == std::string_view::npos || aend == std::string_view::npos)
            return octet == 3 && fend == std::string_view::npos && aend == std::string_view::npos;
        fi = fend + 1;
        ai = aend + 1;
    }
    return true;
}

std::string reversed_octets(std::string_view ip) {
    auto parsed = proto::net::IpAddress::parse(ip);
    if (!parsed) return {};
    std::string out;
    if (!parsed->v6) {
        for (int i = 3; i >= 0; --i) out += std::to_string(parsed->bytes[i]) + ".";
    } else {
        static constexpr char hex[] = "0123456789abcdef";
        for (int i = 15; i >= 0; --i) {
            out += hex[parsed->bytes[i] & 15];
            out += '.';
            out += hex[parsed->bytes[i] >> 4];
            out += '.';
        }
    }
    return out;
}

}  // namespace

bool safe_reply_text(std::string_view text) {
    if (text.size() > 400) return false;
    return std::none_of(text.begin(), text.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
    });
}

List parse_list(const std::vector<std::string>& elements,
                const std::function<std::shared_ptr<const tables::Table>(const std::string&)>& open_table,
                const std::function<std::shared_ptr<PolicyService>(const std::string&)>& make_policy) {
    List list;
    for (std::size_t i = 0; i < elements.size(); ++i) {
        std::string name = lower(elements[i]);
        // "zone=filter" arguments stay as written; keywords are case-insensitive.
        auto row = std::find_if(kKeywords.begin(), kKeywords.end(),
                                [&](const Keyword& k) { return k.name == name; });
        if (row == kKeywords.end()) {
            // A bare table as an item means check_*_access by context in
            // Postfix (restriction classes); mta-core asks for the explicit form.
            throw std::invalid_argument("unknown restriction \"" + elements[i] + "\"");
        }
        Item item{row->kind, std::string(row->name), {}, nullptr, nullptr, {}};
        if (row->arg != Arg::none) {
            if (i + 1 >= elements.size())
                throw std::invalid_argument("\"" + elements[i] + "\" needs an argument");
            item.arg = elements[++i];
            if (row->arg == Arg::table) {
                item.table = open_table(item.arg);
            } else if (row->arg == Arg::policy) {
                item.policy = make_policy(item.arg);
            } else {
                auto eq = item.arg.find('=');
                if (eq != std::string::npos) {
                    item.rbl_filter = item.arg.substr(eq + 1);
                    item.arg.resize(eq);
                }
                if (!valid_hostname(item.arg))
                    throw std::invalid_argument("\"" + elements[i - 1] + " " + elements[i] +
                                                "\": bad DNS list domain");
            }
        }
        list.push_back(std::move(item));
    }
    return list;
}

bool guards_relay(const List& list) {
    return std::any_of(list.begin(), list.end(), [](const Item& i) {
        return i.kind == Kind::reject_unauth_destination || i.kind == Kind::defer_unauth_destination ||
               i.kind == Kind::reject || i.kind == Kind::defer || i.kind == Kind::defer_if_permit;
    });
}

std::optional<Verdict> apply_action(const Action& action, Stage stage, const std::string& subject_name,
                                    const Environment& env, Effects& effects, Deferrals& deferrals,
                                    std::string* problem) {
    (void)stage;
    Subject subject{subject_name, "Recipient address"};
    switch (stage) {
        case Stage::client: subject.cls = "Client host"; break;
        case Stage::helo: subject.cls = "Helo command"; break;
        case Stage::sender: subject.cls = "Sender address"; break;
        case Stage::data: subject.cls = "Data command"; break;
        case Stage::end_of_data: subject.cls = "End-of-data"; break;
        default: break;
    }
    // Text from outside: an optional enhanced code then free text.
    auto split_text = [&](const std::string& text, int code, std::string& enhanced,
                          std::string& rest) -> bool {
        rest = text;
        enhanced.clear();
        if (text.size() >= 5 && std::isdigit(static_cast<unsigned char>(text[0])) && text[1] == '.') {
            auto sp = text.find(' ');
            std::string e = text.substr(0, sp);
            if (e[0] - '0' != code / 100) {
                if (problem) *problem = "enhanced status code " + e + " does not match " + std::to_string(code);
                return false;
            }
            enhanced = e;
            rest = sp == std::string::npos ? "" : text.substr(sp + 1);
        }
        if (!safe_reply_text(rest)) {
            if (problem) *problem = "reply text with control characters or too long";
            return false;
        }
        if (enhanced.empty()) enhanced = default_enhanced(code);
        return true;
    };
    auto refusal = [&](int code, std::string_view default_text) -> std::optional<Verdict> {
        std::string enhanced, rest;
        if (!split_text(action.text, code, enhanced, rest)) return std::nullopt;
        return refuse(rejected(code, enhanced, subject, rest.empty() ? default_text : rest),
                      "access");
    };
    switch (action.kind) {
        case ActionKind::ok:
            return Verdict{Verdict::Kind::permit, {}, "access"};
        case ActionKind::dunno:
            return std::nullopt;
        case ActionKind::reject: {
            auto v = refusal(env.access_map_reject_code, "Access denied");
            if (!v && problem) return std::nullopt;
            return v;
        }
        case ActionKind::defer:
            return refusal(env.access_map_defer_code, "Access denied");
        case ActionKind::smtp_4xx:
        case ActionKind::smtp_5xx: {
            int code = std::stoi(action.code);
            return refusal(code, "Access denied");
        }
        case ActionKind::defer_if_permit:
        case ActionKind::defer_if_reject: {
            std::string enhanced, rest;
            if (!split_text(action.text, env.access_map_defer_code, enhanced, rest))
                return std::nullopt;
            std::string r = rejected(env.access_map_defer_code, enhanced, subject,
                                     rest.empty() ? "Service unavailable" : rest);
            if (action.kind == ActionKind::defer_if_permit) {
                if (deferrals.if_permit.empty()) deferrals.if_permit = r;
            } else if (deferrals.if_reject.empty()) {
                deferrals.if_reject = r;
            }
            return std::nullopt;
        }
        case ActionKind::prepend: {
            // "Name: value": a header field name (RFC 5322 ftext) and a colon.
            const std::string& h = action.text;
            auto colon = h.find(':');
            bool ok = colon != std::string::npos && colon > 0 && h.size() <= 998 &&
                      std::all_of(h.begin(), h.begin() + static_cast<std::ptrdiff_t>(colon),
                                  [](char c) { return c > 32 && c < 127 && c != ':'; }) &&
                      safe_reply_text(h.substr(colon + 1));
            if (!ok) {
                if (problem) *problem = "PREPEND without a valid header";
                return std::nullopt;
            }
            effects.prepend.push_back(h);
            return std::nullopt;
        }
        case ActionKind::hold:
            effects.hold = true;
            effects.hold_reason = action.text;
            return std::nullopt;
        case ActionKind::discard:
            effects.discard = true;
            return Verdict{Verdict::Kind::permit, {}, "discard"};
        case ActionKind::redirect:
            if (action.text.find('@') == std::string::npos || !safe_reply_text(action.text)) {
                if (problem) *problem = "REDIRECT without a valid address";
                return std::nullopt;
            }
            effects.redirect = action.text;
            return std::nullopt;
        case ActionKind::filter:
            if (action.text.find(':') == std::string::npos || !safe_reply_text(action.text)) {
                if (problem) *problem = "FILTER without transport:destination";
                return std::nullopt;
            }
            effects.filter = action.text;
            return std::nullopt;
        case ActionKind::bcc:
            if (action.text.find('@') == std::string::npos || !safe_reply_text(action.text)) {
                if (problem) *problem = "BCC without a valid address";
                return std::nullopt;
            }
            effects.bcc.push_back(action.text);
            return std::nullopt;
        case ActionKind::warn:
        case ActionKind::info:
            if (env.on_warning) env.on_warning(std::string(action.keyword()) + ": " + action.text);
            return std::nullopt;
    }
    return std::nullopt;
}

namespace {

proto::policy::Request policy_request(const Facts& f, const PolicyService& service) {
    proto::policy::Request r;
    r.append("request", "smtpd_access_policy");
    r.append("protocol_state", f.protocol_state);
    r.append("protocol_name", f.protocol_name);
    r.append("helo_name", f.helo);
    r.append("queue_id", f.queue_id);
    r.append("sender", f.sender);
    r.append("recipient", f.recipient);
    r.append("recipient_count", std::to_string(f.recipient_count));
    r.append("client_address", f.client_address);
    r.append("client_name", f.client_name);
    r.append("reverse_client_name", f.reverse_client_name);
    r.append("instance", f.instance);
    r.append("sasl_method", f.sasl_method);
    r.append("sasl_username", f.sasl_username);
    r.append("sasl_sender", "");
    r.append("size", std::to_string(f.size));
    r.append("ccert_subject", "");
    r.append("ccert_issuer", "");
    r.append("ccert_fingerprint", "");
    r.append("ccert_pubkey_fingerprint", "");
    r.append("encryption_protocol", f.encryption_protocol);
    r.append("encryption_cipher", f.encryption_cipher);
    r.append("encryption_keysize", f.encryption_keysize);
    r.append("etrn_domain", "");
    r.append("stress", "");
    r.append("server_address", f.server_address);
    r.append("server_port", f.server_port);
    r.append("client_port", f.client_port);
    r.append("policy_context", service.policy_context);
    r.append("compatibility_level", f.compatibility_level);
    r.append("mail_version", "");
    return r;
}

// One item. nullopt: no decision, go on.
// The reply for a DNS list hit (Postfix's smtpd_check.c rbl_reject_reply):
// rbl_reply_maps by the list's domain, else default_rbl_reply, expanded with
// the listing's macros; $rbl_reason is the listing's TXT record. A template
// whose result is not a 4xx/5xx reply with safe text gets Postfix's default
// text and a warning, never a malformed reply to the client.
asio::awaitable<std::string> rbl_refusal(const Environment& env, const Facts& f, std::string rbl_class,
                                         std::string what, std::string rbl_domain, std::string query) {
    const int code = env.maps_rbl_reject_code;
    std::string reason;
    if (env.resolver) {
        auto txt = co_await env.resolver->text(query);
        if (txt.status == DnsAnswer::found) reason = txt.values.front();
    }
    std::string fallback = std::to_string(code) + " " + default_enhanced(code) + " Service unavailable; " +
                           rbl_class + " [" + what + "] blocked using " + rbl_domain +
                           (reason.empty() ? "" : "; " + reason);
    if (!env.rbl_reply) co_return fallback;
    Environment::Macros m{{"client", f.namaddr()},
                          {"client_address", f.client_address},
                          {"client_name", f.client_name},
                          {"reverse_client_name", f.reverse_client_name},
                          {"helo_name", f.helo},
                          {"rbl_class", rbl_class},
                          {"rbl_code", std::to_string(code)},
                          {"rbl_domain", rbl_domain},
                          {"rbl_reason", reason},
                          {"rbl_txt", reason},
                          {"rbl_what", what},
                          {"recipient", f.recipient},
                          {"recipient_domain", domain_of(f.recipient)},
                          {"recipient_name", local_of(f.recipient)},
                          {"sender", f.sender},
                          {"sender_domain", domain_of(f.sender)},
                          {"sender_name", local_of(f.sender)}};
    std::string text;
    try {
        text = env.rbl_reply(rbl_domain, m);
    } catch (const std::exception& e) {
        if (env.on_warning) env.on_warning("rbl reply template for " + rbl_domain + ": " + e.what());
        co_return fallback;
    }
    const bool coded = text.size() >= 4 && (text[0] == '4' || text[0] == '5') && std::isdigit(static_cast<unsigned char>(text[1])) &&
                       std::isdigit(static_cast<unsigned char>(text[2])) && text[3] == ' ';
    std::string rest = coded ? text.substr(4) : "";
    if (!coded || !safe_reply_text(rest)) {
        if (env.on_warning)
            env.on_warning("rbl reply template for " + rbl_domain + " gives a bad reply: " + text.substr(0, 100));
        co_return fallback;
    }
    // An enhanced status code of the reply's class, or the default one (RFC 3463).
    const int given = std::stoi(text.substr(0, 3));
    const bool enhanced = rest.size() >= 5 && rest[0] == text[0] && rest[1] == '.';
    co_return text.substr(0, 4) + (enhanced ? "" : default_enhanced(given) + " ") + rest;
}

asio::awaitable<std::optional<Verdict>> check(const Item& item, Stage stage, const Facts& f,
                                              const Environment& env, Effects& effects,
                                              Deferrals& deferrals) {
    const Subject own = stage_subject(stage, f);
    const Subject client{f.namaddr(), "Client host"};
    const Subject helo{f.helo, "Helo command"};
    const Subject sender{f.sender, "Sender address"};
    const Subject recipient{f.recipient, "Recipient address"};
    const bool at_rcpt = stage == Stage::relay || stage == Stage::recipient;
    switch (item.kind) {
        case Kind::permit:
            co_return Verdict{Verdict::Kind::permit, {}, item.name};
        case Kind::reject:
            co_return refuse(rejected(env.reject_code, default_enhanced(env.reject_code), own,
                                      "Access denied"),
                             item.name);
        case Kind::defer:
            co_return refuse(rejected(env.defer_code, default_enhanced(env.defer_code), own,
                                      "Access denied"),
                             item.name);
        case Kind::defer_if_permit:
            if (deferrals.if_permit.empty())
                deferrals.if_permit = rejected(env.defer_code, "4.7.1", own, "Service unavailable");
            co_return std::nullopt;
        case Kind::defer_if_reject:
            if (deferrals.if_reject.empty())
                deferrals.if_reject = rejected(env.defer_code, "4.7.1", own, "Service unavailable");
            co_return std::nullopt;
        case Kind::warn_if_reject:
            co_return std::nullopt;
        case Kind::permit_mynetworks:
            if (env.mynetworks.contains(f.client_address))
                co_return Verdict{Verdict::Kind::permit, {}, item.name};
            co_return std::nullopt;
        case Kind::permit_sasl_authenticated:
            if (!f.sasl_username.empty()) co_return Verdict{Verdict::Kind::permit, {}, item.name};
            co_return std::nullopt;
        case Kind::permit_auth_destination:
            if (at_rcpt && authorized_destination(f.recipient, env))
                co_return Verdict{Verdict::Kind::permit, {}, item.name};
            co_return std::nullopt;
        case Kind::reject_unauth_destination:
        case Kind::defer_unauth_destination:
            if (!at_rcpt || authorized_destination(f.recipient, env)) co_return std::nullopt;
            {
                int code = item.kind == Kind::reject_unauth_destination
                               ? env.relay_domains_reject_code
                               : env.defer_code;
                co_return refuse(std::to_string(code) + " " + default_enhanced(code) + " <" +
                                     f.recipient + ">: Relay access denied",
                                 item.name);
            }
        case Kind::reject_unauth_pipelining:
            if (f.illegal_pipelining)
                co_return refuse("503 5.5.0 <" + own.name + ">: " + std::string(own.cls) +
                                     " rejected: Improper use of SMTP command pipelining",
                                 item.name);
            co_return std::nullopt;
        case Kind::reject_non_fqdn_helo_hostname:
            if (f.helo.empty()) co_return std::nullopt;
            {
                std::string h = lower(f.helo);
                while (!h.empty() && h.back() == '.') h.pop_back();
                if (is_address_literal(h) || (valid_hostname(h) && h.find('.') != std::string::npos))
                    co_return std::nullopt;
            }
            co_return refuse(rejected(env.non_fqdn_reject_code, "5.5.2", helo,
                                      "need fully-qualified hostname"),
                             item.name);
        case Kind::reject_invalid_helo_hostname:
            if (f.helo.empty()) co_return std::nullopt;
            if (is_address_literal(f.helo)) {
                std::string inner = f.helo.substr(1, f.helo.size() - 2);
                if (inner.starts_with("IPv6:")) inner = inner.substr(5);
                if (proto::net::IpAddress::parse(inner)) co_return std::nullopt;
            } else if (valid_hostname(f.helo)) {
                co_return std::nullopt;
            }
            co_return refuse(rejected(env.invalid_hostname_reject_code, "5.5.2", helo, "Invalid name"),
                             item.name);
        case Kind::reject_unknown_helo_hostname: {
            if (f.helo.empty() || is_address_literal(f.helo) || !env.resolver) co_return std::nullopt;
            auto a = co_await env.resolver->addresses(f.helo);
            if (a.status == DnsAnswer::found) co_return std::nullopt;
            if (a.status == DnsAnswer::not_found) {
                auto mx = co_await env.resolver->mail_exchangers(f.helo);
                if (mx.status == DnsAnswer::found) co_return std::nullopt;
                if (mx.status == DnsAnswer::not_found)
                    co_return refuse(rejected(env.unknown_hostname_reject_code, "4.7.1", helo,
                                              "Host not found"),
                                     item.name);
            }
            std::string r = rejected(450, "4.7.1", helo, "Host not found");
            if (env.unknown_helo_tempfail_defer_if_permit) {
                if (deferrals.if_permit.empty()) deferrals.if_permit = r;
                co_return std::nullopt;
            }
            co_return refuse(r, item.name);
        }
        case Kind::reject_unknown_client_hostname:
        case Kind::reject_unknown_reverse_client_hostname: {
            bool reverse = item.kind == Kind::reject_unknown_reverse_client_hostname;
            const std::string& name = reverse ? f.reverse_client_name : f.client_name;
            if (name != "unknown") co_return std::nullopt;
            std::string text = reverse ? "cannot find your reverse hostname, [" + f.client_address + "]"
                                       : "cannot find your hostname, [" + f.client_address + "]";
            if (f.client_name_tempfail) {
                std::string r = "450 4.7.25 Client host rejected: " + text;
                if (env.unknown_client_tempfail_defer_if_permit) {
                    if (deferrals.if_permit.empty()) deferrals.if_permit = r;
                    co_return std::nullopt;
                }
                co_return refuse(r, item.name);
            }
            int code = env.unknown_client_reject_code;
            co_return refuse(std::to_string(code) + " " + std::to_string(code / 100) +
                                 ".7.25 Client host rejected: " + text,
                             item.name);
        }
        case Kind::reject_non_fqdn_sender:
            if (f.sender.empty() || !f.sender_known || fqdn_address(f.sender)) co_return std::nullopt;
            co_return refuse(rejected(env.non_fqdn_reject_code, "5.5.2", sender,
                                      "need fully-qualified address"),
                             item.name);
        case Kind::reject_non_fqdn_recipient:
            if (!at_rcpt || fqdn_address(f.recipient)) co_return std::nullopt;
            co_return refuse(rejected(env.non_fqdn_reject_code, "5.5.2", recipient,
                                      "need fully-qualified address"),
                             item.name);
        case Kind::reject_unknown_sender_domain:
        case Kind::reject_unknown_recipient_domain: {
            bool is_sender = item.kind == Kind::reject_unknown_sender_domain;
            const std::string& addr = is_sender ? f.sender : f.recipient;
            if (addr.empty() || (!is_sender && !at_rcpt) || !env.resolver) co_return std::nullopt;
            std::string d = domain_of(addr);
            if (d.empty() || is_address_literal(d)) co_return std::nullopt;
            if ((env.is_local_domain && env.is_local_domain(d)) ||
                (env.is_virtual_domain && env.is_virtual_domain(d)))
                co_return std::nullopt;
            const Subject& s = is_sender ? sender : recipient;
            std::string enh = is_sender ? "4.1.8" : "4.1.2";
            auto mx = co_await env.resolver->mail_exchangers(d);
            if (mx.status == DnsAnswer::found) co_return std::nullopt;
            DnsAnswer a;
            if (mx.status == DnsAnswer::not_found) {
                a = co_await env.resolver->addresses(d);
                if (a.status == DnsAnswer::found) co_return std::nullopt;
            }
            if (mx.status == DnsAnswer::not_found && a.status == DnsAnswer::not_found) {
                int code = env.unknown_address_reject_code;
                enh[0] = static_cast<char>('0' + code / 100);
                co_return refuse(rejected(code, enh, s, "Domain not found"), item.name);
            }
            std::string r = rejected(450, enh, s, "Domain not found");
            if (env.unknown_address_tempfail_defer_if_permit) {
                if (deferrals.if_permit.empty()) deferrals.if_permit = r;
                co_return std::nullopt;
            }
            co_return refuse(r, item.name);
        }
        case Kind::reject_unlisted_recipient:
        case Kind::reject_unlisted_sender: {
            bool is_sender = item.kind == Kind::reject_unlisted_sender;
            const std::string& addr = is_sender ? f.sender : f.recipient;
            if (addr.empty() || (!is_sender && !at_rcpt) || !env.is_known_recipient)
                co_return std::nullopt;
            auto known = env.is_known_recipient(addr);
            if (!known) {
                co_return refuse(rejected(450, "4.3.0", is_sender ? sender : recipient,
                                          "Temporary lookup failure"),
                                 item.name);
            }
            if (*known) co_return std::nullopt;
            int code = env.unknown_local_recipient_reject_code;
            std::string d = domain_of(addr);
            std::string table = env.is_local_domain && env.is_local_domain(d) ? "local recipient"
                                : env.is_virtual_domain && env.is_virtual_domain(d) ? "virtual mailbox"
                                                                                    : "relay recipient";
            co_return refuse(rejected(code, std::to_string(code / 100) + ".1.1",
                                      is_sender ? sender : recipient,
                                      "User unknown in " + table + " table"),
                             item.name);
        }
        case Kind::reject_sender_login_mismatch:
        case Kind::reject_authenticated_sender_login_mismatch:
        case Kind::reject_unauthenticated_sender_login_mismatch:
        case Kind::reject_known_sender_login_mismatch: {
            if (f.sender.empty() || !env.sender_login_maps) co_return std::nullopt;
            bool authenticated = !f.sasl_username.empty();
            if (item.kind == Kind::reject_authenticated_sender_login_mismatch && !authenticated)
                co_return std::nullopt;
            if (item.kind == Kind::reject_unauthenticated_sender_login_mismatch && authenticated)
                co_return std::nullopt;
            auto owners = tables::lookup_address(*env.sender_login_maps, f.sender,
                                                 env.recipient_delimiter,
                                                 env.parent_domain_matches_subdomains);
            if (authenticated) {
                if (!owners) {
                    if (item.kind == Kind::reject_known_sender_login_mismatch) co_return std::nullopt;
                    co_return refuse(rejected(553, "5.7.1", sender,
                                              "not owned by user " + f.sasl_username),
                                     item.name);
                }
                // The owners are a list of login names (comma or space separated).
                std::string list = *owners;
                for (char& c : list)
                    if (c == ',' || c == '\t') c = ' ';
                std::size_t pos = 0;
                while (pos < list.size()) {
                    auto end = list.find(' ', pos);
                    std::string owner = list.substr(pos, end == std::string::npos ? end : end - pos);
                    if (!owner.empty() && lower(owner) == lower(f.sasl_username)) co_return std::nullopt;
                    if (end == std::string::npos) break;
                    pos = end + 1;
                }
                co_return refuse(rejected(553, "5.7.1", sender, "not owned by user " + f.sasl_username),
                                 item.name);
            }
            if (owners) co_return refuse(rejected(553, "5.7.1", sender, "not logged in"), item.name);
            co_return std::nullopt;
        }
        case Kind::reject_rbl_client:
        case Kind::permit_dnswl_client: {
            if (!env.resolver) co_return std::nullopt;
            std::string query = reversed_octets(f.client_address);
            if (query.empty()) co_return std::nullopt;
            auto a = co_await env.resolver->addresses(query + item.arg);
            // A list that cannot be reached counts as "not listed" (Postfix).
            if (a.status != DnsAnswer::found) co_return std::nullopt;
            bool listed = std::any_of(a.values.begin(), a.values.end(),
                                      [&](const std::string& v) { return rbl_match(item.rbl_filter, v); });
            if (!listed) co_return std::nullopt;
            if (item.kind == Kind::permit_dnswl_client)
                co_return Verdict{Verdict::Kind::permit, {}, item.name};
            std::string rbl_class = "Client host";
            std::string what = f.client_address;
            std::string name = query + item.arg;
            std::string reply = co_await rbl_refusal(env, f, rbl_class, what, item.arg, name);
            co_return refuse(reply, item.name);
        }
        case Kind::reject_rhsbl_client:
        case Kind::reject_rhsbl_sender:
        case Kind::reject_rhsbl_helo:
        case Kind::reject_rhsbl_recipient: {
            if (!env.resolver) co_return std::nullopt;
            std::string domain;
            std::string what;
            switch (item.kind) {
                case Kind::reject_rhsbl_client:
                    domain = f.client_name == "unknown" ? "" : lower(f.client_name);
                    what = "Client host";
                    break;
                case Kind::reject_rhsbl_sender:
                    domain = domain_of(f.sender);
                    what = "Sender address";
                    break;
                case Kind::reject_rhsbl_helo:
                    domain = lower(f.helo);
                    what = "Helo command";
                    break;
                default:
                    domain = at_rcpt ? domain_of(f.recipient) : "";
                    what = "Recipient address";
                    break;
            }
            if (domain.empty() || is_address_literal(domain)) co_return std::nullopt;
            std::string name = domain + "." + item.arg;
            auto a = co_await env.resolver->addresses(name);
            if (a.status != DnsAnswer::found) co_return std::nullopt;
            bool listed = std::any_of(a.values.begin(), a.values.end(),
                                      [&](const std::string& v) { return rbl_match(item.rbl_filter, v); });
            if (!listed) co_return std::nullopt;
            std::string reply = co_await rbl_refusal(env, f, what, domain, item.arg, name);
            co_return refuse(reply, item.name);
        }
        case Kind::check_client_access:
        case Kind::check_reverse_client_hostname_access:
        case Kind::check_helo_access:
        case Kind::check_sender_access:
        case Kind::check_recipient_access: {
            std::optional<std::string> found;
            Stage as = stage;
            std::string subject;
            const auto& t = *item.table;
            switch (item.kind) {
                case Kind::check_client_access:
                    as = Stage::client;
                    subject = client.name;
                    if (f.client_name != "unknown")
                        found = tables::lookup_domain(t, lower(f.client_name),
                                                      env.parent_domain_matches_subdomains);
                    if (!found) found = tables::lookup_client_address(t, f.client_address);
                    break;
                case Kind::check_reverse_client_hostname_access:
                    as = Stage::client;
                    subject = client.name;
                    if (f.reverse_client_name != "unknown")
                        found = tables::lookup_domain(t, lower(f.reverse_client_name),
                                                      env.parent_domain_matches_subdomains);
                    break;
                case Kind::check_helo_access:
                    as = Stage::helo;
                    subject = f.helo;
                    if (!f.helo.empty())
                        found = tables::lookup_domain(t, lower(f.helo),
                                                      env.parent_domain_matches_subdomains);
                    break;
                case Kind::check_sender_access:
                    as = Stage::sender;
                    subject = f.sender;
                    if (f.sender_known)
                        found = tables::lookup_address(t, f.sender.empty() ? "<>" : f.sender,
                                                       env.recipient_delimiter,
                                                       env.parent_domain_matches_subdomains);
                    break;
                default:
                    as = Stage::recipient;
                    subject = f.recipient;
                    if (at_rcpt)
                        found = tables::lookup_address(t, f.recipient, env.recipient_delimiter,
                                                       env.parent_domain_matches_subdomains);
                    break;
            }
            if (!found) co_return std::nullopt;
            auto action = proto::policy::parse_action(*found);
            std::string problem;
            if (!action.action) {
                if (env.on_warning)
                    env.on_warning(item.arg + ": bad access table result \"" + *found + "\"");
                co_return refuse("451 4.3.0 <" + subject + ">: Temporary lookup failure", item.name);
            }
            auto v = apply_action(*action.action, as, subject, env, effects, deferrals, &problem);
            if (!problem.empty()) {
                if (env.on_warning) env.on_warning(item.arg + ": " + problem);
                co_return refuse("451 4.3.0 <" + subject + ">: Temporary lookup failure", item.name);
            }
            if (v) v->reason_class = item.name;
            co_return v;
        }
        case Kind::check_policy_service: {
            auto& service = *item.policy;
            auto started = std::chrono::steady_clock::now();
            auto request = policy_request(f, service);  // named: see session.cpp on g++ 12
            auto outcome = co_await service.client->query(request);
            if (env.on_policy)
                env.on_policy(service, std::chrono::steady_clock::now() - started,
                              outcome.from_service);
            if (!outcome.from_service && env.on_warning)
                env.on_warning("problem talking to server " + service.spec + ": " + outcome.error);
            std::string problem;
            auto v = apply_action(outcome.action, stage, own.name, env, effects, deferrals, &problem);
            if (!problem.empty()) {
                if (env.on_warning) env.on_warning(service.spec + ": " + problem);
                // A reply we cannot use is a failure of the service: its default action.
                co_return refuse("451 4.3.5 Server configuration problem", item.name);
            }
            if (v) v->reason_class = item.name;
            co_return v;
        }
    }
    co_return std::nullopt;
}

}  // namespace

asio::awaitable<Verdict> evaluate(const List& list, Stage stage, const Facts& facts,
                                  const Environment& env, Effects& effects, Deferrals& deferrals) {
    for (const auto& item : list) {
        auto v = co_await check(item, stage, facts, env, effects, deferrals);
        if (v) co_return *v;
    }
    co_return Verdict{};
}

Verdict finish(Verdict verdict, const Deferrals& deferrals) {
    if (verdict.kind == Verdict::Kind::refuse && !deferrals.if_reject.empty() &&
        !verdict.reply.empty() && verdict.reply[0] == '5')
        return refuse(deferrals.if_reject, "defer_if_reject");
    if (verdict.kind != Verdict::Kind::refuse && !deferrals.if_permit.empty())
        return refuse(deferrals.if_permit, "defer_if_permit");
    return verdict;
}

}  // namespace mta::restrictions
