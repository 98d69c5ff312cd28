// The SMTP client's side of AUTH through Cyrus SASL's libsasl2 client, as
// Postfix's xsasl_cyrus_client.c uses it (read, not copied): the
// credentials from smtp_sasl_password_maps handed over in callbacks, the
// security properties from smtp_sasl_security_options (noplaintext,
// noanonymous, nodictionary, noactive, mutual_auth) with no security layer
// (max_ssf 1, as Postfix), and the mechanism chosen by the library among
// those the server offers after smtp_sasl_mechanism_filter. The mechanisms
// are libsasl2's plugins (Debian's libsasl2-modules: PLAIN, LOGIN,
// CRAM-MD5, DIGEST-MD5, SCRAM...).
//
// Threads: the client mechanisms compute locally and never block, so the
// calls run on the delivery's own thread; libsasl2's client side is
// initialised once, at first use. No password is ever logged.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "delivery/smtp_auth.h"

namespace mta::delivery {

class SaslClient {
public:
    // server_name: the server's host name (for mechanisms that use it).
    SaslClient(const std::string& server_name, const SaslCredentials& credentials, const SaslSecurity& security);
    ~SaslClient();
    SaslClient(const SaslClient&) = delete;
    SaslClient& operator=(const SaslClient&) = delete;

    struct Start {
        std::string mechanism;                 // empty: none could be used (error says why)
        std::optional<std::string> response;   // the initial response, base64 ("" is sent as "=")
        std::string error;
    };
    // mechanisms: the server's list after the filter, space-separated.
    Start start(const std::string& mechanisms);
    // A 334 challenge (base64) in, the response (base64) out; nullopt and
    // error set when the exchange cannot go on.
    std::optional<std::string> step(std::string_view challenge, std::string& error);

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace mta::delivery
