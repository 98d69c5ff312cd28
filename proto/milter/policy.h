// From milter to the policy protocol and back, with no I/O: the filter side
// of a milter session turned into the policy requests a Decider already
// understands (Postfix's SMTPD_POLICY_README attributes), and the decider's
// access(5) action turned into milter replies.
//
// What the MTA tells a filter, and where (libmilter's smfi_getsymval() and
// Postfix's MILTER_README list the macros):
//   SMFIC_CONNECT  hostname ("[addr]" when the name is not verified), address, port
//   SMFIC_HELO     the HELO/EHLO argument
//   SMFIC_MAIL     "<sender>" and ESMTP parameters (SIZE=)
//   SMFIC_RCPT     "<recipient>"
//   SMFIC_BODYEOB  end of message; {i} (the queue id) is defined here at the latest
// Macros a filter may ask for with a symbol list in its OPTNEG reply
// (SMFIF_SETSYMLIST); neither Postfix nor Sendmail sends {client_addr},
// {client_name} or {client_ptr} by default, so the connect packet is the
// source of truth and macros only add to it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "milter/codec.h"
#include "policy/action.h"
#include "policy/request.h"

namespace proto::milter {

// The protocol stages that become policy requests.
enum class Stage { connect, helo, mail, rcpt, end_of_message };
std::string_view protocol_state(Stage stage);  // "CONNECT", ..., "END-OF-MESSAGE"

// What a policy filter asks for in negotiation: the actions it may need
// (SMFIF_ADDHDRS for PREPEND, SMFIF_QUARANTINE for HOLD), the steps it does
// not need (unknown commands, DATA) and the ones that need no reply (headers,
// end of headers, body: read only to count the message size), each only if
// the MTA offers it; and the macros above, if the MTA takes symbol lists.
// nullopt with error when the offer cannot work (version below 2).
struct Negotiated {
    std::optional<OptionNegotiation> reply;
    std::string error;
};
Negotiated negotiate_policy_filter(const OptionNegotiation& offer);

// Reply text as it is safe to hand to an MTA: printable ASCII only (CR, LF
// and other controls become spaces, so no reply can be split into two),
// at most kMaxReplyText bytes, then '%' doubled (Sendmail uses the text as a
// format string; Postfix's milter8.c undoes the doubling).
// RFC 5321 4.5.3.1.5: a reply line is at most 512 octets with the code and
// CRLF; "NNN X.Y.Z " takes 10 of them, leaving room to spare.
constexpr std::size_t kMaxReplyText = 450;
std::string safe_reply_text(std::string_view text);

// "NNN X.Y.Z text": code of the class of `cls` ('4' or '5'); an enhanced
// status code at the start of text is kept if it has that class, otherwise
// replaced (libmilter's smfi_setreply refuses a mismatch and Postfix's
// milter8.c takes such a reply as malformed).
ReplyCode make_reply_code(std::string_view code, std::string_view text);

// What to answer at a stage, and what to remember for end of message.
struct StageVerdict {
    Reply reply = Continue{};
    std::optional<InsertHeader> prepend;   // PREPEND: insert at the top at end of message
    std::optional<std::string> quarantine;  // HOLD: quarantine at end of message, with this reason
    bool unsupported = false;               // an action the milter protocol cannot carry (logged)
};
StageVerdict map_action(const policy::Action& action);

// The state of one milter connection on the filter side: macros, connection
// and message facts, and the policy request for each stage.
class Session {
public:
    // Macros arrive before the command they belong to (SMFIC_MACRO).
    // Message macros are forgotten at abort and end of message.
    void define(const Macros& macros);
    void connect(const Connect& c);
    void helo(const Helo& h);
    // A new message begins; instance names it for deciders that group a
    // message's requests (Postfix's "instance" attribute).
    void mail(const Mail& m, std::string instance);
    void rcpt(const Rcpt& r);
    // Counting the message for END-OF-MESSAGE's size.
    void header(const Header& h, bool leading_space);
    void end_of_headers();
    void body(std::size_t bytes);
    // The recipient of the last RCPT was accepted by the filter (it counts
    // in END-OF-MESSAGE's recipient_count).
    void recipient_accepted() { ++accepted_recipients_; }
    // SMFIC_ABORT, or end of message answered: the message is over.
    void end_message();

    bool in_message() const { return in_message_; }
    // A macro by name, with or without braces ("i", "{i}", "auth_authen").
    std::string_view macro(std::string_view name) const;
    // The policy request for a stage, from what is known now.
    policy::Request request(Stage stage) const;

private:
    void forget_message();  // the facts of a message, not its macros

    std::map<std::string, std::string, std::less<>> macros_;  // names without braces
    std::map<std::string, std::string, std::less<>> message_macros_;
    std::string client_address_;
    std::string client_name_ = "unknown";
    std::string client_port_;
    std::string helo_;
    std::string sender_;
    std::string recipient_;
    std::string instance_;
    std::string declared_size_;
    std::uint64_t size_ = 0;
    std::size_t accepted_recipients_ = 0;
    bool in_message_ = false;
};

// "<a@b>" -> "a@b", "<>" -> "" (SMTP paths as the MTA passes them).
std::string strip_angles(std::string_view address);

}  // namespace proto::milter
