// A blocking milter client for tests: the MTA side of the protocol, built on
// the same codec (proto/milter) as the daemons' filter side, on one
// connection. It offers what Postfix 3.7 offers and reads the filter's
// replies packet by packet.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "milter/codec.h"

namespace testsupport {

class MilterConn {
public:
    MilterConn(const std::string& host, int port);
    explicit MilterConn(const std::string& unix_path);
    ~MilterConn();
    MilterConn(const MilterConn&) = delete;
    MilterConn& operator=(const MilterConn&) = delete;

    // What Postfix 3.7 offers: version 6, every action, every step.
    static proto::milter::OptionNegotiation postfix_offer();

    void send(const proto::milter::Command& command);
    void send_raw(const std::string& bytes);
    // One reply packet; nullopt when the filter closed the connection or on timeout.
    std::optional<proto::milter::Reply> read(std::chrono::milliseconds timeout = std::chrono::seconds(5));
    bool closed_by_peer(std::chrono::milliseconds timeout = std::chrono::seconds(5));

    // Negotiate; the filter's reply (nullopt if none).
    std::optional<proto::milter::OptionNegotiation> negotiate(
        const proto::milter::OptionNegotiation& offer = postfix_offer());

    // Send a command and read replies up to the final one (accept,
    // continue, reject, tempfail, reply code, discard), keeping the
    // modifications before it. final is empty when the filter closed.
    struct Answer {
        std::vector<proto::milter::Reply> edits;
        std::optional<proto::milter::Reply> final;
        bool is_continue() const;
        // The reply code text, "" if the final reply is not a reply code.
        std::string text() const;
    };
    Answer ask(const proto::milter::Command& command,
               std::chrono::milliseconds timeout = std::chrono::seconds(5));

    // A whole SMTP transaction as Postfix sends it (macros, MAIL, each RCPT,
    // headers, body, end of message). Stops at the first final refusal of
    // MAIL; each RCPT gets its own answer; eom is empty if no recipient passed.
    struct Transaction {
        Answer mail;
        std::vector<Answer> rcpts;
        std::optional<Answer> eom;
    };
    Transaction transaction(const std::string& sender, const std::vector<std::string>& recipients,
                            const std::string& queue_id = "4AB12CD");
    // Negotiate, connect and HELO from a client address.
    void open_session(const std::string& client_address = "192.0.2.1",
                      const std::string& client_name = "client.example.net",
                      const std::string& helo = "client.example.net");

private:
    // Send a command; read its answer only if the negotiated steps say one comes.
    void send_maybe_ask(const proto::milter::Command& command);

    int fd_ = -1;
    std::uint32_t steps_ = 0;  // negotiated
    std::string buffer_;
};

}  // namespace testsupport
