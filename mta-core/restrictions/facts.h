// What a session knows about a client and a transaction at one stage: the
// input of every restriction and of every policy request, in one place.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace mta::restrictions {

// Postfix's restriction lists, in the order smtpd evaluates them.
enum class Stage { client, helo, sender, relay, recipient, data, end_of_data };

struct Facts {
    std::string protocol_state;  // CONNECT, EHLO, HELO, MAIL, RCPT, DATA, END-OF-MESSAGE, VRFY
    std::string protocol_name;   // SMTP or ESMTP
    std::string client_address;
    std::string client_port;
    std::string client_name = "unknown";          // verified forward-confirmed name
    std::string reverse_client_name = "unknown";  // PTR name, unverified
    bool client_name_tempfail = false;            // the lookup failed temporarily
    std::string server_address;
    std::string server_port;
    std::string helo;
    std::string sender;     // without <>; "" for the null sender
    bool sender_known = false;  // MAIL was given
    std::string recipient;  // the one being checked at RCPT
    std::size_t recipient_count = 0;
    std::string queue_id;
    std::string instance;
    std::size_t size = 0;  // SIZE= at MAIL, the real size at END-OF-MESSAGE
    std::string sasl_method;
    std::string sasl_username;
    std::string encryption_protocol;
    std::string encryption_cipher;
    std::string encryption_keysize;
    bool illegal_pipelining = false;  // the client talked ahead where it must not
    std::string compatibility_level;
    std::string policy_context;

    // "name[address]", as Postfix logs and replies name a client.
    std::string namaddr() const { return client_name + "[" + client_address + "]"; }
};

// Side effects that access maps and policy services ask for, applied to the
// transaction by the session (PREPEND, HOLD, DISCARD, REDIRECT, FILTER, BCC).
struct Effects {
    std::vector<std::string> prepend;  // header lines, validated
    bool hold = false;
    std::string hold_reason;
    bool discard = false;
    std::string redirect;
    std::string filter;
    std::vector<std::string> bcc;
};

}  // namespace mta::restrictions
