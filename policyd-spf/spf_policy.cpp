// policyd-spf's options, verdict and headers (see spf_policy.h).
#include "spf_policy.h"

#include <unistd.h>

#include <algorithm>

namespace spf {

using proto::policy::Action;
using proto::policy::ActionKind;
using proto::policy::Decision;

namespace {

std::string lower(std::string s) {
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return s;
}

std::string strip_dot(std::string s) {
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
}

// The name or a subdomain of it is listed (as policyd-spf's domainmatch).
bool in_domains(const std::vector<std::string>& list, const std::string& name) {
    std::string n = strip_dot(lower(name));
    for (const auto& d : list) {
        if (n == d) return true;
        if (n.size() > d.size() && n.compare(n.size() - d.size(), d.size(), d) == 0 &&
            n[n.size() - d.size() - 1] == '.')
            return true;
    }
    return false;
}

bool in_list(const std::vector<std::string>& list, const std::string& name) {
    std::string n = strip_dot(lower(name));
    return std::find(list.begin(), list.end(), n) != list.end();
}

std::vector<std::string> names(proto::config::Reader& r, std::string_view key) {
    std::vector<std::string> out;
    for (auto& n : r.strings(key, {})) {
        std::string v = strip_dot(lower(n));
        if (v.empty() || v.find_first_of(" \t\r\n") != std::string::npos)
            r.fail(key, "\"" + n + "\" is not a domain name");
        out.push_back(v);
    }
    return out;
}

std::string hostname() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
    return buf;
}

// RFC 5322 atext plus '.', the characters of a dot-atom.
bool dot_atom(std::string_view v) {
    if (v.empty() || v.front() == '.' || v.back() == '.') return false;
    for (char c : v) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  std::string_view("!#$%&'*+-/=?^_`{|}~.").find(c) != std::string_view::npos;
        if (!ok) return false;
    }
    return v.find("..") == std::string_view::npos;
}

// key=value value: a dot-atom as is, anything else as a quoted-string.
std::string kv_value(std::string_view raw) {
    std::string v = printable(raw, 256);
    if (dot_atom(v)) return v;
    std::string out = "\"";
    for (char c : v) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    return out + "\"";
}

// RFC 8601 pvalue: local-part@domain may stand unquoted.
std::string address_value(std::string_view raw) {
    std::string v = printable(raw, 256);
    auto at = v.rfind('@');
    if (at != std::string::npos && dot_atom(v.substr(0, at)) && dot_atom(v.substr(at + 1))) return v;
    return kv_value(raw);
}

// Text inside a header comment: no parentheses or backslashes to unbalance it.
std::string comment_text(std::string_view raw) {
    std::string v = printable(raw, 256);
    for (char& c : v)
        if (c == '(' || c == ')' || c == '\\') c = '_';
    return v;
}

std::string identity_name(Identity id) { return id == Identity::helo ? "helo" : "mailfrom"; }

// The checked name: the HELO name, or the MAIL FROM address.
std::string subject_of(const Facts& f, Identity id) {
    if (id == Identity::helo || f.sender.empty()) return f.helo;
    return f.sender;
}

std::string default_explanation(const Options& o, const Facts& f, Identity id, Result r) {
    std::string who = printable(subject_of(f, id), 256);
    for (char& c : who)
        if (c == ' ' || c == ';') c = '_';
    return "Message rejected due to: SPF " + std::string(result_word(r)) +
           " - not authorized. Please see https://www.open-spf.org/Why?s=" +
           (id == Identity::helo ? "helo" : "mfrom") + ";id=" + who + ";ip=" +
           printable(f.client_ip, 64) + ";r=" + printable(o.authserv_id, 128);
}

Action reject(std::string_view code, std::string text) {
    Action a;
    a.kind = ActionKind::smtp_5xx;
    a.code = std::string(code.substr(0, 3));
    a.text = std::string(code.size() > 4 ? code.substr(4) : "") + " " + text;
    return a;
}

Action defer(std::string text) {
    return Action{ActionKind::defer_if_permit, "4.4.3 " + std::move(text), {}};
}

