// libspf2 with an RFC 7208 DNS layer around it (see libspf2_checker.h).
#include "libspf2_checker.h"

#include <arpa/inet.h>
#include <netdb.h>

extern "C" {
#include <spf2/spf.h>
#include <spf2/spf_dns.h>
#include <spf2/spf_dns_rr.h>
}

#include <algorithm>
#include <array>
#include <cstdlib>
#include <ctime>
#include <cstring>
#include <mutex>
#include <optional>

#include "daemon/log.h"
#include "spf_record.h"

namespace spf {

std::string_view result_title(Result r) {
    switch (r) {
        case Result::none: return "None";
        case Result::neutral: return "Neutral";
        case Result::pass: return "Pass";
        case Result::fail: return "Fail";
        case Result::softfail: return "Softfail";
        case Result::temperror: return "TempError";
        case Result::permerror: return "PermError";
    }
    return "None";
}

std::string_view result_word(Result r) {
    switch (r) {
        case Result::none: return "none";
        case Result::neutral: return "neutral";
        case Result::pass: return "pass";
        case Result::fail: return "fail";
        case Result::softfail: return "softfail";
        case Result::temperror: return "temperror";
        case Result::permerror: return "permerror";
    }
    return "none";
}

namespace {

// RFC 7208 4.6.4: at most 10 terms that query DNS; at most 10 MX answers;
// only the first 10 PTR names are checked.
constexpr int kMaxDnsTerms = 10;
constexpr int kMaxMx = 10;
constexpr std::size_t kMaxPtr = 10;
// Explanations come from DNS: keep them short and printable in replies.
constexpr std::size_t kMaxExplanation = 300;
// What libspf2 returns as "explanation" when the record had no usable exp=.
constexpr const char* kNoExplanation = "no-explanation-given";

// The state of one check_host() on this thread.
struct Eval {
    int void_limit = 2;
    dns::Cache* cache = nullptr;
    std::chrono::steady_clock::time_point deadline;
    bool client_v6 = false;
    int terms = 0;
    int voids = 0;
    int pending_hosts = 0;  // A/AAAA lookups of MX or PTR names still to come
    int fetches = 0;        // record fetches (the first is the identity's own)
    bool in_exp = false;
    SPF_request_t* request = nullptr;
    // For explanations (section 7.3 macros).
    std::string sender, domain, helo, receiver;
    std::array<std::uint8_t, 16> ip{};
    std::optional<Result> forced;
    std::string problem;
    bool cache_only = false;  // never query: a miss ends the evaluation
    bool missed = false;

