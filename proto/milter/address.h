// Milter socket addresses in libmilter's notation (smfi_setconn(3)), the one
// Sendmail's INPUT_MAIL_FILTER S= equate uses:
//   inet:PORT@HOST    inet:PORT (any IPv4 address)
//   inet6:PORT@HOST   inet6:PORT@[HOST]   inet6:PORT (any IPv6 address)
//   unix:/path        local:/path         /path
// Postfix names the same sockets inet:HOST:PORT and unix:/path on its side
// (smtpd_milters); Endpoint::to_string() prints that form.
#pragma once

#include <string_view>

#include "net/address.h"

namespace proto::milter {

net::EndpointParse parse_address(std::string_view text);

}  // namespace proto::milter
