// The client side of SMTP (RFC 5321) and LMTP (RFC 2033), for delivery:
// one message over one connection to one address, with per-recipient
// results. Used by the queue manager for mailbox_transport/virtual_transport
// (LMTP to delivery-maildir) and the smtp transport (relayhost,
// transport_maps and MX hosts, found by delivery/mx.h), and by tests as a
// real client.
//
// What goes out is what was stored: CRLF lines, dot-stuffed here (RFC 5321
// 4.5.2). Limits on what the server may send are the reply parser's
// (proto/smtp/reply.h); every step has a deadline (Postfix's smtp_*_timeout).
// EHLO features used: PIPELINING (RFC 2920), SIZE (RFC 1870: a message
// larger than the server's limit is not sent, 5.3.4), 8BITMIME (RFC 6152),
// SMTPUTF8 (RFC 6531: a message that needs it is bounced, 5.6.7, by a server
// without it), STARTTLS (RFC 3207, delivery/smtp_tls.h) and AUTH (RFC 4954,
// delivery/smtp_auth.h). After STARTTLS, anything the server sent before the
// handshake is discarded (the STARTTLS command injection defence).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "delivery/destination.h"
#include "delivery/smtp_auth.h"
#include "delivery/smtp_tls.h"
#include "net/address.h"

namespace mta::delivery {

struct Nexthop {
    proto::net::Endpoint endpoint;
    bool lmtp = false;
    std::string text;  // for logs and grouping: "127.0.0.1[127.0.0.1]:24", "example.org"
    // The smtp transport: the addresses are found by DNS (delivery/mx.h);
    // endpoint is then filled in per address.
    std::optional<Destination> destination;
};

struct Timeouts {
    std::chrono::seconds connect{30}, helo{300}, mail{300}, rcpt{300}, data_init{120},
        data_xfer{180}, data_done{600}, quit{300}, starttls{300}, sasl{300}, rset{20};
};

// How to talk to one server.
struct SessionOptions {
    std::string helo_name;
    Timeouts timeouts;
    std::string bind_address, bind_address6;  // smtp_bind_address, smtp_bind_address6
    TlsPolicy tls;                            // level none: never STARTTLS
    bool tls_skip = false;                    // "may" retried in the clear after a failed handshake
    std::string host;                         // the server's name (certificate match "hostname")
    std::string nexthop;                      // the destination domain ("nexthop", "dot-nexthop")
    std::string peer;                         // for messages: "mx.example.org[192.0.2.1]:25"
    std::optional<SaslCredentials> sasl;      // AUTH when set
    SaslSecurity sasl_security, sasl_tls_security;
    std::vector<std::string> sasl_mechanism_filter;
    std::size_t line_length_limit = 998;  // smtp_line_length_limit / lmtp_line_length_limit
};

struct RecipientResult {
    int code = 0;           // 0: not tried (the whole attempt failed)
    std::string enhanced;   // "2.0.0"
    std::string text;       // the server's reply text, for logs and bounces
};

struct Attempt {
    bool connected = false;
    // Set when the whole attempt failed (connection, greeting, MAIL, DATA):
    // every recipient without its own result shares it.
    int code = 0;
    std::string enhanced;
    std::string error;
    std::vector<RecipientResult> recipients;
    // The failure is one of the server, not of the message: Postfix's smtp(8)
    // then tries the next address (connection failure, a greeting other
    // than 220, 421, a lost connection, a TLS requirement not met).
    bool try_next = false;
    bool tls_handshake_failed = false;  // a "may" attempt to retry without TLS
    unsigned conn_use = 1;              // the how-manieth transaction on this connection
    std::string tls_log;                // "Untrusted TLS connection established to ..."
    bool dsn_offered = false;           // the server took the DSN parameters (RFC 3461)
};

// RFC 3461 parameters of a message and its recipients (decoded, as the
// queue file keeps them), passed on to a server that offers DSN.
struct DsnParameters {
    std::string ret, envid;
    std::vector<std::pair<std::string, std::string>> recipients;  // NOTIFY, ORCPT; one per recipient
};

// What the message needs from the server.
struct MessageTraits {
    std::size_t size = 0;
    bool eight_bit = false;  // 8-bit content: BODY=8BITMIME when offered
    bool smtputf8 = false;   // non-ASCII addresses or header: SMTPUTF8 required
};
// RFC 6531 3.2: a message needs SMTPUTF8 when its envelope or header has
// non-ASCII text; its body alone needs only 8BITMIME.
MessageTraits traits_of(const std::string& sender, const std::vector<std::string>& recipients,
                        std::string_view content);

// One open SMTP or LMTP session, past the greeting, EHLO, STARTTLS and AUTH:
// messages go one after another over it. The queue manager keeps sessions
// to an address between deliveries (Postfix's connection cache), after an
// RSET proved them usable.
class Session {
public:
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    // nullptr when the session could not be opened; a says why.
    static boost::asio::awaitable<std::unique_ptr<Session>> open(boost::asio::any_io_executor ex,
                                                                 const Nexthop& nexthop,
                                                                 const SessionOptions& options, Attempt& a);
    // MAIL, RCPT, DATA for one message.
    boost::asio::awaitable<Attempt> transfer(const std::string& sender, const std::vector<std::string>& recipients,
                                             const std::string& content, const DsnParameters* dsn = nullptr);
    // RSET before keeping the session (smtp_rset_timeout); false: not reusable.
    boost::asio::awaitable<bool> reset();
    boost::asio::awaitable<void> quit();
    // The last transaction ended cleanly (no 421, no lost connection).
    bool reusable() const;

private:
    Session();
    struct State;
    std::unique_ptr<State> state_;
};

// One connection to nexthop.endpoint, one message, then QUIT.
boost::asio::awaitable<Attempt> deliver(boost::asio::any_io_executor ex, const Nexthop& nexthop,
                                        const SessionOptions& options, const std::string& sender,
                                        const std::vector<std::string>& recipients,
                                        const std::string& content, const DsnParameters* dsn = nullptr);

// RFC 5321 4.5.2: a line starting with "." gets another one. Content must be
// CRLF lines (what the queue holds). A line longer than line_limit (0: no
// limit) is broken by inserting <CR><LF><SPACE>, as Postfix does for
// smtp_line_length_limit (RFC 5321 4.5.3.1.6: 998 octets before the CRLF).
std::string dot_stuff(std::string_view content, std::size_t line_limit = 0);

}  // namespace mta::delivery
