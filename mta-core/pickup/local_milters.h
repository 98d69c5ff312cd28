// non_smtpd_milters: the milters for mail submitted locally (Postfix's
// MILTER_README, "Non-SMTP mail"). Pickup runs them on each maildrop
// message before it is queued, as an SMTP session from localhost would
// meet them: CONNECT (localhost [127.0.0.1]), HELO, MAIL, RCPT, DATA, the
// header and body, end of message. As in Postfix, a milter cannot refuse a
// recipient of local mail (its RCPT reject or tempfail is logged and
// ignored); it can change the message and the envelope, quarantine,
// discard, or reject or tempfail the whole message.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>

#include "milter/milter_config.h"
#include "queue/queue_file.h"

namespace mta::pickup {

struct LocalVerdict {
    enum class Kind { queue, hold, discard, reject, tempfail } kind = Kind::queue;
    std::string reply;  // reject, tempfail: the milter's reply
    std::string hold_reason;
};

// Runs the chain on the message; the envelope and content are edited in place.
boost::asio::awaitable<LocalVerdict> run_local_milters(std::shared_ptr<const milter::MilterSettings> settings,
                                                       queue::Envelope& envelope, std::string& content,
                                                       std::string myhostname);

}  // namespace mta::pickup