Action prepend(std::string header) { return Action{ActionKind::prepend, std::move(header), {}}; }

struct Refusal {
    Action action;
    std::string reason;
};

// Whether an outcome refuses the message under the options.
std::optional<Refusal> refusal(const Options& o, const Facts& f, Identity id, const Outcome& out) {
    bool helo = id == Identity::helo && !f.sender.empty();  // a pure HELO check
    bool null_sender = f.sender.empty();
    bool reject_it = false;
    // reject_not_pass_domains: for those domains (and their subdomains) the
    // identity is judged as SPF_Not_Pass, whatever the setting says.
    bool not_pass_domain = helo ? in_domains(o.reject_not_pass_domains, f.helo)
                                : !null_sender && in_domains(o.reject_not_pass_domains, f.sender_domain());
    if (not_pass_domain &&
        (out.result == Result::fail || out.result == Result::softfail || out.result == Result::neutral))
        reject_it = true;
    if (helo && o.helo_reject == HeloReject::never && !reject_it) return std::nullopt;  // header only
    if (helo) {
        switch (out.result) {
            case Result::fail:
                reject_it = reject_it || o.helo_reject == HeloReject::spf_not_pass ||
                            o.helo_reject == HeloReject::softfail || o.helo_reject == HeloReject::fail;
                break;
            case Result::softfail:
                reject_it = reject_it || o.helo_reject == HeloReject::spf_not_pass ||
                            o.helo_reject == HeloReject::softfail;
                break;
            case Result::neutral:
            case Result::permerror:
                reject_it = reject_it || o.helo_reject == HeloReject::spf_not_pass;
                break;
            default:
                break;
        }
    } else {
        // MAIL FROM, or the null sender checked as postmaster@HELO: both
        // the MAIL FROM rule and the HELO rule apply.
        switch (out.result) {
            case Result::fail:
                reject_it = reject_it || o.mail_from_reject == MailFromReject::fail ||
                            o.mail_from_reject == MailFromReject::softfail ||
                            (null_sender && (o.helo_reject == HeloReject::null ||
                                             o.helo_reject == HeloReject::fail ||
                                             o.helo_reject == HeloReject::softfail ||
                                             o.helo_reject == HeloReject::spf_not_pass));
                break;
            case Result::softfail:
                reject_it = reject_it || o.mail_from_reject == MailFromReject::softfail ||
                            (null_sender && (o.helo_reject == HeloReject::softfail ||
                                             o.helo_reject == HeloReject::spf_not_pass));
                break;
            case Result::neutral:
                reject_it = reject_it || (null_sender && o.helo_reject == HeloReject::spf_not_pass);
                break;
            case Result::permerror:
                reject_it = null_sender && o.helo_reject == HeloReject::spf_not_pass;
                break;
            default:
                break;
        }
    }
    if (out.result == Result::permerror && (reject_it || o.permerror_reject)) {
        return Refusal{reject("550 5.7.24", "Message rejected due to: SPF permanent error for " +
                                                identity_name(id) + " " +
                                                printable(subject_of(f, id), 256) + ": " +
                                                printable(out.problem, 200)),
                       identity_name(id) + " permerror"};
    }
    if (reject_it) {
        std::string text = out.result == Result::fail && !out.explanation.empty()
                               ? printable(out.explanation, 300)
                               : default_explanation(o, f, id, out.result);
        return Refusal{reject("550 5.7.23", text), identity_name(id) + " " +
                                                       std::string(result_word(out.result))};
    }
    if (out.result == Result::temperror && o.temperror_defer) {
        return Refusal{defer("SPF temporary error for " + identity_name(id) + " " +
                             printable(subject_of(f, id), 256) + ": " + printable(out.problem, 200)),
                       identity_name(id) + " temperror"};
    }
    return std::nullopt;
}

std::string header(const Options& o, const Facts& f, Identity id, const Outcome& out) {
    return o.header_type == HeaderType::ar ? authentication_results(o, f, id, out)
                                           : received_spf(o, f, id, out);
}

}  // namespace

