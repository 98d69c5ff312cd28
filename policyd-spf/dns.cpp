// Blocking DNS through libresolv, with the shared cache (see dns.h).
#include "dns.h"

#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>

#include <algorithm>
#include <cstring>

namespace spf::dns {

using Clock = std::chrono::steady_clock;

Cache::Cache(std::size_t max_entries, std::chrono::seconds max_ttl,
             std::chrono::seconds negative_ttl)
    : max_entries_(std::max<std::size_t>(max_entries, 1)),
      max_ttl_(max_ttl),
      negative_ttl_(negative_ttl) {}

std::string Cache::key(std::string_view name, int type) {
    std::string k = std::to_string(type) + "/";
    for (char c : name) k.push_back((c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c);
    if (k.size() > 1 && k.back() == '.') k.pop_back();
    return k;
}

std::optional<Answer> Cache::get(std::string_view name, int type) {
    std::string k = key(name, type);
    std::lock_guard lock(mutex_);
    auto it = map_.find(k);
    if (it == map_.end()) return std::nullopt;
    auto now = Clock::now();
    if (it->second.expires <= now) {
        map_.erase(it);  // its order_ slot is skipped at eviction
        return std::nullopt;
    }
    Answer a = it->second.answer;
    a.ttl = static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::seconds>(it->second.expires - now).count());
    return a;
}

void Cache::put(std::string_view name, int type, const Answer& answer) {
    if (answer.status == Status::temporary) return;
    std::chrono::seconds ttl(answer.ttl);
    if (answer.status != Status::ok) ttl = std::min(ttl, negative_ttl_);
    ttl = std::min(ttl, max_ttl_);
    if (ttl.count() <= 0) return;
    std::string k = key(name, type);
    std::lock_guard lock(mutex_);
    auto [it, fresh] = map_.insert_or_assign(k, Entry{answer, Clock::now() + ttl});
    if (fresh) order_.push_back(k);
    while (map_.size() > max_entries_ && !order_.empty()) {
        map_.erase(order_.front());
        order_.pop_front();
    }
    // Keys of entries erased on expiry linger in order_; bound that too.
    if (order_.size() > 2 * max_entries_) {
        std::deque<std::string> live;
        for (auto& key : order_)
            if (map_.count(key)) live.push_back(std::move(key));
        order_.swap(live);
    }
}

std::size_t Cache::size() const {
    std::lock_guard lock(mutex_);
    return map_.size();
}

namespace {

// One resolver state per worker thread, initialised from /etc/resolv.conf.
struct ThreadResolver {
    struct __res_state state {};
    bool ok = false;
    int base_retrans = 5;
    int base_retry = 2;
    ThreadResolver() {
        ok = res_ninit(&state) == 0;
        if (ok) {
            base_retrans = state.retrans;
            base_retry = state.retry;
        }
    }
    ~ThreadResolver() {
        if (ok) res_nclose(&state);
    }
};

thread_local ThreadResolver t_resolver;

std::uint32_t negative_ttl_of(ns_msg& msg) {
    // RFC 2308: the SOA in the authority section; min(SOA TTL, SOA MINIMUM).
    ns_rr rr;
    for (int i = 0; i < ns_msg_count(msg, ns_s_ns); ++i) {
        if (ns_parserr(&msg, ns_s_ns, i, &rr) != 0) break;
        if (ns_rr_type(rr) != ns_t_soa) continue;
        const unsigned char* p = ns_rr_rdata(rr);
        const unsigned char* end = p + ns_rr_rdlen(rr);
        char name[NS_MAXDNAME];
        for (int n = 0; n < 2; ++n) {  // MNAME, RNAME
            int used = ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg), p, name, sizeof name);
            if (used < 0) return 0;
            p += used;
        }
        if (end - p < 20) return 0;
        std::uint32_t minimum = ns_get32(p + 16);
        return std::min<std::uint32_t>(minimum, ns_rr_ttl(rr));
    }
    return 60;
}

}  // namespace

