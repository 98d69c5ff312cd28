// From a recipient address to a message on disk: mailbox mapping (system
// users or virtual mailboxes), then the Maildir write as the mailbox owner.
// Shared by the LMTP server (on its worker pool) and the deliver command.
//
// resolve() and deliver() block (getpwnam, file system): never call them on
// the I/O thread. In system mode, or with virtual_user set, the file work of
// one delivery runs with that user's file-system uid and gid (setfsuid(2),
// which is per thread on Linux), so permissions are the kernel's to check and
// a user's symlinks cannot redirect root's writes.
//
// Outcome -> reply and exit status mapping lives here, once:
//   delivered        250 2.0.0  / EX_OK (0)
//   unknown user     550 5.1.1  / EX_NOUSER (67)
//   domain not ours  550 5.1.2  / EX_NOHOST (68)
//   unsafe address   550 5.1.3  / EX_DATAERR (65)
//   over quota       552 5.2.2  / EX_CANTCREAT (73)
//   too big          552 5.3.4  / EX_DATAERR (65)
//   anything else    451 4.3.0 (452 4.3.1 for a full disk) / EX_TEMPFAIL (75)
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>

#include "settings.h"
#include "smtp/address.h"

namespace maildir {

enum class Status { delivered, unknown_user, unknown_domain, bad_address, over_quota, too_big, temp_fail };

std::string_view status_name(Status s);

struct Target {
    std::string maildir;  // root Maildir
    std::string folder;   // ".ext" when the address has an extension, else ""
    std::string mailbox;  // for logs: "user" or "user@domain"
    uid_t uid = 0;
    gid_t gid = 0;
    bool switch_ids = false;
    std::string create_below;  // virtual_base in virtual mode
};

struct Resolution {
    Status status = Status::temp_fail;  // delivered = found
    Target target;
    std::string detail;
};

struct Outcome {
    Status status = Status::temp_fail;
    std::string detail;  // human text for replies/stderr (no message content)
    std::string file;    // delivered file
    int error_number = 0;
};

// Map a recipient to its Maildir.
Resolution resolve(const State& state, const proto::smtp::Address& recipient);

struct Envelope {
    std::string sender;     // "" = null sender
    std::string recipient;  // as given, for Delivered-To:
};

// The lines delivery prepends: Return-Path and Delivered-To.
std::string trace_headers(const Envelope& envelope);

// Write the message (LF line endings) into the target's Maildir, after
// trace_headers(envelope).
Outcome deliver(const State& state, const Target& target, const Envelope& envelope,
                std::string_view message);
// The same with the prepended lines given (the LDA computes its own).
Outcome deliver_prepared(const State& state, const Target& target, std::string_view prefix,
                         std::string_view message);

struct SmtpReply {
    int code;
    std::string_view enhanced;
    std::string text;
};
SmtpReply to_reply(const Outcome& outcome);
int to_exit_code(Status status);

}  // namespace maildir
