// TLS when sending (Postfix's TLS_README, "Client-side TLS security
// levels"): the security level of one destination, the OpenSSL client
// context, and what is checked and logged after the handshake.
//
// Levels: none (never STARTTLS), may (opportunistic: STARTTLS when offered,
// unauthenticated; a failed handshake is retried in the clear, as Postfix
// does), encrypt (STARTTLS required, unauthenticated), verify (and the
// server certificate must chain to smtp_tls_CAfile/CApath and match
// smtp_tls_verify_cert_match, by default the MX host name), secure (the
// same with smtp_tls_secure_cert_match, by default the nexthop domain and
// its subdomains). dane and fingerprint are not implemented: refused at
// configuration time.
//
// Protocols: never below TLS 1.2 (as the receiving side); ">=TLSv1.3" or
// "!TLSv1.2" raise the floor. smtp_tls_mandatory_protocols applies from
// encrypt up, smtp_tls_protocols to may.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mta::delivery {

enum class TlsLevel { none, may, encrypt, verify, secure };

// "none", "may", "encrypt", "verify", "secure"; nullopt for anything else.
std::optional<TlsLevel> parse_tls_level(std::string_view text);
const char* tls_level_name(TlsLevel level);

// The policy for one destination (smtp_tls_security_level, or its
// smtp_tls_policy_maps entry).
struct TlsPolicy {
    TlsLevel level = TlsLevel::none;
    // verify/secure: match strategies and names, Postfix's syntax:
    // "hostname", "nexthop", "dot-nexthop", a name, or ".domain" (subdomains).
    std::vector<std::string> match;
    // Contexts for opportunistic (may) and mandatory (encrypt and up) use.
    std::shared_ptr<boost::asio::ssl::context> opportunistic, mandatory;
};

// smtp_tls_policy_maps value: "LEVEL [match=a:b] [protocols=...]"; the
// defaults (match strategies for verify/secure) come from base. nullopt with
// *error for an unknown level.
std::optional<TlsPolicy> parse_tls_policy(std::string_view value, const TlsPolicy& base,
                                          const std::vector<std::string>& verify_match,
                                          const std::vector<std::string>& secure_match, std::string* error);

// A client context: CA file/path for verification (the handshake itself
// never fails on verification; the level decides afterwards), the protocol
// floor from a Postfix protocols value. Throws std::runtime_error naming
// the file that cannot be read.
std::shared_ptr<boost::asio::ssl::context> make_client_context(const std::string& ca_file,
                                                               const std::string& ca_path,
                                                               const std::string& protocols);

// After the handshake: what was established and whether it satisfies the level.
struct TlsOutcome {
    bool trusted = false;   // the chain verified against the CAs
    bool verified = false;  // trusted and a name matched
    std::string summary;    // "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"
    std::string peer_cn;
};
TlsOutcome examine(SSL* ssl, const std::vector<std::string>& match, const std::string& hostname,
                   const std::string& nexthop);

}  // namespace mta::delivery
