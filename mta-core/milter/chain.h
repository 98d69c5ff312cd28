// The milters of one SMTP session, called in the listed order at each SMTP
// stage, as Postfix's smtpd_milters (MILTER_README, src/milter/milter8.c):
// one connection per milter, opened when the session starts; each milter
// sees the changes the ones before it made.
//
// Reply semantics follow libmilter (smfi_* and xxfi_* manual pages): at
// CONNECT and HELO an accept ends this milter's part in the session, later
// it ends its part in this message; a reject or tempfail at RCPT refuses
// that recipient only; a discard anywhere in a transaction drops the message
// after accepting it. A milter that cannot be reached, times out, or breaks
// the protocol gets its default_action (milter_default_action), logged and
// counted, and stands for that action for the rest of the session.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "milter/codec.h"
#include "milter/milter_config.h"

namespace proto::metrics {
class Registry;
}

namespace mta::milter {

struct Outcome {
    enum class Kind { proceed, reject, tempfail, discard, shutdown };
    Kind kind = Kind::proceed;
    std::string reply;   // "550 5.7.1 Command rejected"; empty for proceed and discard
    std::string milter;  // the milter that decided, for the log
};

// Envelope changes from the end-of-message stage, for the session to apply.
struct EnvelopeEdits {
    std::optional<std::string> sender;
    std::vector<std::string> added;
    std::vector<std::string> deleted;
    std::optional<std::string> quarantine;  // reason: the message goes on hold
};

// A macro's value in this session, or nullopt when it has none (an
// undefined macro is not sent, as Postfix does).
using MacroLookup = std::function<std::optional<std::string>(std::string_view name)>;

class Chain {
public:
    Chain(boost::asio::any_io_executor ex, std::shared_ptr<const MilterSettings> settings,
          proto::metrics::Registry* metrics, MacroLookup macros, std::string session_name);
    ~Chain();

    // Opens and negotiates every connection, then sends CONNECT.
    boost::asio::awaitable<Outcome> connect(proto::milter::Connect c);
    boost::asio::awaitable<Outcome> helo(std::string name);
    boost::asio::awaitable<Outcome> mail(proto::milter::Mail m);
    boost::asio::awaitable<Outcome> rcpt(proto::milter::Rcpt r);
    boost::asio::awaitable<Outcome> data();
    // An SMTP command mta-core does not know, as the client sent it
    // (SMFIC_UNKNOWN); a reject replaces mta-core's own 500.
    boost::asio::awaitable<Outcome> unknown(std::string line);
    // Header fields, end of header, body, end of message, for each milter
    // in turn; message (stored form) is edited in place.
    boost::asio::awaitable<Outcome> message(std::string& message, EnvelopeEdits& edits);
    // The transaction ended without a message (RSET, a refused command, a
    // new MAIL): SMFIC_ABORT to the milters that saw it began.
    boost::asio::awaitable<void> abort();
    boost::asio::awaitable<void> quit();

    struct Milter;

private:
    boost::asio::awaitable<Outcome> event(char code, proto::milter::Command command);
    boost::asio::awaitable<Outcome> message_one(Milter& m, std::string& message, EnvelopeEdits& edits);
    boost::asio::awaitable<std::string> exchange(Milter& m, char code, proto::milter::Command command,
                                                 bool content, std::optional<proto::milter::Reply>& reply);
    boost::asio::awaitable<Outcome> open(Milter& m);
    std::string macro_packet(Milter& m, char code);
    // Log (as Postfix words it), count, close: the milter stands for its
    // default action from now on, which is returned.
    Outcome fail(Milter& m, const std::string& log_line);
    Outcome default_outcome(Milter& m);
    Outcome interpret(Milter& m, char code, const proto::milter::Reply& reply, bool& misbehaved);
    void count(const Milter& m, std::string_view what);

    boost::asio::any_io_executor ex_;
    std::shared_ptr<const MilterSettings> settings_;
    proto::metrics::Registry* metrics_;
    MacroLookup macros_;
    std::string session_name_;  // "name[addr]" for logs
    std::vector<std::unique_ptr<Milter>> milters_;
    bool discard_ = false;  // a milter discarded this message
};

}  // namespace mta::milter
