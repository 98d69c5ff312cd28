// The two implementations behind make_backend (sasl.h); internal.
#pragma once

#include "sasl/sasl.h"

namespace mta::sasl {

// smtpd_sasl_tls_security_options, with Postfix's default
// "$smtpd_sasl_security_options" (left unexpanded by a caller that kept the
// default) meaning the non-TLS options.
std::string tls_options_text(const Settings& settings);

std::shared_ptr<Backend> make_cyrus_backend(const Settings& settings, boost::asio::any_io_executor io);
std::shared_ptr<Backend> make_dovecot_backend(const Settings& settings, boost::asio::any_io_executor io);

}  // namespace mta::sasl
