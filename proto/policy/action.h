// Actions of access(5) as a policy service returns them: "action=ACTION [text]".
//
// Parsing is strict because an action is a verdict on mail: a reply we cannot
// classify exactly is treated by the policy client as a failure of the service
// (and so gets its default action), never passed on. Keywords are
// case-insensitive, as in Postfix.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace proto::policy {

enum class ActionKind {
    ok,               // OK, or an all-numerical result
    dunno,            // DUNNO
    reject,           // REJECT [text]
    defer,            // DEFER [text]
    defer_if_permit,  // DEFER_IF_PERMIT [text]
    defer_if_reject,  // DEFER_IF_REJECT [text]
    smtp_4xx,         // 4NN text
    smtp_5xx,         // 5NN text
    prepend,          // PREPEND header: value
    hold,             // HOLD [text]
    discard,          // DISCARD [text]
    redirect,         // REDIRECT user@domain
    filter,           // FILTER transport:destination
    bcc,              // BCC user@domain
    warn,             // WARN text
    info,             // INFO text
};

struct Action {
    ActionKind kind = ActionKind::dunno;
    // Everything after the keyword (or after the 3-digit code), leading space removed.
    std::string text;
    // For smtp_4xx / smtp_5xx: the three digits.
    std::string code;

    static Action dunno() { return {}; }
    static Action ok() { return {ActionKind::ok, {}, {}}; }

    // Wire form without "action=", e.g. "DEFER_IF_PERMIT Greylisted".
    std::string to_string() const;
    // Upper-case keyword or the code, for metrics labels and logs.
    std::string_view keyword() const;
    // True for actions that stop the restriction list with a refusal.
    bool refuses() const;
    bool operator==(const Action&) const = default;
};

struct ActionParse {
    std::optional<Action> action;
    std::string error;  // set when action is empty
};

// Parse the value of an "action=" attribute (or a configured action string).
ActionParse parse_action(std::string_view value);

// Parse a policy reply block ("action=...\n[other=...\n]\n") into an
// action; nullopt + error when it is not exactly one valid action.
ActionParse parse_reply(std::string_view block);

}  // namespace proto::policy