std::string printable(std::string_view text, std::size_t max) {
    std::string out;
    out.reserve(std::min(text.size(), max));
    for (char c : text) {
        if (out.size() >= max) break;
        unsigned char u = static_cast<unsigned char>(c);
        out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
    }
    return out;
}

std::string Facts::sender_domain() const {
    auto at = sender.rfind('@');
    return at == std::string::npos ? sender : sender.substr(at + 1);
}

Options read_options(proto::config::Reader& r) {
    Options o;
    auto helo = r.choice("helo_reject", "Fail",
                         {"SPF_Not_Pass", "Softfail", "Fail", "Null", "False", "No_Check"});
    o.helo_reject = helo == "SPF_Not_Pass" ? HeloReject::spf_not_pass
                    : helo == "Softfail"   ? HeloReject::softfail
                    : helo == "Fail"       ? HeloReject::fail
                    : helo == "Null"       ? HeloReject::null
                    : helo == "False"      ? HeloReject::never
                                           : HeloReject::no_check;
    auto mf = r.choice("mail_from_reject", "Fail", {"Fail", "Softfail", "False", "No_Check"});
    o.mail_from_reject = mf == "Fail"       ? MailFromReject::fail
                         : mf == "Softfail" ? MailFromReject::softfail
                         : mf == "False"    ? MailFromReject::never
                                            : MailFromReject::no_check;
    o.permerror_reject = r.boolean("permerror_reject", false);
    o.temperror_defer = r.boolean("temperror_defer", false);
    o.skip_addresses = r.cidrs("skip_addresses", {"127.0.0.0/8", "::1/128"});
    o.whitelist = r.cidrs("whitelist", {});
    o.helo_whitelist = names(r, "helo_whitelist");
    o.domain_whitelist = names(r, "domain_whitelist");
    o.reject_not_pass_domains = names(r, "reject_not_pass_domains");
    auto ht = r.choice("header_type", "SPF", {"SPF", "AR", "None"});
    o.header_type = ht == "SPF" ? HeaderType::spf : ht == "AR" ? HeaderType::ar : HeaderType::none;
    o.authserv_id = r.string("authserv_id", hostname());
    if (o.authserv_id.empty() || !dot_atom(o.authserv_id))
        r.fail("authserv_id", "must be a host name (RFC 8601 authserv-id)");
    o.hide_receiver = r.boolean("hide_receiver", false);
    o.lookup_time = r.duration("lookup_time", std::chrono::seconds(20), std::chrono::seconds(1),
                               std::chrono::seconds(300));
    o.void_limit = static_cast<int>(r.integer("void_limit", 2, 0, 100));
    o.dry_run = r.boolean("dry_run", false);
    o.instance_cache_entries =
        static_cast<std::size_t>(r.integer("instance_cache_entries", 20000, 1, 10000000));
    o.instance_cache_ttl = r.duration("instance_cache_ttl", std::chrono::seconds(600),
                                      std::chrono::seconds(1), std::chrono::seconds(86400));
    return o;
}

EngineOptions read_engine_options(proto::config::Reader& r) {
    EngineOptions e;
    e.workers = static_cast<std::size_t>(r.integer("workers", 32, 1, 1024));
    e.max_queue = static_cast<std::size_t>(r.integer("max_queue", 4096, 1, 1000000));
    e.dns_cache_entries =
        static_cast<std::size_t>(r.integer("dns_cache_entries", 100000, 0, 10000000));
    return e;
}

bool helo_whitelisted(const Options& o, const std::string& helo) {
    return !helo.empty() && in_list(o.helo_whitelist, helo);
}

std::optional<std::string> skip_reason(const Options& o, const Facts& f) {
    // SPF is a statement about an IP address (RFC 7208 section 4.1): with
    // none there is nothing to evaluate, and any result would be made up.
    if (!proto::net::IpAddress::parse(f.client_ip)) return "client_address is not an IP address";
    if (o.skip_addresses.contains(f.client_ip)) return "skip_addresses";
    if (o.whitelist.contains(f.client_ip)) return "whitelisted client";
    return std::nullopt;
}

