// The asynchronous DNS resolver of mta-core, on c-ares (Debian's
// libc-ares2), driven by Asio: c-ares tells which sockets it wants watched
// (ARES_OPT_SOCK_STATE_CB), Asio watches them without owning them and a
// steady_timer follows ares_timeout(), so no call ever blocks the I/O thread.
//
// Why c-ares and not libunbound: we need a stub resolver that asks the
// site's own recursive servers (/etc/resolv.conf) exactly as Postfix's
// res_query does, with per-query deadlines and no threads of its own;
// libunbound is a full validating recursor with its own threads or processes
// and a cache to manage. c-ares is small, has no threads and exposes its
// sockets, which is what an Asio program needs.
//
// Semantics (Postfix's dns_lookup): NXDOMAIN and NODATA are "not_found";
// SERVFAIL, REFUSED, timeouts, network and parse errors are "temporary".
// CNAME chains are followed by c-ares. Every query completes within
// timeout * tries (each attempt is bounded by c-ares' own timer, the whole
// query by ours, since c-ares doubles the timeout on later tries; with
// several servers they share that budget, tried in turn). addresses() asks
// A and AAAA in parallel; client_names() asks PTR then A or AAAA, so it
// takes up to twice the bound.
//
// Limits and security: names are validated before they are asked for and
// names in answers are passed on only when they are plain host names
// (dns/names.h); at most max_answers records are kept per query. At most
// 128 queries are in c-ares at once (a burst larger than that overflows
// socket buffers, and each lost datagram costs a whole timeout); the rest
// wait in order, their deadline running. A known shortcut: queries to a zone
// whose servers never answer hold their slots until their deadline, so with
// more than 128 of them waiting, other lookups wait too (never longer than
// their own deadline). c-ares 1.18 sends every query to a server from one
// UDP socket (one source port; random query IDs only): point it at a
// recursive resolver on this host or a trusted network, as Postfix's own
// stub resolver expects.
//
// Threading: everything runs on the executor given to the constructor, which
// must not run handlers concurrently (one thread or a strand). Destroying the
// resolver completes the queries still waiting with "temporary".
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dns/answers.h"  // MxRecord, max_answers
#include "restrictions/restrictions.h"

namespace mta::dns {

struct Options {
    std::chrono::milliseconds timeout{5000};  // per query attempt (Postfix's resolver defaults: RES_TIMEOUT 5s, 2 tries)
    int tries = 2;
    std::vector<std::string> servers;  // "127.0.0.1:5353" overrides resolv.conf (tests); empty: /etc/resolv.conf
    // Consulted before DNS for names and addresses, as the C library's
    // "hosts: files dns" does for Postfix ("" for none). Read once.
    std::string hosts_file = "/etc/hosts";
};

struct ClientNames {
    std::string client_name = "unknown";
    std::string reverse_client_name = "unknown";
    bool tempfail = false;
};

class AresResolver final : public restrictions::Resolver {
public:
    // Throws std::runtime_error naming the c-ares failure, std::invalid_argument
    // for a timeout or tries below 1.
    AresResolver(boost::asio::any_io_executor ex, Options options);
    ~AresResolver() override;
    AresResolver(const AresResolver&) = delete;
    AresResolver& operator=(const AresResolver&) = delete;

    // A and AAAA (asked in parallel); values are textual addresses.
    boost::asio::awaitable<restrictions::DnsAnswer> addresses(std::string name) override;
    // MX; values are host names in preference order ("" alone: null MX).
    boost::asio::awaitable<restrictions::DnsAnswer> mail_exchangers(std::string domain) override;
    // TXT (a DNS list's reason): each record's strings joined, printable.
    boost::asio::awaitable<restrictions::DnsAnswer> text(std::string name) override;
    // For delivery: sorted by preference, equal preferences shuffled. A null
    // MX is one record with an empty host and status found.
    boost::asio::awaitable<std::vector<MxRecord>> mx(std::string domain,
                                                     restrictions::DnsAnswer::Status& status);
    // PTR names of an address (IPv4, IPv6, IPv4-mapped IPv6), valid host names only.
    boost::asio::awaitable<restrictions::DnsAnswer> ptr(std::string ip);
    // Postfix's client name lookup (smtpd_peer.c): PTR of the IP; the name is
    // the client_name only if one of its A/AAAA records (of the client's
    // family) is the IP (forward-confirmed); reverse_client_name is the PTR
    // name either way; "unknown" otherwise; tempfail when a lookup failed
    // temporarily.
    boost::asio::awaitable<ClientNames> client_names(std::string ip);

    // Counters, for metrics and as a test oracle (one per DNS query sent).
    struct Stats {
        std::uint64_t queries = 0, found = 0, not_found = 0, temporary = 0;
        std::uint64_t deadline_expired = 0;  // completed by our timeout * tries deadline
        std::uint64_t in_flight = 0;         // gauge: queries still waiting for an answer
    };
    Stats stats() const;

    class Impl;

private:
    struct Hosts;
    std::shared_ptr<Impl> impl_;
    std::shared_ptr<const Hosts> hosts_;
};

}  // namespace mta::dns
