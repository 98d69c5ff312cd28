// SMTP AUTH, server side (RFC 4954), as Postfix's smtpd does it: one
// Backend per configuration (smtpd_sasl_type), one Authentication per AUTH
// exchange. The session owns the SMTP side (334 lines, base64, the
// smtpd_sasl_response_limit, the 235/535/454 replies, logs and rate limits);
// this module only answers "what next" for decoded client data.
//
//   cyrus    libsasl2 reading the application's SASL config (smtpd_sasl_path,
//            default "smtpd", so smtpd.conf: pwcheck_method, mech_list, ...)
//            from cyrus_sasl_config_path. libsasl2 blocks and is not safe to
//            call from several threads: every sasl_* call runs on one worker
//            thread of its own and the caller resumes on its own executor.
//   dovecot  Dovecot's authentication protocol (client side, version 1.x) on
//            the unix socket smtpd_sasl_path: one connection per backend,
//            requests multiplexed by id, reconnected when lost.
//
// Security: passwords never leave this module except towards the backend;
// Step::reason and every log line carry no client data other than names.
// Limits: libsasl2 is initialised once per process (its configuration is
// global), so a change of smtpd_sasl_path or cyrus_sasl_config_path needs a
// restart, as a change of the smtpd.conf file does; make_backend says so.
// A libsasl2 call that never returns (a stuck saslauthd) holds the one
// worker: every Cyrus AUTH then ends in a temporary failure after the
// timeout until it returns. The Dovecot socket is connected late (as
// Postfix): a missing socket is a temporary failure at AUTH time and an
// empty mechanism list (no AUTH in EHLO) until a handshake succeeds, not an
// error of make_backend.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mta::sasl {

struct Step {
    enum class Status { challenge, success, failure, temporary } status;
    std::string challenge;  // raw bytes to send (the session base64-encodes them into "334 ...")
    std::string username;   // on success: the authenticated name (for logs, sasl_username, Received)
    std::string reason;     // on failure/temporary: for logs only, never contains the password
};

struct Peer {
    std::string client_address, client_port, server_address, server_port;
    bool tls = false;
};

// One per AUTH exchange in one SMTP session. Calls are sequential: start,
// then next after each challenge, until a step that is not a challenge.
class Authentication {
public:
    virtual ~Authentication() = default;
    // initial_response: decoded AUTH argument if given ("=" means empty), nullopt if absent.
    virtual boost::asio::awaitable<Step> start(std::string mechanism,
                                               std::optional<std::string> initial_response) = 0;
    virtual boost::asio::awaitable<Step> next(std::string response) = 0;  // decoded client response
};

struct Settings {
    std::string type;                 // "cyrus" or "dovecot"
    std::string path;                 // smtpd_sasl_path: cyrus application name ("smtpd") or dovecot socket path
    std::string service = "smtp";     // smtpd_sasl_service
    std::string local_domain;         // smtpd_sasl_local_domain (realm)
    std::string security_options = "noanonymous";                       // smtpd_sasl_security_options
    std::string tls_security_options = "$smtpd_sasl_security_options";  // already expanded by the caller
                                      // (this default, left as it is, means security_options)
    std::string cyrus_config_path;    // cyrus_sasl_config_path (empty: libsasl2's default, /etc/postfix/sasl etc. as Postfix)
    std::chrono::milliseconds timeout{30000};
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::vector<std::string> mechanisms(bool tls) const = 0;  // what EHLO advertises (filtered by the security options)
    virtual std::unique_ptr<Authentication> begin(const Peer& peer) = 0;
};

// Throws std::runtime_error naming what is wrong (library init, unreadable config, socket path).
std::shared_ptr<Backend> make_backend(const Settings& settings, boost::asio::any_io_executor io);

// Strict RFC 4648 base64 for the session (no whitespace, correct padding); nullopt on bad input.
std::string base64_encode(std::string_view raw);
std::optional<std::string> base64_decode(std::string_view text);

// Postfix's smtpd_sasl_security_options words (xsasl_cyrus_security.c and
// xsasl_dovecot_server.c): comma or space separated, case-insensitive.
// Throws std::runtime_error naming an unknown word.
struct SecurityOptions {
    bool noplaintext = false, noactive = false, nodictionary = false, noanonymous = false,
         forward_secrecy = false, mutual_auth = false;
};
SecurityOptions parse_security_options(std::string_view text);

}  // namespace mta::sasl