Answer parse_response(const unsigned char* msg_bytes, int len, int type) {
    Answer out;
    ns_msg msg;
    if (ns_initparse(msg_bytes, len, &msg) != 0) return out;  // temporary
    int rcode = ns_msg_getflag(msg, ns_f_rcode);
    if (rcode == ns_r_nxdomain) {
        out.status = Status::nxdomain;
        out.ttl = negative_ttl_of(msg);
        return out;
    }
    if (rcode != ns_r_noerror) return out;
    std::uint32_t ttl = UINT32_MAX;
    ns_rr rr;
    for (int i = 0; i < ns_msg_count(msg, ns_s_an); ++i) {
        if (ns_parserr(&msg, ns_s_an, i, &rr) != 0) return Answer{};
        if (ns_rr_type(rr) != type || ns_rr_class(rr) != ns_c_in) continue;
        const unsigned char* rd = ns_rr_rdata(rr);
        int rdlen = ns_rr_rdlen(rr);
        std::string value;
        char name[NS_MAXDNAME];
        switch (type) {
            case ns_t_a:
                if (rdlen != 4) continue;
                value.assign(reinterpret_cast<const char*>(rd), 4);
                break;
            case ns_t_aaaa:
                if (rdlen != 16) continue;
                value.assign(reinterpret_cast<const char*>(rd), 16);
                break;
            case ns_t_mx:
                if (rdlen < 3 ||
                    ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg), rd + 2, name, sizeof name) < 0)
                    continue;
                value = name;
                break;
            case ns_t_ptr:
                if (ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg), rd, name, sizeof name) < 0)
                    continue;
                value = name;
                break;
            case ns_t_txt: {
                int p = 0;
                while (p < rdlen) {
                    int n = rd[p];
                    if (p + 1 + n > rdlen) break;
                    value.append(reinterpret_cast<const char*>(rd + p + 1), n);
                    p += 1 + n;
                }
                break;
            }
            default:
                continue;
        }
        ttl = std::min<std::uint32_t>(ttl, ns_rr_ttl(rr));
        out.records.push_back(std::move(value));
    }
    if (out.records.empty()) {
        out.status = Status::nodata;
        out.ttl = negative_ttl_of(msg);
    } else {
        out.status = Status::ok;
        out.ttl = ttl;
    }
    return out;
}

Answer query(std::string_view name, int type, Clock::time_point deadline, Cache* cache) {
    if (cache) {
        if (auto hit = cache->get(name, type)) return *hit;
    }
    Answer out;
    auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline - Clock::now());
    if (left.count() < 1 || !t_resolver.ok) return out;  // temporary
    auto& st = t_resolver.state;
    // Never wait past the deadline: clip the per-try timeout and the tries.
    st.retrans = static_cast<int>(std::min<long>(t_resolver.base_retrans, left.count()));
    st.retry = static_cast<int>(
        std::max<long>(1, std::min<long>(t_resolver.base_retry, left.count() / st.retrans)));
    std::string qname(name);
    std::vector<unsigned char> buf(65536);
    int n = res_nquery(&st, qname.c_str(), ns_c_in, type, buf.data(), static_cast<int>(buf.size()));
    if (n < 0) {
        // res_nquery hides the reply on NXDOMAIN/NODATA; h_errno says which.
        switch (st.res_h_errno) {
            case HOST_NOT_FOUND:
                out.status = Status::nxdomain;
                out.ttl = 60;
                break;
            case NO_DATA:
                out.status = Status::nodata;
                out.ttl = 60;
                break;
            default:
                out.status = Status::temporary;
        }
    } else {
        out = parse_response(buf.data(), std::min(n, static_cast<int>(buf.size())), type);
    }
    if (cache) cache->put(name, type, out);
    return out;
}

}  // namespace spf::dns
