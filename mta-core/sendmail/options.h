// The sendmail command line, as Postfix's sendmail(1) reads it (itself
// Sendmail's): what to do (-bm, -bp, -bi, -q, -bs), the envelope (-f, -F,
// -t, -i, recipients) and the options accepted for compatibility. The same
// program answers as mailq (-bp) and newaliases (-bi) by argv[0]. No I/O.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace mta::sendmail {

enum class Mode { deliver, list_queue, rebuild_aliases, flush_queue, smtp };

struct Options {
    Mode mode = Mode::deliver;
    std::optional<std::string> sender;  // -f / -r; "" or "<>": the null sender
    std::string fullname;               // -F
    bool extract_recipients = false;    // -t
    bool dot_ends_input = true;         // cleared by -i / -oi
    std::string config;                 // -C
    std::vector<std::string> recipients;
    std::vector<std::string> notes;     // options accepted and ignored, for -v
    bool verbose = false;
};

struct ParsedOptions {
    std::optional<Options> options;
    std::string error;  // usage error, said with the usage line
};

// argv0 may be a path; its last part picks mailq or newaliases (also as
// mta-core-mailq, mta-core-newaliases).
ParsedOptions parse_options(const std::string& argv0, const std::vector<std::string>& args);

constexpr const char* kUsage =
    "usage: sendmail [-t] [-i] [-f sender] [-F fullname] [-C config] [-bm|-bp|-bi|-bs] [-q] "
    "[-B type] [-N dsn] [-R ret] [-V envid] [-X log] [-L label] [-o option] [-v] [recipient ...]";

}  // namespace mta::sendmail
