// SMTP AUTH when sending to a relayhost (Postfix's SASL_README, "Enabling
// SASL authentication in the Postfix SMTP client"): the credentials from
// smtp_sasl_password_maps, smtp_sasl_security_options /
// smtp_sasl_tls_security_options, and smtp_sasl_mechanism_filter. The
// exchange itself is libsasl2's (sasl_client.h). Passwords are never
// logged: only the mechanism and the user name are.
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

// Cyrus SASL's security properties by Postfix's names.
struct SaslSecurity {
    bool noplaintext = true, noanonymous = true;
    bool nodictionary = false, noactive = false, mutual_auth = false;
};
// "noplaintext, noanonymous, nodictionary, noactive, mutual_auth".
SaslSecurity parse_sasl_security(std::string_view options);

// The server's mechanisms (EHLO "AUTH ...") that smtp_sasl_mechanism_filter
// lets through (empty filter: all), space-separated for libsasl2.
std::string filter_mechanisms(const std::vector<std::string>& offered, const std::vector<std::string>& filter);

}  // namespace mta::delivery