    void force(Result r, std::string why) {
        if (forced) return;
        forced = r;
        problem = std::move(why);
    }
};

thread_local Eval* t_eval = nullptr;

// Every lookup of an evaluation. In cache-only mode a miss is a temporary
// failure that stops libspf2, and the caller's outcome is discarded.
dns::Answer lookup(Eval& e, std::string_view name, int type) {
    if (!e.cache_only) return dns::query(name, type, e.deadline, e.cache);
    if (e.cache) {
        if (auto hit = e.cache->get(name, type)) return *hit;
    }
    e.missed = true;
    return dns::Answer{};
}

bool ends_with_nocase(std::string_view s, std::string_view suffix) {
    if (s.size() < suffix.size()) return false;
    return strncasecmp(s.data() + s.size() - suffix.size(), suffix.data(), suffix.size()) == 0;
}

// Labels 1..63 octets, name <= 253: what can be asked of DNS at all.
bool queryable(std::string_view name) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (name.empty() || name.size() > 253) return false;
    std::size_t start = 0;
    while (true) {
        std::size_t dot = name.find('.', start);
        std::size_t len = (dot == std::string_view::npos ? name.size() : dot) - start;
        if (len == 0 || len > 63) return false;
        if (dot == std::string_view::npos) return true;
        start = dot + 1;
    }
}

SPF_dns_rr_t* make_rr(SPF_dns_server_t* srv, const char* domain, ns_type type, int herrno) {
    return SPF_dns_rr_new_init(srv, domain, type, 0, herrno);
}

SPF_dns_rr_t* rr_from_answer(SPF_dns_server_t* srv, const char* domain, ns_type type,
                             const dns::Answer& a) {
    int herrno = a.status == dns::Status::ok         ? NETDB_SUCCESS
                 : a.status == dns::Status::nxdomain ? HOST_NOT_FOUND
                 : a.status == dns::Status::nodata   ? NO_DATA
                                                     : TRY_AGAIN;
    SPF_dns_rr_t* rr = make_rr(srv, domain, type, herrno);
    if (!rr || herrno != NETDB_SUCCESS) return rr;
    int n = 0;
    for (const auto& rec : a.records) {
        std::size_t len = (type == ns_t_a || type == ns_t_aaaa) ? sizeof(SPF_dns_rr_data_t)
                                                                : rec.size() + 1;
        if (SPF_dns_rr_buf_realloc(rr, n, len) != SPF_E_SUCCESS) break;
        if (type == ns_t_a)
            std::memcpy(&rr->rr[n]->a, rec.data(), 4);
        else if (type == ns_t_aaaa)
            std::memcpy(&rr->rr[n]->aaaa, rec.data(), 16);
        else {
            std::memcpy(rr->rr[n]->txt, rec.data(), rec.size());
            rr->rr[n]->txt[rec.size()] = '\0';
        }
        ++n;
    }
    rr->num_rr = n;
    return rr;
}

// Count a void lookup (section 4.6.4); false when the limit is exceeded.
bool count_void(Eval& e, const dns::Answer& a, std::string_view name) {
    if (a.status == dns::Status::ok && !a.records.empty()) return true;
    if (++e.voids > e.void_limit) {
        e.force(Result::permerror, "too many void DNS lookups (at " + std::string(name) + ")");
        return false;
    }
    return true;
}

// The answer of a /0 probe (see spf_record.h): does any address exist?
SPF_dns_rr_t* probe(SPF_dns_server_t* srv, const char* domain, Eval& e, std::string_view base,
                    bool via_mx, bool v6) {
    auto temp = [&](std::string_view what) {
        e.force(Result::temperror, "DNS failure for " + std::string(what));
        return make_rr(srv, domain, ns_t_a, TRY_AGAIN);
    };
    bool found = false;
    if (!via_mx) {
        auto a = lookup(e, base, ns_t_aaaa);
        if (a.status == dns::Status::temporary) return temp(base);
        if (!count_void(e, a, base)) return make_rr(srv, domain, ns_t_a, TRY_AGAIN);
        found = !a.records.empty();
    } else {
        auto mx = lookup(e, base, ns_t_mx);
        if (mx.status == dns::Status::temporary) return temp(base);
        if (!count_void(e, mx, base)) return make_rr(srv, domain, ns_t_a, TRY_AGAIN);
        if (mx.records.size() > kMaxMx) {
            e.force(Result::permerror, "more than 10 MX records for " + std::string(base));
            return make_rr(srv, domain, ns_t_a, TRY_AGAIN);
        }
        for (const auto& host : mx.records) {
            auto a = lookup(e, host, v6 ? ns_t_aaaa : ns_t_a);
            if (a.status == dns::Status::temporary) return temp(host);
            if (!a.records.empty()) found = true;
        }
    }
    if (!found) return make_rr(srv, domain, ns_t_a, NO_DATA);
    dns::Answer synthetic{dns::Status::ok, {std::string("\x7f\0\0\x02", 4)}, 0};
    return rr_from_answer(srv, domain, ns_t_a, synthetic);
}

SPF_dns_rr_t* layer_lookup(SPF_dns_server_t* srv, const char* domain, ns_type type, int) {
    Eval* e = t_eval;
    if (!e || e->forced) return make_rr(srv, domain, type, TRY_AGAIN);
    std::string_view name(domain ? domain : "");

    bool host_lookup = (type == ns_t_a || type == ns_t_aaaa) && e->pending_hosts > 0;
    if (host_lookup) --e->pending_hosts;
    bool term = !e->in_exp && !host_lookup && type != ns_t_txt;
    if (term && ++e->terms > kMaxDnsTerms) {
        e->force(Result::permerror, "more than 10 DNS-querying terms");
        return make_rr(srv, domain, type, TRY_AGAIN);
    }
    if (term && type == ns_t_a) {
        for (auto [suffix, via_mx, v6] :
             {std::tuple{probe_a6_suffix, false, true}, std::tuple{probe_mx4_suffix, true, false},
              std::tuple{probe_mx6_suffix, true, true}}) {
            if (ends_with_nocase(name, suffix))
                return probe(srv, domain, *e, name.substr(0, name.size() - suffix.size()), via_mx, v6);
        }
    }
    if (!queryable(name)) {
        dns::Answer none{dns::Status::nxdomain, {}, 0};
        if (term && !count_void(*e, none, name)) return make_rr(srv, domain, type, TRY_AGAIN);
        return make_rr(srv, domain, type, HOST_NOT_FOUND);
    }
    dns::Answer a = lookup(*e, name, type);
    if (a.status == dns::Status::temporary) {
        // Section 5: a DNS error while evaluating a term is a temperror; one
        // while fetching an explanation only loses the explanation.
        if (!e->in_exp) e->force(Result::temperror, "DNS failure for " + std::string(name));
        return make_rr(srv, domain, type, TRY_AGAIN);
    }
    if (term && !count_void(*e, a, name)) return make_rr(srv, domain, type, TRY_AGAIN);
    if (type == ns_t_mx && term) {
        if (a.records.size() > kMaxMx) {
            e->force(Result::permerror, "more than 10 MX records for " + std::string(name));
            return make_rr(srv, domain, type, TRY_AGAIN);
        }
        e->pending_hosts = static_cast<int>(a.records.size());
    }
    if (type == ns_t_ptr) {
        if (a.records.size() > kMaxPtr) a.records.resize(kMaxPtr);
        if (term) e->pending_hosts = static_cast<int>(a.records.size());
    }
    return rr_from_answer(srv, domain, type, a);
}

// Record fetch for the identity, include: and redirect= (section 4.4/4.5).
SPF_errcode_t layer_get_spf(SPF_server_t* server, SPF_request_t* request, SPF_response_t* response,
                            SPF_record_t** recordp) {
    *recordp = nullptr;
    Eval* e = t_eval;
    if (!e || e->forced) return SPF_E_DNS_ERROR;
    std::string_view domain(request->cur_dom ? request->cur_dom : "");
    bool top = e->fetches++ == 0;
    if (!top && ++e->terms > kMaxDnsTerms) {
        e->force(Result::permerror, "more than 10 DNS-querying terms");
        return SPF_E_BIG_DNS;
    }
    Result missing = top ? Result::none : Result::permerror;  // include/redirect of "none"
    if (!queryable(domain)) {
        e->force(missing, "malformed domain " + std::string(domain));
        return SPF_E_NOT_SPF;
    }
    dns::Answer a = lookup(*e, domain, ns_t_txt);
    if (a.status == dns::Status::temporary) {
        e->force(Result::temperror, "DNS failure for " + std::string(domain) + " TXT");
        return SPF_E_DNS_ERROR;
    }
    const std::string* found = nullptr;
    int count = 0;
    for (const auto& txt : a.records) {
        if (is_spf_record(txt)) {
            found = &txt;
            ++count;
        }
    }
    if (count == 0) {
        e->force(missing, "no SPF record at " + std::string(domain));
        return SPF_E_NOT_SPF;
    }
    if (count > 1) {
        e->force(Result::permerror, "multiple SPF records at " + std::string(domain));
        return SPF_E_MULTIPLE_RECORDS;
    }
    ParseResult parsed = parse_record(*found);
    if (!parsed.record) {
        e->force(Result::permerror, "SPF syntax error at " + std::string(domain) + ": " + parsed.error);
        return SPF_E_SYNTAX;
    }
    std::string rewritten = to_libspf2(*parsed.record, e->client_v6);
    SPF_errcode_t err = SPF_record_compile(server, response, recordp, rewritten.c_str());
    if (err != SPF_E_SUCCESS) {
        if (*recordp) {
            SPF_record_free(*recordp);
            *recordp = nullptr;
        }
        e->force(Result::permerror, "record not accepted by libspf2 at " + std::string(domain) +
                                        ": " + SPF_strerror(err));
        return err;
    }
    return SPF_E_SUCCESS;
}

// Explanation fetch (section 6.2): one TXT record, a valid explain-string,
// else no explanation (our default is used). Lookups here never change the
// result.
SPF_errcode_t layer_get_exp(SPF_server_t* server, const char* domain, char** bufp, size_t* buflenp) {
    Eval* e = t_eval;
    if (!e || e->forced || !e->request) return SPF_E_NOT_SPF;
    struct Guard {
        Eval* e;
        ~Guard() { e->in_exp = false; }
    } guard{e};
    e->in_exp = true;
    std::string_view name(domain ? domain : "");
    if (!queryable(name)) return SPF_E_NOT_SPF;
    dns::Answer a = lookup(*e, name, ns_t_txt);
    if (a.status != dns::Status::ok || a.records.size() != 1) return SPF_E_NOT_SPF;
    const std::string& text = a.records.front();
    if (text.size() > 2048) return SPF_E_NOT_SPF;
    // Our own expansion: libspf2 1.2.10 garbles explain-strings after the
    // first macro (spaces become '%', later macros stay unexpanded).
    MacroContext ctx;
    ctx.sender = e->sender;
    ctx.domain = e->request->cur_dom ? std::string_view(e->request->cur_dom) : e->domain;
    ctx.helo = e->helo;
    ctx.receiver = e->receiver;
    ctx.ip = e->ip;
    ctx.v6 = e->client_v6;
    ctx.now = static_cast<std::int64_t>(std::time(nullptr));
    auto expanded = expand_explanation(text, ctx, kMaxExplanation);
    if (!expanded) return SPF_E_NOT_SPF;
    if (!*bufp || *buflenp < expanded->size() + 1) {
        char* grown = static_cast<char*>(std::realloc(*bufp, expanded->size() + 1));
        if (!grown) return SPF_E_NO_MEMORY;
        *bufp = grown;
        *buflenp = expanded->size() + 1;
    }
    std::memcpy(*bufp, expanded->data(), expanded->size());
    (*bufp)[expanded->size()] = '\0';
    (void)server;
    return SPF_E_SUCCESS;
}

// libspf2's diagnostics go to our log; its "error" is an assertion failure
// inside the library, an impossible state: log and abort.
void spf_error_handler(const char* file, int line, const char* msg) {
    proto::log::error(std::string("libspf2 internal error at ") + (file ? file : "?") + ":" +
                      std::to_string(line) + ": " + (msg ? msg : ""));
    std::abort();
}
void spf_warning_handler(const char*, int, const char* msg) {
    proto::log::debug(std::string("libspf2: ") + (msg ? msg : ""));
}
void spf_quiet_handler(const char*, int, const char*) {}

// One libspf2 server and DNS layer per worker thread.
struct ThreadEngine {
    SPF_dns_server_t layer{};
    SPF_server_t* server = nullptr;

