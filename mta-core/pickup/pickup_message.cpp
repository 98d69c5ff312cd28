// Maildrop message to queue file; see pickup_message.h.
#include "pickup/pickup_message.h"

#include <algorithm>

#include "message_header.h"
#include "smtp/address.h"

namespace mta::pickup {

namespace {

// RFC 5322 3.2.3 specials: a display name holding one must be quoted.
std::string display_name(const std::string& name) {
    if (name.find_first_of("()<>[]:;@\\,.\"") == std::string::npos) return name;
    std::string out = "\"";
    for (char c : name) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

// RFC 5322 2.2: field-name (printable ASCII but ':') then ':'.
bool starts_with_field(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size() && text[i] > 32 && text[i] < 127 && text[i] != ':') ++i;
    return i > 0 && i < text.size() && text[i] == ':';
}

}  // namespace

std::optional<std::string> qualify(const std::string& address, const MessageSettings& settings) {
    if (address.empty()) return address;
    proto::smtp::AddressLimits limits;
    limits.allow_no_domain = true;
    limits.utf8 = true;
    auto parsed = proto::smtp::parse_mailbox(address, nullptr, limits);
    if (!parsed) return std::nullopt;
    std::string domain = parsed->domain;
    if (domain.empty()) domain = settings.myorigin;
    else if (settings.append_dot_mydomain && domain.find('.') == std::string::npos && domain.front() != '[')
        domain += "." + settings.mydomain;
    parsed->domain = domain;
    return parsed->to_string();
}

std::optional<Queued> make_queued(const queue::MaildropMessage& message, uid_t uid, const std::string& id,
                                  std::time_t now, const MessageSettings& settings, std::string* error) {
    Queued q;
    auto& env = q.envelope;
    env.id = id;
    env.arrival = now;
    auto sender = qualify(message.sender, settings);
    if (!sender) {
        if (error) *error = "bad sender address syntax";
        return std::nullopt;
    }
    env.sender = *sender;
    for (const auto& r : message.recipients) {
        auto to = qualify(r, settings);
        if (!to || to->empty()) {
            if (error) *error = "bad recipient address syntax";
            return std::nullopt;
        }
        std::vector<std::string> targets{*to};
        if (settings.expand) targets = settings.expand(*to);
        for (const auto& t : targets) {
            bool dup = std::any_of(env.recipients.begin(), env.recipients.end(),
                                   [&](const queue::Recipient& x) { return x.address == t; });
            if (!dup) env.recipients.push_back({t, *to, false, 0});
        }
    }
    env.client_name = "localhost";
    env.client_address = "127.0.0.1";
    env.protocol = "local";
    bool non_ascii = proto::smtp::has_non_ascii(env.sender);
    for (const auto& r : env.recipients) non_ascii = non_ascii || proto::smtp::has_non_ascii(r.address);
    env.smtputf8 = non_ascii;
    const std::string& body = message.content;
    std::string date = rfc5322_date(now);
    std::string& out = q.content;
    out.reserve(body.size() + 512);
    out += "Received: by " + settings.myhostname + " (mta-core, from userid " + std::to_string(uid) + ")\r\n\tid " +
           id + "; " + date + "\r\n";
    if (!field_value(body, "Message-ID")) out += "Message-ID: <" + id + "@" + settings.myhostname + ">\r\n";
    if (!field_value(body, "Date")) out += "Date: " + date + "\r\n";
    if (!field_value(body, "From") && !env.sender.empty())
        out += "From: " + (message.fullname.empty() ? "" : display_name(message.fullname) + " ") + "<" +
               env.sender + ">\r\n";
    // A message that starts with body text (no header field first) gets the
    // empty line that ends the header, as Postfix's cleanup inserts it.
    if (!starts_with_field(body) && !body.starts_with("\r\n")) out += "\r\n";
    out += body;
    return q;
}

}  // namespace mta::pickup
