// sendmail's exit codes: sysexits(3), as Postfix's sendmail and postdrop
// return them, so cron, mail(1) and PHP's mail() read them as they expect.
#pragma once

namespace mta::sendmail::exit_code {
constexpr int ok = 0;
constexpr int usage = 64;        // EX_USAGE: bad command line
constexpr int data_error = 65;   // EX_DATAERR: bad input (too big, malformed)
constexpr int unavailable = 69;  // EX_UNAVAILABLE
constexpr int software = 70;     // EX_SOFTWARE: internal error
constexpr int os_file = 72;      // EX_OSFILE: configuration missing or unreadable
constexpr int cant_create = 73;  // EX_CANTCREAT: cannot write the maildrop file
constexpr int temp_fail = 75;    // EX_TEMPFAIL: try again later
constexpr int no_perm = 77;      // EX_NOPERM: not allowed to submit
}  // namespace mta::sendmail::exit_code
