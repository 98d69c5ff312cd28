// SMTP/LMTP command parsing; see command.h.
#include "smtp/command.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace proto::smtp {

namespace {

char upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (upper(a[i]) != upper(b[i])) return false;
    return true;
}

bool istarts_with(std::string_view text, std::string_view prefix) {
    return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

struct VerbEntry {
    std::string_view name;
    Verb verb;
};
constexpr std::array<VerbEntry, 15> kVerbs{{
    {"HELO", Verb::helo}, {"EHLO", Verb::ehlo}, {"LHLO", Verb::lhlo}, {"MAIL", Verb::mail},
    {"RCPT", Verb::rcpt}, {"DATA", Verb::data}, {"BDAT", Verb::bdat}, {"RSET", Verb::rset},
    {"NOOP", Verb::noop}, {"QUIT", Verb::quit}, {"VRFY", Verb::vrfy}, {"EXPN", Verb::expn},
    {"HELP", Verb::help}, {"STARTTLS", Verb::starttls}, {"AUTH", Verb::auth},
}};

ParsedCommand fail(int code, std::string enhanced, std::string text) {
    ParsedCommand p;
    p.error = CommandError{code, std::move(enhanced), std::move(text)};
    return p;
}

// esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"); esmtp-value = 1*(%d33-60 / %d62-126)
bool parse_params(std::string_view text, std::vector<Param>& out, std::size_t max_params,
                  std::string& why) {
    while (true) {
        text = trim(text);
        if (text.empty()) return true;
        auto sp = text.find_first_of(" \t");
        auto word = text.substr(0, sp);
        text = sp == std::string_view::npos ? std::string_view{} : text.substr(sp);
        if (out.size() >= max_params) {
            why = "too many parameters";
            return false;
        }
        Param p;
        auto eq = word.find('=');
        auto keyword = word.substr(0, eq);
        if (keyword.empty()) {
            why = "bad parameter";
            return false;
        }
        for (std::size_t i = 0; i < keyword.size(); ++i) {
            char c = keyword[i];
            bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      (c == '-' && i > 0);
            if (!ok) {
                why = "bad parameter keyword";
                return false;
            }
            p.keyword.push_back(upper(c));
        }
        if (eq != std::string_view::npos) {
            auto value = word.substr(eq + 1);
            if (value.empty()) {
                why = "empty parameter value";
                return false;
            }
            for (unsigned char c : value)
                if (c < 33 || c > 126 || c == '=') {
                    why = "bad parameter value";
                    return false;
                }
            p.value = std::string(value);
            p.has_value = true;
        }
        out.push_back(std::move(p));
    }
}

// "<...>" possibly with a source route; returns the rest of the line after '>'.
bool parse_path(std::string_view& text, Address& out, bool allow_null, std::size_t max_path,
                bool utf8, bool lenient, std::string& why) {
    text = trim(text);
    AddressLimits address_limits;
    address_limits.utf8 = utf8;
    address_limits.allow_no_domain = lenient;
    if (lenient && !text.empty() && text.front() != '<') {
        // "MAIL FROM:user@domain": the address runs to the first space.
        auto end = text.find_first_of(" \t");
        auto bare = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end);
        if (bare.size() > max_path) {
            why = "path too long";
            return false;
        }
        auto parsed = parse_mailbox(bare, &why, address_limits);
        if (!parsed) return false;
        out = std::move(*parsed);
        return true;
    }
    if (text.empty() || text.front() != '<') {
        why = "address must be in angle brackets";
        return false;
    }
    // The closing bracket, skipping quoted strings in the local part.
    std::size_t i = 1;
    bool quoted = false;
    for (; i < text.size(); ++i) {
        char c = text[i];
        if (quoted) {
            if (c == '\\') ++i;
            else if (c == '"') quoted = false;
        } else if (c == '"') {
            quoted = true;
        } else if (c == '>') {
            break;
        }
    }
    if (i >= text.size()) {
        why = "missing closing angle bracket";
        return false;
    }
    if (i + 1 > max_path) {
        why = "path too long";
        return false;
    }
    auto inner = text.substr(1, i - 1);
    text = text.substr(i + 1);
    if (inner.empty()) {
        if (!allow_null) {
            why = "empty recipient";
            return false;
        }
        out = Address{};
        return true;
    }
    // A-d-l ":" Mailbox (RFC 5321 4.1.2): accepted, ignored.
    if (inner.front() == '@') {
        auto colon = inner.find(':');
        if (colon == std::string_view::npos) {
            why = "bad source route";
            return false;
        }
        inner = inner.substr(colon + 1);
    }
    auto parsed = parse_mailbox(inner, &why, address_limits);
    if (!parsed) return false;
    out = std::move(*parsed);
    return true;
}

}  // namespace

