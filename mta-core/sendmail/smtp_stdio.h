// sendmail -bs: an SMTP dialogue on standard input and output (Postfix's
// sendmail runs smtpd(8) stand-alone for it), for programs that submit that
// way. Each message goes to the maildrop through the postdrop helper, as
// with the command line, with the real uid as the submitter.
//
// The verbs are RFC 5321's minimum (HELO, EHLO, MAIL, RCPT, DATA, RSET,
// NOOP, QUIT, VRFY refused) with PIPELINING, 8BITMIME and SIZE; no TLS or
// AUTH (the peer is a local process). Limits: command lines of 512 octets
// (RFC 5321 4.5.3.1.4), message_size_limit, 1000 recipients per message
// (the maildrop bound is 10000), and 100 errors before hanging up, as
// Postfix's smtpd_hard_error_limit.
#pragma once

#include <sys/types.h>

#include "sendmail/local_config.h"

namespace mta::sendmail {

// The exit code: 0 after QUIT or end of input.
int smtp_on_stdio(const LocalConfig& cfg, uid_t uid);

}  // namespace mta::sendmail