    std::string receiver;

    ThreadEngine() {
        layer.destroy = nullptr;  // we own it, libspf2 must not free it
        layer.lookup = layer_lookup;
        layer.get_spf = layer_get_spf;
        layer.get_exp = layer_get_exp;
        layer.add_cache = nullptr;
        layer.layer_below = nullptr;
        layer.name = "rfc7208";
        server = SPF_server_new_dns(&layer, 0);
        if (!server) return;
        SPF_response_t* discard = nullptr;
        SPF_server_set_explanation(server, kNoExplanation, &discard);
        if (discard) SPF_response_free(discard);
        // Our layer enforces the RFC 7208 limits; libspf2's own counters are
        // per sub-response and would misfire.
        SPF_server_set_max_dns_mech(server, 1000);
        SPF_server_set_max_dns_mx(server, 1000);
        SPF_server_set_max_dns_ptr(server, 1000);
    }
    ~ThreadEngine() {
        if (server) SPF_server_free(server);
    }
};

std::string sanitize(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (out.size() >= kMaxExplanation) break;
        unsigned char u = static_cast<unsigned char>(c);
        out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
    }
    return out;
}

}  // namespace

Libspf2Checker::Libspf2Checker(Libspf2Options options)
    : options_(std::move(options)),
      cache_(options_.cache_entries, options_.cache_max_ttl, options_.cache_negative_ttl) {
    static std::once_flag once;
    std::call_once(once, [] {
        SPF_error_handler = spf_error_handler;
        SPF_warning_handler = spf_warning_handler;
        SPF_info_handler = spf_quiet_handler;
        SPF_debug_handler = spf_quiet_handler;
    });
}