std::string_view verb_name(Verb verb) {
    for (const auto& v : kVerbs)
        if (v.verb == verb) return v.name;
    return "UNKNOWN";
}

const Param* Command::param(std::string_view keyword) const {
    for (const auto& p : params)
        if (iequals(p.keyword, keyword)) return &p;
    return nullptr;
}

ParsedCommand parse_command(std::string_view line, const CommandLimits& limits) {
    if (line.size() + 2 > limits.max_line) return fail(500, "5.5.2", "Line too long");
    for (unsigned char c : line)
        if ((c < 32 && c != '\t') || c == 127) return fail(500, "5.5.2", "Invalid character");
    auto sp = line.find_first_of(" \t");
    auto word = line.substr(0, sp);
    auto rest = sp == std::string_view::npos ? std::string_view{} : line.substr(sp);
    Command cmd;
    for (const auto& v : kVerbs)
        if (iequals(word, v.name)) cmd.verb = v.verb;
    // Postfix's reply, code and words, to a verb it does not know.
    if (cmd.verb == Verb::unknown) {
        ParsedCommand unknown = fail(500, "5.5.2", "Error: command not recognized");
        unknown.unknown_line = std::string(line);
        return unknown;
    }

    std::string why;
    switch (cmd.verb) {
        case Verb::mail:
        case Verb::rcpt: {
            std::string_view prefix = cmd.verb == Verb::mail ? "FROM:" : "TO:";
            rest = trim(rest);
            if (!istarts_with(rest, prefix))
                return fail(501, "5.5.4",
                            cmd.verb == Verb::mail ? "Syntax: MAIL FROM:<address>"
                                                   : "Syntax: RCPT TO:<address>");
            rest = rest.substr(prefix.size());
            if (!parse_path(rest, cmd.path, cmd.verb == Verb::mail, limits.max_path, limits.utf8, limits.lenient,
                            why))
                return fail(501, cmd.verb == Verb::mail ? "5.1.7" : "5.1.3",
                            "Bad address syntax: " + why);
            if (!rest.empty() && rest.front() != ' ' && rest.front() != '\t')
                return fail(501, "5.5.4", "Syntax error after address");
            if (!parse_params(rest, cmd.params, limits.max_params, why))
                return fail(501, "5.5.4", "Syntax error: " + why);
            break;
        }
        case Verb::data:
        case Verb::rset:
        case Verb::quit:
        case Verb::starttls:
            if (!trim(rest).empty()) return fail(501, "5.5.4", "Syntax error: no arguments allowed");
            break;
        case Verb::helo:
        case Verb::ehlo:
        case Verb::lhlo:
            cmd.argument = std::string(trim(rest));
            if (cmd.argument.empty())
                return fail(501, "5.5.4", "Syntax: " + std::string(verb_name(cmd.verb)) + " hostname");
            break;
        default:
            // NOOP, VRFY, EXPN, HELP, AUTH, BDAT: the argument is for the caller.
            cmd.argument = std::string(trim(rest));
            break;
    }
    ParsedCommand p;
    p.command = std::move(cmd);
    return p;
}

CommandReader::Result CommandReader::feed(std::string_view data) {
    if (ready_) return {Status::line, 0};
    const char* lf = static_cast<const char*>(std::memchr(data.data(), '\n', data.size()));
    std::size_t take = lf ? static_cast<std::size_t>(lf - data.data()) : data.size();
    // Keep at most max_line bytes; beyond that only look for the end of the line.
    if (!overflow_) {
        std::size_t room = limits_.max_line > line_.size() ? limits_.max_line - line_.size() : 0;
        if (take > room) {
            overflow_ = true;
            line_.clear();
        } else {
            line_.append(data.data(), take);
        }
    }
    if (!lf) return {Status::need_more, data.size()};
    if (overflow_) {
        ready_ = fail(500, "5.5.2", "Line too long");
    } else {
        std::string_view line = line_;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        ready_ = parse_command(line, limits_);
    }
    line_.clear();
    overflow_ = false;
    return {Status::line, take + 1};
}

ParsedCommand CommandReader::take() {
    ParsedCommand p = std::move(*ready_);
    ready_.reset();
    return p;
}

}  // namespace proto::smtp
