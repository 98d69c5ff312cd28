// Policy delegation protocol: requests and their incremental parser.
//
// The wire format is Postfix's SMTPD_POLICY_README: lines "name=value" ended by
// LF (CRLF tolerated), the request ended by an empty line. The parser does no
// I/O: feed it bytes as they arrive and it says need-more, done or error.
//
// Security: every input is hostile. Limits on line length, attribute count and
// total request size are enforced before anything is stored, so a client can
// make us hold at most max_request bytes per connection.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace proto::policy {

struct Limits {
    std::size_t max_line = 8 * 1024;      // bytes, one "name=value" line incl. LF
    std::size_t max_attributes = 128;     // lines per request
    std::size_t max_request = 64 * 1024;  // bytes per request incl. terminator
};

// One request: attributes in arrival order. Names are compared exactly (Postfix
// sends them lower case). Unknown attributes are kept and ignored by deciders.
class Request {
public:
    using Attribute = std::pair<std::string, std::string>;

    // The value of the first attribute called name, empty if absent.
    std::string_view get(std::string_view name) const;
    bool has(std::string_view name) const;
    // Replace the value of name, or append it.
    void set(std::string_view name, std::string_view value);
    // Append without looking for an earlier attribute of that name.
    void append(std::string_view name, std::string_view value);
    std::span<const Attribute> attributes() const { return {slots_.data(), size_}; }
    // Forget the attributes but keep their memory: a connection's parser
    // reuses one Request, so steady-state parsing allocates nothing.
    void clear() { size_ = 0; }
    bool empty() const { return size_ == 0; }
    std::size_t size() const { return size_; }

    // Wire form, ending with the empty line. Values must not contain LF.
    std::string serialize() const;

private:
    std::vector<Attribute> slots_;
    std::size_t size_ = 0;
};

enum class ParseStatus { need_more, done, error };

class RequestParser {
public:
    explicit RequestParser(Limits limits = {}) : limits_(limits) {}

    struct Result {
        ParseStatus status;
        std::size_t consumed;  // bytes of the input used; the rest belongs to the next request
    };

    // Consume bytes. On done, request() holds it until the next feed() after
    // next(); on error, error() says why and the parser stays in error until
    // reset().
    Result feed(std::string_view data);
    const Request& request() const { return request_; }
    // Start the next request, keeping memory for reuse.
    void next() { reset(); }
    // Move the finished request out (for callers that keep it).
    Request take();
    void reset();
    const std::string& error() const { return error_; }
    // True while a request has started but is not finished (for idle handling).
    bool in_progress() const { return request_bytes_ > 0; }

private:
    Result fail(std::string why, std::size_t consumed);
    bool finish_line(std::string_view line);

    Limits limits_;
    Request request_;
    std::string line_;
    std::size_t request_bytes_ = 0;
    bool done_ = false;
    bool failed_ = false;
    std::string error_;
};

}  // namespace proto::policy
