// SpfChecker on libspf2, made RFC 7208-exact by what surrounds it:
//  - our own DNS layer (an SPF_dns_server_t) under libspf2: every lookup goes
//    through libresolv with the shared cache (dns.h), and is counted here:
//    DNS-querying terms (limit 10, section 4.6.4), void lookups (void_limit),
//    MX answers over 10 (permerror), PTR answers cut to 10, and the lookup
//    time budget (temperror when spent);
//  - our record fetch (get_spf): TXT only (no type 99), exactly one
//    "v=spf1" record, the RFC 7208 syntax pre-check (spf_record.h), then the
//    record rewritten into a form libspf2 evaluates correctly;
//  - identity and address normalisation before libspf2 runs (section 4.3
//    "none" for malformed domains, IPv4-mapped IPv6 read as IPv4);
//  - loopback clients evaluated like any other (libspf2 passes them);
//  - result mapping afterwards: what our layer decided (permerror, temperror,
//    none) wins over what libspf2 reports while unwinding.
//
// How the layer stops libspf2: when it decides a result it records it and
// answers every further lookup with TRY_AGAIN, which makes libspf2 return at
// once; the recorded result then replaces libspf2's.
//
// Thread model: one SPF_server_t per worker thread (created on first use),
// the per-evaluation state in a thread_local; the cache is shared.
// Known shortcut: lookups libspf2 makes for the %{p} macro count as terms.
#pragma once

#include <memory>

#include "dns.h"
#include "spf_checker.h"

namespace spf {

struct Libspf2Options {
    std::size_t cache_entries = 100000;
    std::chrono::seconds cache_max_ttl{3600};
    std::chrono::seconds cache_negative_ttl{300};
};

class Libspf2Checker final : public SpfChecker {
public:
    explicit Libspf2Checker(Libspf2Options options);
    ~Libspf2Checker() override;
    Outcome check(const Query& query) override;
    dns::Cache& cache() { return cache_; }

private:
    Libspf2Options options_;
    dns::Cache cache_;
};

}  // namespace spf
