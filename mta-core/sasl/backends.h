// The two implementations behind make_backend (sasl.h); internal.
#pragma once

#include "sasl/sasl.h"

namespace mta::sasl {

std::shared_ptr<Backend> make_cyrus_backend(const Settings& settings, boost::asio::any_io_executor io);
std::shared_ptr<Backend> make_dovecot_backend(const Settings& settings, boost::asio::any_io_executor io);

}  // namespace mta::sasl
