// The delivery command (LDA): `delivery-maildir deliver`, for Postfix's
// mailbox_command and pipe(8). Reads one message on standard input and
// delivers it to the recipients named on the command line.
//
//   delivery-maildir deliver [--config FILE] [-f SENDER] [-a RECIPIENT]... [-d USER]
//                            [--] [RECIPIENT]...
//
// -f/-a/-d are dovecot-lda's flags, so a mailbox_command line migrates by
// changing the program name; recipients may also follow, as pipe(8) passes
// ${recipient}. Without any, $RECIPIENT (set by Postfix's
// local(8)) is used; without -f, $SENDER.
//
// Exit status (sysexits.h, which Postfix maps to retry or bounce):
// 0 delivered, 64 usage, 65 bad address or too big, 67 unknown user,
// 68 domain not served, 73 over quota, 75 temporary (including any
// configuration error: a broken config must defer mail, never bounce it).
// With several recipients the exit status is the worst one, and Postfix
// applies it to all: use transport_destination_recipient_limit = 1.
//
// Input: a leading mbox "From " line is removed, CRLF becomes LF, and the
// trace headers Postfix may have prepended (Return-Path, and a Delivered-To
// equal to ours) are not duplicated. Limit: message_size_limit bytes.
#pragma once

#include <string>
#include <string_view>

#include "delivery.h"

namespace maildir {

// Normalise the message in place and return the trace headers to prepend.
std::string prepare_lda_message(std::string& message, const Envelope& envelope);

// argv[0] is "deliver".
int lda_main(int argc, char** argv);

}  // namespace maildir
