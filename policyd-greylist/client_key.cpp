// Client keys; see client_key.h.
#include "client_key.h"

#include <libpsl.h>

#include <vector>

#include "sender.h"

namespace greylist {

ClientKeyer::ClientKeyer() {
    psl_ = psl_latest(nullptr);
    owned_ = psl_ != nullptr;
    if (!psl_) psl_ = psl_builtin();
}

ClientKeyer::~ClientKeyer() {
    if (owned_) psl_free(const_cast<psl_ctx_t*>(psl_));
}

std::string ClientKeyer::registrable_domain(std::string_view host) const {
    if (!psl_ || host.empty() || host.size() > 253) return {};
    // Host-name syntax only (RFC 1123 letters, digits, '-', '.'); '_' is
    // tolerated because Postfix accepts it in client names.
    for (char c : host) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_';
        if (!ok) return {};
    }
    std::string lowered = lower_ascii(host);
    if (lowered.back() == '.') lowered.pop_back();
    const char* domain = psl_registrable_domain(psl_, lowered.c_str());
    if (!domain) return {};
    return std::string(domain);
}

std::string network_key(const proto::net::IpAddress& address, int ipv4_prefix, int ipv6_prefix) {
    int prefix = address.v6 ? ipv6_prefix : ipv4_prefix;
    return address.masked(prefix).to_string() + "/" + std::to_string(prefix);
}

bool name_embeds_address(std::string_view host, const proto::net::IpAddress& address) {
    if (address.v6) return false;
    // Collect the decimal numbers of the name, in order.
    std::vector<int> numbers;
    for (std::size_t i = 0; i < host.size();) {
        if (host[i] < '0' || host[i] > '9') {
            ++i;
            continue;
        }
        int value = 0;
        std::size_t start = i;
        while (i < host.size() && host[i] >= '0' && host[i] <= '9') {
            if (i - start < 4) value = value * 10 + (host[i] - '0');
            ++i;
        }
        numbers.push_back(i - start <= 3 ? value : -1);
    }
    int c = address.bytes[2], d = address.bytes[3];
    for (std::size_t i = 0; i + 1 < numbers.size(); ++i) {
        if ((numbers[i] == c && numbers[i + 1] == d) || (numbers[i] == d && numbers[i + 1] == c))
            return true;
    }
    return false;
}

std::string ClientKeyer::key(ClientKeyMode mode, const proto::net::IpAddress& address,
                             std::string_view client_name, int ipv4_prefix,
                             int ipv6_prefix) const {
    if (mode == ClientKeyMode::verified_domain_or_network && !client_name.empty() &&
        client_name != "unknown" && !name_embeds_address(client_name, address)) {
        std::string domain = registrable_domain(client_name);
        if (!domain.empty()) return domain;
    }
    return network_key(address, ipv4_prefix, ipv6_prefix);
}

}  // namespace greylist
