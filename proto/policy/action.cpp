#include "policy/action.h"

#include <array>
#include <cctype>

namespace proto::policy {
namespace {

struct Keyword {
    std::string_view word;
    ActionKind kind;
    enum { optional_text, needs_text, no_text } text;
};

constexpr std::array<Keyword, 14> kKeywords{{
    {"OK", ActionKind::ok, Keyword::optional_text},
    {"DUNNO", ActionKind::dunno, Keyword::optional_text},
    {"REJECT", ActionKind::reject, Keyword::optional_text},
    {"DEFER", ActionKind::defer, Keyword::optional_text},
    {"DEFER_IF_PERMIT", ActionKind::defer_if_permit, Keyword::optional_text},
    {"DEFER_IF_REJECT", ActionKind::defer_if_reject, Keyword::optional_text},
    {"PREPEND", ActionKind::prepend, Keyword::needs_text},
    {"HOLD", ActionKind::hold, Keyword::optional_text},
    {"DISCARD", ActionKind::discard, Keyword::optional_text},
    {"REDIRECT", ActionKind::redirect, Keyword::needs_text},
    {"FILTER", ActionKind::filter, Keyword::needs_text},
    {"BCC", ActionKind::bcc, Keyword::needs_text},
    {"WARN", ActionKind::warn, Keyword::optional_text},
    {"INFO", ActionKind::info, Keyword::optional_text},
}};

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::toupper(static_cast<unsigned char>(a[i])) !=
            std::toupper(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

// "Name: value" where Name is an RFC 5322 field name (printable, no colon or space).
bool valid_header(std::string_view text) {
    auto colon = text.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    for (char c : text.substr(0, colon))
        if (c <= 32 || c >= 127) return false;
    return true;
}

bool valid_text(std::string_view text) {
    for (char c : text)
        if (c == '\n' || c == '\0') return false;
    return true;
}

ActionParse error(std::string why) { return {std::nullopt, std::move(why)}; }

}  // namespace

ActionParse parse_action(std::string_view value) {
    value = trim(value);
    if (value.empty()) return error("empty action");
    if (!valid_text(value)) return error("control character in action");
    auto space = value.find_first_of(" \t");
    std::string_view word = value.substr(0, space);
    std::string_view text = space == std::string_view::npos ? std::string_view{}
                                                             : trim(value.substr(space));

    bool all_digits = true;
    for (char c : word) all_digits = all_digits && is_digit(c);
    if (all_digits) {
        // access(5): 4NN/5NN are SMTP replies; any other all-numerical result means OK.
        if (word.size() == 3 && (word[0] == '4' || word[0] == '5')) {
            if (!is_digit(word[1]) || !is_digit(word[2])) return error("bad SMTP code");
            Action a;
            a.kind = word[0] == '4' ? ActionKind::smtp_4xx : ActionKind::smtp_5xx;
            a.code = std::string(word);
            a.text = std::string(text);
            return {a, {}};
        }
        return {Action{ActionKind::ok, std::string(text), {}}, {}};
    }
    for (const auto& k : kKeywords) {
        if (!iequals(word, k.word)) continue;
        if (k.text == Keyword::needs_text && text.empty())
            return error(std::string(k.word) + " needs an argument");
        if (k.kind == ActionKind::prepend && !valid_header(text))
            return error("PREPEND needs \"header: value\"");
        if ((k.kind == ActionKind::redirect || k.kind == ActionKind::bcc) &&
            (text.find('@') == std::string_view::npos || text.find(' ') != std::string_view::npos))
            return error(std::string(k.word) + " needs one address");
        if (k.kind == ActionKind::filter && text.find(':') == std::string_view::npos)
            return error("FILTER needs transport:destination");
        return {Action{k.kind, std::string(text), {}}, {}};
    }
    return error("unknown action \"" + std::string(word.substr(0, 64)) + "\"");
}

std::string_view Action::keyword() const {
    switch (kind) {
        case ActionKind::ok: return "OK";
        case ActionKind::dunno: return "DUNNO";
        case ActionKind::reject: return "REJECT";
        case ActionKind::defer: return "DEFER";
        case ActionKind::defer_if_permit: return "DEFER_IF_PERMIT";
        case ActionKind::defer_if_reject: return "DEFER_IF_REJECT";
        case ActionKind::smtp_4xx:
        case ActionKind::smtp_5xx: return code;
        case ActionKind::prepend: return "PREPEND";
        case ActionKind::hold: return "HOLD";
        case ActionKind::discard: return "DISCARD";
        case ActionKind::redirect: return "REDIRECT";
        case ActionKind::filter: return "FILTER";
        case ActionKind::bcc: return "BCC";
        case ActionKind::warn: return "WARN";
        case ActionKind::info: return "INFO";
    }
    return "DUNNO";
}

std::string Action::to_string() const {
    std::string out(keyword());
    if (!text.empty()) {
        out += ' ';
        out += text;
    }
    return out;
}

bool Action::refuses() const {
    switch (kind) {
        case ActionKind::reject:
        case ActionKind::defer:
        case ActionKind::smtp_4xx:
        case ActionKind::smtp_5xx: return true;
        default: return false;
    }
}

ActionParse parse_reply(std::string_view block) {
    std::optional<std::string_view> action;
    std::size_t pos = 0;
    while (pos < block.size()) {
        auto nl = block.find('\n', pos);
        if (nl == std::string_view::npos) break;
        auto line = block.substr(pos, nl - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        pos = nl + 1;
        if (line.empty()) break;
        if (line.starts_with("action=")) {
            if (action) return {std::nullopt, "more than one action in reply"};
            action = line.substr(7);
        } else if (line.find('=') == std::string_view::npos) {
            return {std::nullopt, "malformed reply line"};
        }
    }
    if (!action) return {std::nullopt, "reply without action"};
    return parse_action(*action);
}

}  // namespace proto::policy