Libspf2Checker::~Libspf2Checker() = default;

Outcome Libspf2Checker::check(const Query& q) {
    Outcome out;
    // Address: IPv4-mapped IPv6 is the IPv4 client (RFC 7208 5.6 / 4291).
    std::string ip = q.client_ip;
    in6_addr v6{};
    in_addr v4{};
    bool is_v6 = false;
    if (ip.find(':') != std::string::npos) {
        if (::inet_pton(AF_INET6, ip.c_str(), &v6) != 1) {
            out.result = Result::none;
            out.problem = "unparsable client address";
            return out;
        }
        if (IN6_IS_ADDR_V4MAPPED(&v6))
            std::memcpy(&v4, &v6.s6_addr[12], 4);
        else
            is_v6 = true;
    } else if (::inet_pton(AF_INET, ip.c_str(), &v4) != 1) {
        out.result = Result::none;
        out.problem = "unparsable client address";
        return out;
    }
    // Section 4.3: a malformed or single-label domain is "none", no lookup.
    std::string domain = q.domain;
    if (!domain.empty() && domain.back() == '.') domain.pop_back();
    if (!valid_domain_name(domain)) {
        out.result = Result::none;
        out.problem = "malformed domain";
        return out;
    }
    if (q.forward_confirm) {
        // Does the name have the client's address (A or AAAA)?
        int type = is_v6 ? ns_t_aaaa : ns_t_a;
        dns::Answer a;
        if (q.cache_only) {
            auto hit = cache_.get(domain, type);
            if (!hit) {
                out.needs_dns = true;
                return out;
            }
            a = *hit;
        } else {
            a = dns::query(domain, type, q.deadline, &cache_);
        }
        if (a.status == dns::Status::temporary) {
            out.result = Result::temperror;
            out.problem = "DNS failure for " + domain;
            return out;
        }
        std::string want = is_v6 ? std::string(reinterpret_cast<const char*>(&v6), 16)
                                 : std::string(reinterpret_cast<const char*>(&v4), 4);
        bool found = std::find(a.records.begin(), a.records.end(), want) != a.records.end();
        out.result = found ? Result::pass : Result::fail;
        if (!found) out.problem = "client address is not an address of " + domain;
        return out;
    }
    std::string sender = q.sender;
    std::string local = sender.substr(0, sender.rfind('@') == std::string::npos ? 0 : sender.rfind('@'));
    if (local.empty()) local = "postmaster";
    sender = local + "@" + domain;

    thread_local std::unique_ptr<ThreadEngine> engine;
    if (!engine) engine = std::make_unique<ThreadEngine>();
    if (!engine->server) {
        out.result = Result::temperror;
        out.problem = "libspf2 initialisation failed";
        return out;
    }
    if (engine->receiver != q.receiver) {
        SPF_server_set_rec_dom(engine->server, q.receiver.c_str());
        engine->receiver = q.receiver;
    }
    SPF_request_t* req = SPF_request_new(engine->server);
    if (!req) {
        out.result = Result::temperror;
        out.problem = "out of memory";
        return out;
    }
    if (is_v6)
        SPF_request_set_ipv6(req, v6);
    else
        SPF_request_set_ipv4(req, v4);
    if (!q.helo.empty()) SPF_request_set_helo_dom(req, q.helo.c_str());
    SPF_request_set_env_from(req, sender.c_str());

    Eval e;
    e.void_limit = q.void_limit;
    e.cache = &cache_;
    e.deadline = q.deadline;
    e.client_v6 = is_v6;
    e.request = req;
    e.cache_only = q.cache_only;
    e.sender = sender;
    e.domain = domain;
    e.helo = q.helo;
    e.receiver = q.receiver;
    if (is_v6)
        std::memcpy(e.ip.data(), &v6, 16);
    else
        std::memcpy(e.ip.data(), &v4, 4);
    t_eval = &e;
    SPF_response_t* resp = nullptr;
    SPF_errcode_t err;
    if (SPF_request_is_loopback(req)) {
        // libspf2's query function passes loopback clients unevaluated; do
        // what it does for any other client: fetch the record, interpret it.
        req->use_helo = 0;
        req->cur_dom = req->env_from_dp;
        resp = SPF_response_new(req);
        SPF_record_t* record = nullptr;
        err = resp ? SPF_server_get_record(engine->server, req, resp, &record) : SPF_E_NO_MEMORY;
        if (err == SPF_E_SUCCESS && record) {
            resp->spf_record_exp = record;  // the record whose exp= applies
            err = SPF_record_interpret(record, req, resp, 0);
            resp->spf_record_exp = nullptr;  // freed below, never by the response
        }
        if (record) SPF_record_free(record);
    } else {
        err = SPF_request_query_mailfrom(req, &resp);
    }
    t_eval = nullptr;

    if (e.missed) {
        out.needs_dns = true;
        out.result = Result::temperror;
        out.problem = "not in the DNS cache";
    } else if (e.forced) {
        out.result = *e.forced;
        out.problem = e.problem;
    } else if (!resp) {
        out.result = Result::temperror;
        out.problem = "out of memory";
    } else {
        switch (SPF_response_result(resp)) {
            case SPF_RESULT_PASS: out.result = Result::pass; break;
            case SPF_RESULT_FAIL: out.result = Result::fail; break;
            case SPF_RESULT_SOFTFAIL: out.result = Result::softfail; break;
            case SPF_RESULT_NEUTRAL: out.result = Result::neutral; break;
            case SPF_RESULT_NONE: out.result = Result::none; break;
            case SPF_RESULT_TEMPERROR: out.result = Result::temperror; break;
            case SPF_RESULT_PERMERROR: out.result = Result::permerror; break;
            case SPF_RESULT_INVALID:
            default:
                out.result = err == SPF_E_DNS_ERROR ? Result::temperror : Result::permerror;
                break;
        }
        if (out.result == Result::permerror || out.result == Result::temperror)
            out.problem = SPF_strerror(SPF_response_errcode(resp));
    }
    if (out.result == Result::fail && resp) {
        const char* exp = SPF_response_get_explanation(resp);
        if (exp && std::strcmp(exp, kNoExplanation) != 0) out.explanation = sanitize(exp);
    }
    if (resp) SPF_response_free(resp);
    SPF_request_free(req);
    return out;
}

}  // namespace spf
