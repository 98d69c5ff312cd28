// The sendmail command line; see options.h. Option letters and meanings are
// Postfix's sendmail(1).
#include "sendmail/options.h"

namespace mta::sendmail {

namespace {

std::string base_name(const std::string& path) {
    auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Options that take a value (the rest of the word or the next word).
bool takes_value(char c) {
    switch (c) {
        case 'A': case 'B': case 'C': case 'F': case 'L': case 'N': case 'O': case 'R':
        case 'V': case 'X': case 'b': case 'e': case 'f': case 'h': case 'o': case 'p': case 'r':
            return true;
        default:
            return false;
    }
}

}  // namespace

ParsedOptions parse_options(const std::string& argv0, const std::vector<std::string>& args) {
    ParsedOptions out;
    Options o;
    std::string name = base_name(argv0);
    // "mailq" or an installed variant such as "mta-core-mailq".
    if (name == "mailq" || name.ends_with("-mailq")) o.mode = Mode::list_queue;
    if (name == "newaliases" || name.ends_with("-newaliases")) o.mode = Mode::rebuild_aliases;
    std::size_t i = 0;
    for (; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--") {
            ++i;
            break;
        }
        if (a.size() < 2 || a[0] != '-') break;
        for (std::size_t k = 1; k < a.size(); ++k) {
            char c = a[k];
            std::string value;
            if (takes_value(c)) {
                if (k + 1 < a.size()) {
                    value = a.substr(k + 1);
                } else if (i + 1 < args.size()) {
                    value = args[++i];
                } else {
                    out.error = std::string("option requires an argument -- '") + c + "'";
                    return out;
                }
                k = a.size();
            }
            switch (c) {
                case 'b':
                    if (value == "m") o.mode = Mode::deliver;
                    else if (value == "p") o.mode = Mode::list_queue;
                    else if (value == "i") o.mode = Mode::rebuild_aliases;
                    else if (value == "s") o.mode = Mode::smtp;
                    else if (value == "d" || value == "D" || value == "l") {
                        out.error = "-b" + value + ": daemon mode is mta-core itself; start mta-core";
                        return out;
                    } else {
                        out.error = "-b" + value + ": unsupported mode";
                        return out;
                    }
                    break;
                case 'I': o.mode = Mode::rebuild_aliases; break;
                case 'q':
                    // -q alone flushes; -qINTERVAL (a Sendmail queue-run
                    // daemon) and -qR/-qS (selective runs) flush too, as
                    // Postfix's sendmail does for -qR site.
                    o.mode = Mode::flush_queue;
                    k = a.size();
                    break;
                case 'f':
                case 'r':
                    o.sender = value == "<>" ? std::string() : value;
                    break;
                case 'F': o.fullname = value; break;
                case 't': o.extract_recipients = true; break;
                case 'i': o.dot_ends_input = false; break;
                case 'C': o.config = value; break;
                case 'o':
                    // -oi is -i; -oXvalue options are Sendmail's
                    // configuration overrides, which Postfix ignores.
                    if (value == "i") o.dot_ends_input = false;
                    else o.notes.push_back("-o" + value + " ignored");
                    break;
                case 'B':
                    if (value != "7BIT" && value != "8BITMIME") {
                        out.error = "-B " + value + ": expected 7BIT or 8BITMIME";
                        return out;
                    }
                    o.notes.push_back("-B " + value + " noted (the message is passed as it is)");
                    break;
                case 'v': o.verbose = true; break;
                case 'N':
                case 'R':
                case 'V':
                case 'X':
                case 'L':
                case 'O':
                case 'A':
                case 'e':
                case 'h':
                case 'p':
                    o.notes.push_back(std::string("-") + c + " " + value + " ignored");
                    break;
                case 'G': case 'U': case 'm': case 'n': case 'c': case 'x':
                    o.notes.push_back(std::string("-") + c + " ignored");
                    break;
                default:
                    out.error = std::string("invalid option -- '") + c + "'";
                    return out;
            }
        }
    }
    for (; i < args.size(); ++i) o.recipients.push_back(args[i]);
    if (o.mode == Mode::deliver && o.recipients.empty() && !o.extract_recipients) {
        out.error = "Recipient addresses must be specified on the command line or via the -t option";
        return out;
    }
    out.options = std::move(o);
    return out;
}

}  // namespace mta::sendmail
