// The settings of one smtpd listener (main.cf plus its master.cf -o
// overrides), read once per configuration into typed values, so a session
// never parses text. Limits cite postconf(5).
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "milter/milter_config.h"
#include "net/address.h"
#include "restrictions/restrictions.h"

namespace mta::config {
class Settings;
}
namespace mta::dns {
class AresResolver;
}
namespace mta::sasl {
class Backend;
}

namespace mta::smtpd {

enum class BareNewline { normalize, reject, reject_and_disconnect };
enum class TlsLevel { none, may, encrypt };

struct SmtpdConfig {
    std::string service;  // master.cf service name, for logs ("smtp", "submission")
    std::string myhostname;
    std::string banner;
    bool helo_required = false;
    bool delay_reject = true;
    bool disable_vrfy = false;
    std::size_t message_size_limit = 10240000;
    std::size_t line_length_limit = 2048;
    std::size_t header_size_limit = 102400;
    std::size_t hopcount_limit = 50;
    std::size_t recipient_limit = 1000;
    std::chrono::seconds timeout{300};
    bool per_record_deadline = true;
    std::size_t junk_command_limit = 100;
    std::size_t soft_error_limit = 10;
    std::size_t hard_error_limit = 20;
    std::chrono::seconds error_sleep_time{1};
    BareNewline bare_newline = BareNewline::normalize;
    proto::net::CidrList bare_newline_exclusions;
    bool forbid_unauth_pipelining = true;
    bool smtputf8 = true;  // smtputf8_enable: SMTPUTF8 offered, UTF-8 addresses parsed
    std::size_t max_connections = 1000;  // global session cap per listener

    // anvil(8) limits (0: none), per anvil_rate_time_unit.
    std::size_t client_connection_count_limit = 50;
    std::size_t client_connection_rate_limit = 0;
    std::size_t client_message_rate_limit = 0;
    std::size_t client_recipient_rate_limit = 0;
    std::size_t client_auth_rate_limit = 0;
    std::size_t client_new_tls_session_rate_limit = 0;
    std::chrono::seconds anvil_rate_time_unit{60};
    proto::net::CidrList client_event_limit_exceptions;

    // TLS (RFC 3207)
    TlsLevel tls_level = TlsLevel::none;
    bool wrappermode = false;
    bool tls_auth_only = false;
    bool tls_received_header = false;
    int tls_loglevel = 0;
    std::shared_ptr<boost::asio::ssl::context> tls;  // null without a certificate

    // AUTH (RFC 4954) through Cyrus SASL or Dovecot; null when disabled.
    bool sasl_enable = false;
    std::shared_ptr<sasl::Backend> sasl;
    std::size_t sasl_response_limit = 12288;  // smtpd_sasl_response_limit

    // DNS for the client name (smtpd_peername_lookup) and the DNS
    // restrictions; env.resolver points at it.
    std::shared_ptr<dns::AresResolver> resolver;
    bool peername_lookup = true;

    // Restrictions per stage, and the facts they need.
    restrictions::List client, helo, sender, relay, recipient, data, end_of_data;
    // smtpd_reject_unlisted_recipient: applied after the lists, even after a permit.
    restrictions::List unlisted_recipient;
    restrictions::Environment env;
    // virtual_alias_maps and, for local domains, alias_maps: one recipient to
    // the addresses it stands for (itself when no alias applies).
    std::function<std::vector<std::string>(const std::string&)> expand;
    std::string compatibility_level;
    std::string myorigin;

    // smtpd_milters and the milter_* settings; null or empty: no milters.
    std::shared_ptr<const milter::MilterSettings> milters;
};

}  // namespace mta::smtpd
