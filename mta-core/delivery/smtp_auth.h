// SMTP AUTH when sending to a relayhost (Postfix's SASL_README, "Enabling
// SASL authentication in the Postfix SMTP client"): the credentials from
// smtp_sasl_password_maps, and the choice of mechanism under
// smtp_sasl_security_options / smtp_sasl_tls_security_options and
// smtp_sasl_mechanism_filter.
//
// PLAIN (RFC 4616) and LOGIN are done here with the base64 helper of the
// server side, not with libsasl2's client: those two need no state beyond
// one exchange, and libsasl2's client callbacks would block the event loop
// on plugin work we do not need. Both are plaintext mechanisms, so with the
// default "noplaintext" they are refused; Postfix's advice for a relayhost
// over TLS is smtp_sasl_tls_security_options = noanonymous. Passwords are
// never logged: only the mechanism and the user name are.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mta::delivery {

struct SaslCredentials {
    std::string user, password;
};

// A smtp_sasl_password_maps value "user:password" (the password may hold ':').
std::optional<SaslCredentials> parse_credentials(std::string_view value);

struct SaslSecurity {
    bool noplaintext = true, noanonymous = true;
};
// "noplaintext, noanonymous" and the rest of Cyrus's names (nodictionary,
// noactive, mutual_auth: accepted, and meaningless for PLAIN and LOGIN).
SaslSecurity parse_sasl_security(std::string_view options);

// The first mechanism we can do among the server's (EHLO "AUTH ..."), after
// the filter (empty: all) and the security options. nullopt: none.
std::optional<std::string> choose_mechanism(const std::vector<std::string>& offered,
                                            const std::vector<std::string>& filter, const SaslSecurity& security);

// RFC 4616: authzid NUL authcid NUL password, base64 (the initial response).
std::string plain_response(const SaslCredentials& c);

}  // namespace mta::delivery
