// What pickup makes of one maildrop message: the queue envelope and the
// message as stored, as Postfix's cleanup does for pickup(8) mail. No I/O.
//
// - Addresses are checked as SMTP addresses (RFC 5321 4.1.2, with a bare
//   local part allowed), then a bare local part gets @$myorigin and, with
//   append_dot_mydomain = yes, a domain without a dot gets .$mydomain
//   (postconf(5) append_at_myorigin, append_dot_mydomain).
// - Recipients then go through alias expansion, as SMTP mail does.
// - The header gets "Received: by $myhostname (mta-core, from userid N)"
//   and, when missing, Message-ID:, Date: and From: (RFC 5322 3.6: a
//   message must have From: and Date:; Postfix's cleanup adds them to
//   local submissions).
#pragma once

#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "queue/maildrop_file.h"
#include "queue/queue_file.h"

namespace mta::pickup {

struct MessageSettings {
    std::string myhostname = "localhost.localdomain";
    std::string myorigin = "localhost.localdomain";
    std::string mydomain = "localdomain";
    bool append_dot_mydomain = false;
    // Alias expansion (virtual_alias_maps, alias_maps); may be empty.
    std::function<std::vector<std::string>(const std::string&)> expand;
};

struct Queued {
    queue::Envelope envelope;
    std::string content;
};

// nullopt and error set when an address is not acceptable.
std::optional<Queued> make_queued(const queue::MaildropMessage& message, uid_t uid, const std::string& id,
                                  std::time_t now, const MessageSettings& settings, std::string* error);

// The address as it will be queued (checked, then qualified); nullopt if
// its syntax is bad. Empty stays empty (the null sender).
std::optional<std::string> qualify(const std::string& address, const MessageSettings& settings);

}  // namespace mta::pickup
