// master.cf reader (master(5)). See config.h.
#include <set>

#include "config.h"
#include "logical_lines.h"

namespace mta::config {

namespace {

constexpr std::string_view blanks = " \t\r\n";

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

}  // namespace

std::vector<MasterEntry> parse_master_cf(std::string_view text, const std::string& file) {
    std::vector<MasterEntry> out;
    std::set<std::pair<std::string, std::string>> seen;
    for (auto& ll : detail::logical_lines(text, file, nullptr)) {
        std::string where = file + ", line " + std::to_string(ll.line) + ": ";
        auto tokens = detail::split_quoted(ll.text, blanks);
        if (tokens.size() < 8)
            throw ConfigError(where + "expected at least 8 fields (service type private unpriv "
                                      "chroot wakeup maxproc command), got " +
                              std::to_string(tokens.size()));
        MasterEntry e;
        e.file = file;
        e.line = ll.line;
        e.service = tokens[0];
        e.type = tokens[1];
        e.private_ = tokens[2];
        e.unpriv = tokens[3];
        e.chroot = tokens[4];
        e.wakeup = tokens[5];
        e.maxproc = tokens[6];
        e.command = tokens[7];
        std::string svc = where + "service " + e.service + ": ";
        auto bad = [&](std::string_view field, std::string_view value) {
            return ConfigError(svc + "field " + std::string(field) + ": bad value: \"" +
                               std::string(value) + "\"");
        };
        static const std::set<std::string, std::less<>> types{"inet", "unix", "unix-dgram",
                                                              "fifo", "pass"};
        if (!types.contains(e.type)) throw bad("type", e.type);
        for (auto [field, value] : {std::pair<std::string_view, const std::string*>{"private", &e.private_},
                                    {"unpriv", &e.unpriv},
                                    {"chroot", &e.chroot}}) {
            if (*value != "y" && *value != "n" && *value != "-") throw bad(field, *value);
        }
        if (e.wakeup != "-") {
            std::string_view w = e.wakeup;
            if (w.ends_with('?')) w.remove_suffix(1);
            if (!all_digits(w)) throw bad("wakeup", e.wakeup);
        }
        if (e.maxproc != "-" && !all_digits(e.maxproc)) throw bad("maxproc", e.maxproc);
        if (e.service.empty() || e.service.front() == '{') throw bad("service", e.service);
        if (!seen.emplace(e.service, e.type).second)
            throw ConfigError(svc + "duplicate service name and type: " + e.service + " " + e.type);

        bool options = true;  // getopt stops at the first non-option argument
        for (std::size_t i = 8; i < tokens.size(); ++i) {
            std::string tok = tokens[i];
            if (tok.front() == '{') {
                std::string stripped;
                if (!detail::strip_braces(tok, stripped))
                    throw ConfigError(svc + "unbalanced '{' or text after '}': " + tok);
                options = false;
                e.args.push_back(std::move(stripped));
                continue;
            }
            if (options && tok.starts_with("-o")) {
                std::string arg;
                if (tok.size() > 2) {
                    arg = tok.substr(2);
                } else if (i + 1 < tokens.size()) {
                    arg = tokens[++i];
                } else {
                    throw ConfigError(svc + "-o without name=value");
                }
                if (arg.front() == '{') {
                    std::string stripped;
                    if (!detail::strip_braces(arg, stripped))
                        throw ConfigError(svc + "-o: unbalanced '{' or text after '}': " + arg);
                    arg = std::move(stripped);
                }
                auto nv = split_nameval(arg);
                if (!nv || nv->first.find_first_of(blanks) != std::string::npos)
                    throw ConfigError(svc + "-o: expected name=value, got \"" + arg + "\"");
                e.overrides.push_back(std::move(*nv));
                continue;
            }
            if (options && tok.front() != '-') options = false;
            e.args.push_back(std::move(tok));
        }
        out.push_back(std::move(e));
    }
    return out;
}

}  // namespace mta::config
