// SpfChecker: the narrow interface between the policy logic and an SPF
// engine. One call evaluates check_host() (RFC 7208 section 4) for one
// identity and blocks until done, so it runs on the worker pool, never on the
// I/O thread. Implementations are thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace spf {

enum class Result { none, neutral, pass, fail, softfail, temperror, permerror };

// "Pass", "Fail", "Softfail", "Neutral", "None", "TempError", "PermError":
// the spelling of RFC 7208 section 9.1 (Received-SPF).
std::string_view result_title(Result r);
// "pass", "fail", ... "temperror", "permerror": RFC 8601 spelling.
std::string_view result_word(Result r);

enum class Identity { helo, mailfrom };

struct Query {
    Identity identity = Identity::mailfrom;
    std::string client_ip;  // as Postfix sent it; IPv4-mapped IPv6 is read as IPv4
    std::string sender;     // local@domain; for helo, postmaster@helo
    std::string domain;     // the <domain> of check_host()
    std::string helo;       // for %{h}
    std::chrono::steady_clock::time_point deadline;  // lookup budget ends here
    int void_limit = 2;                 // RFC 7208 4.6.4 void lookups allowed
    std::string receiver = "localhost";  // %{r} in explanations
    // Answer only from cached DNS data, never block: an Outcome with
    // needs_dns set means "run it again without this".
    bool cache_only = false;
    // Instead of SPF: pass when the client address is among the A/AAAA
    // addresses of domain (forward confirmation of a HELO name), else fail.
    bool forward_confirm = false;
};

struct Outcome {
    Result result = Result::none;
    std::string explanation;  // fail only: exp= text or our default, sanitised
    std::string problem;      // why, for permerror/temperror/none (logs, comments)
    bool needs_dns = false;   // cache_only and something was not cached
};

class SpfChecker {
public:
    virtual ~SpfChecker() = default;
    virtual Outcome check(const Query& query) = 0;
};

}  // namespace spf
