// Dovecot's authentication protocol, client side (version 1.x, as spoken on
// the auth-client socket; see Dovecot's doc "Authentication Protocol" and
// Postfix's xsasl_dovecot_server.c): the codec only, no I/O, no Boost, so it
// is fed byte by byte in tests and fuzzed.
//
// Server lines: VERSION, MECH name props..., SPID, CUID, COOKIE, DONE during
// the handshake; then per request OK/CONT/FAIL id args. Lines end with LF;
// fields are TAB separated and values TAB-escaped (\001 prefix).
//
// Limits: a line longer than max_line (Dovecot's own
// AUTH_CLIENT_MAX_LINE_LENGTH) or holding a NUL breaks the stream: the
// connection is not trusted any more and must be dropped.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace mta::sasl::dovecot {

inline constexpr std::size_t max_line = 16384;

// Mechanism properties as Dovecot names them on MECH lines.
enum Property : unsigned {
    plaintext = 1u << 0,
    active = 1u << 1,
    dictionary = 1u << 2,
    anonymous = 1u << 3,
    forward_secrecy = 1u << 4,
    mutual_auth = 1u << 5,
    private_mech = 1u << 6,
};

struct Reply {
    enum class Kind { version, mech, spid, cuid, cookie, done, ok, cont, fail, other } kind = Kind::other;
    unsigned major = 0, minor = 0;  // VERSION
    std::string mechanism;          // MECH
    unsigned properties = 0;        // MECH
    unsigned long id = 0;           // OK, CONT, FAIL
    std::string data;               // CONT: base64 challenge; OK: resp= (final server data), base64
    std::string user;               // OK, FAIL: user= (unescaped)
    std::string reason;             // FAIL: reason= (unescaped)
    bool temporary = false;         // FAIL: temp
};

// One line without its LF; nullopt if malformed (error says why).
std::optional<Reply> parse_line(std::string_view line, std::string& error);

class Parser {
public:
    // Take bytes from the socket; complete lines become replies. Returns
    // false once the stream is broken (then error() says why, for good).
    bool feed(std::string_view bytes);
    std::optional<Reply> next();
    bool broken() const { return !error_.empty(); }
    const std::string& error() const { return error_; }

private:
    std::string partial_;
    std::deque<Reply> ready_;
    std::string error_;
};

// Dovecot's str_tabescape / str_tabunescape.
std::string tab_escape(std::string_view value);
std::string tab_unescape(std::string_view value);

// Request lines (with their LF). Values are escaped here; mechanism and the
// base64 texts must already be plain tokens. peer_* may be empty (omitted).
struct AuthRequest {
    unsigned long id = 0;
    std::string mechanism;
    std::string service;
    std::string local_ip, remote_ip, local_port, remote_port;
    bool secured = false;
    std::optional<std::string> initial_response;  // base64; "" is an empty response
};
std::string handshake(unsigned long pid);  // "VERSION\t1\t2\nCPID\tpid\n"
std::string format_auth(const AuthRequest& request);
std::string format_cont(unsigned long id, std::string_view response_base64);

}  // namespace mta::sasl::dovecot
