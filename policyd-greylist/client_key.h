// The client part of a greylisting triplet.
//
// network: the client's network, IPv4 /ipv4_prefix (default 24) and IPv6
// /ipv6_prefix (default 64), as postgrey does ("10.1.2.0/24").
// verified_domain_or_network (default): when Postfix reports a verified
// client_name (forward-confirmed reverse DNS, not "unknown"), the registrable
// domain of that name by the Public Suffix List ("google.com" for
// mail-wm1-f54.google.com), so a big sender retrying from another address of
// its pool matches its first attempt.
//
// Security: client_name comes from DNS that the client's owner controls, but
// Postfix only reports it when forward and reverse lookups agree, so a client
// can only claim domains it really sends from. Two shortcuts are refused and
// fall back to the network: a name that embeds the client's IPv4 address
// (dynamic pools such as dsl-10-1-2-3.isp.example, where a domain key would
// merge every subscriber of the provider), and names with characters outside
// host-name syntax.
#pragma once

#include <string>
#include <string_view>

#include "net/address.h"

struct psl_ctx_st;

namespace greylist {

enum class ClientKeyMode { network, verified_domain_or_network };

class ClientKeyer {
public:
    // Loads the newest Public Suffix List available (libpsl: the system file
    // in /usr/share/publicsuffix, else the built-in copy).
    ClientKeyer();
    ~ClientKeyer();
    ClientKeyer(const ClientKeyer&) = delete;
    ClientKeyer& operator=(const ClientKeyer&) = delete;

    // The registrable domain of a host name, or "" (public suffix, IP, bad syntax).
    std::string registrable_domain(std::string_view host) const;

    // The client key: a network "a.b.c.0/24", "2001:db8::/64", or a domain.
    std::string key(ClientKeyMode mode, const proto::net::IpAddress& address,
                    std::string_view client_name, int ipv4_prefix, int ipv6_prefix) const;

private:
    const psl_ctx_st* psl_ = nullptr;
    bool owned_ = false;
};

// The network key alone (pure; used by key()).
std::string network_key(const proto::net::IpAddress& address, int ipv4_prefix, int ipv6_prefix);

// True if the host name carries the IPv4 address's last two octets as
// adjacent numbers, the mark of a per-address (dynamic) reverse DNS name.
bool name_embeds_address(std::string_view host, const proto::net::IpAddress& address);

}  // namespace greylist
