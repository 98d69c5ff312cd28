// Mail log lines in Postfix's maillog format and syslog layout, so existing
// tools (pflogsumm, fail2ban filters, grep habits) read mta-core's log:
//
//   Mon DD HH:MM:SS HOST NAME/SERVICE[PID]: QUEUEID: client=...
//
// NAME is syslog_name (default "postfix"), SERVICE the part ("smtpd",
// "qmgr", "lmtp", "smtp", "cleanup"). Lines go to maillog_file (opened for
// append) or to stderr. With --log-format json each line is one JSON object
// (proto/daemon/log.h) with the same text.
//
// Security: text that came from a client (HELO names, addresses, SASL names,
// replies of other servers) goes through printable() first, as Postfix does,
// so no input can forge a line or drive a terminal.
#pragma once

#include <string>
#include <string_view>

namespace mta::maillog {

// Safe to call again on reload. Throws std::system_error if the file cannot
// be opened.
void configure(std::string syslog_name, std::string hostname, std::string maillog_file);

// One line of the given service ("smtpd", "qmgr", ...).
void line(std::string_view service, std::string_view text);

// Postfix's printable(): every byte that is not printable ASCII becomes '?'.
std::string printable(std::string_view text);

}  // namespace mta::maillog