Decision verdict(const Options& o, const Facts& f, const std::optional<Outcome>& helo,
                 const std::optional<Outcome>& mailfrom) {
    std::optional<Refusal> refused;
    if (helo && !f.sender.empty()) refused = refusal(o, f, Identity::helo, *helo);
    if (!refused && mailfrom)
        refused = refusal(o, f, f.sender.empty() ? Identity::helo : Identity::mailfrom, *mailfrom);

    // The header: MAIL FROM's; HELO's when MAIL FROM gave none (as
    // policyd-spf does); always naming the identity it is about.
    std::optional<std::pair<Identity, Outcome>> shown;
    if (mailfrom) shown.emplace(f.sender.empty() ? Identity::helo : Identity::mailfrom, *mailfrom);
    if (helo && (!shown || (shown->second.result == Result::none && helo->result != Result::none)))
        shown.emplace(Identity::helo, *helo);

    if (refused && !o.dry_run) return Decision{refused->action, refused->reason};
    std::string reason = refused ? "dry_run, would refuse: " + refused->reason : "";
    if (!shown || o.header_type == HeaderType::none) {
        std::string r = shown ? identity_name(shown->first) + " " +
                                    std::string(result_word(shown->second.result))
                              : "not checked";
        return Decision{Action::dunno(), reason.empty() ? r : reason};
    }
    if (reason.empty())
        reason = identity_name(shown->first) + " " + std::string(result_word(shown->second.result));
    return Decision{prepend(header(o, f, shown->first, shown->second)), reason};
}

std::string received_spf(const Options& o, const Facts& f, Identity id, const Outcome& out) {
    std::string who = comment_text(id == Identity::helo ? f.helo : subject_of(f, id));
    std::string ip = comment_text(f.client_ip);
    std::string comment;
    switch (out.result) {
        case Result::pass:
            comment = "domain of " + who + " designates " + ip + " as permitted sender";
            break;
        case Result::fail:
            comment = "domain of " + who + " does not designate " + ip + " as permitted sender";
            break;
        case Result::softfail:
            comment = "domain of transitioning " + who + " does not designate " + ip +
                      " as permitted sender";
            break;
        case Result::neutral:
            comment = ip + " is neither permitted nor denied by domain of " + who;
            break;
        case Result::none:
            comment = "domain of " + who + " does not provide an SPF record";
            break;
        case Result::temperror:
            comment = "temporary error in processing during lookup of " + who;
            if (!out.problem.empty()) comment += ": " + comment_text(out.problem);
            break;
        case Result::permerror:
            comment = "permanent error in processing during lookup of " + who;
            if (!out.problem.empty()) comment += ": " + comment_text(out.problem);
            break;
    }
    if (!o.hide_receiver) comment = comment_text(o.authserv_id) + ": " + comment;
    std::string h = "Received-SPF: " + std::string(result_title(out.result)) + " (" + comment +
                    ") identity=" + identity_name(id) + ";";
    h += " client-ip=" + kv_value(f.client_ip) + ";";
    if (!f.helo.empty()) h += " helo=" + kv_value(f.helo) + ";";
    h += " envelope-from=" + kv_value(f.sender.empty() ? "" : f.sender) + ";";
    if (!o.hide_receiver) h += " receiver=" + kv_value(o.authserv_id) + ";";
    return h;
}

std::string authentication_results(const Options& o, const Facts& f, Identity id,
                                   const Outcome& out) {
    std::string h = "Authentication-Results: " + printable(o.authserv_id, 255) + "; spf=" +
                    std::string(result_word(out.result));
    if (!out.problem.empty() &&
        (out.result == Result::permerror || out.result == Result::temperror))
        h += " (" + comment_text(out.problem) + ")";
    if (id == Identity::helo)
        h += " smtp.helo=" + kv_value(f.helo);
    else
        h += " smtp.mailfrom=" + address_value(f.sender);
    return h;
}

}  // namespace spf
