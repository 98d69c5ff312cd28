#include "milter/policy.h"

#include <algorithm>
#include <cctype>

namespace proto::milter {

namespace {

using policy::ActionKind;

constexpr std::string_view kConnectMacros = "j {client_addr} {client_name} {client_ptr} {client_port} {daemon_addr} {daemon_port}";
constexpr std::string_view kMailMacros = "i {auth_type} {auth_authen} {auth_author} {mail_addr}";
constexpr std::string_view kRcptMacros = "i {rcpt_addr}";
constexpr std::string_view kEomMacros = "i";

std::string_view unbrace(std::string_view name) {
    if (name.size() >= 2 && name.front() == '{' && name.back() == '}')
        return name.substr(1, name.size() - 2);
    return name;
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(s[i])) !=
            std::tolower(static_cast<unsigned char>(prefix[i])))
            return false;
    return true;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Length of an RFC 3463 enhanced status code "C.S.D" at the start of text
// (class one digit, subject and detail 1-3 digits), 0 if none.
std::size_t enhanced_code_length(std::string_view t) {
    std::size_t i = 0;
    if (t.size() < 5 || !is_digit(t[0]) || t[1] != '.') return 0;
    i = 2;
    for (int part = 0; part < 2; ++part) {
        std::size_t start = i;
        while (i < t.size() && is_digit(t[i]) && i - start < 3) ++i;
        if (i == start) return 0;
        if (part == 0) {
            if (i >= t.size() || t[i] != '.') return 0;
            ++i;
        }
    }
    if (i < t.size() && t[i] != ' ') return 0;
    return i;
}

// Split "Name: value" for SMFIR_INSHEADER. Header names are printable
// ASCII without ':' or space (RFC 5322 2.2).
std::optional<InsertHeader> split_header(std::string_view text) {
    auto colon = text.find(':');
    if (colon == 0 || colon == std::string_view::npos) return std::nullopt;
    std::string_view name = text.substr(0, colon);
    for (char c : name)
        if (c <= ' ' || c > '~') return std::nullopt;
    std::string_view value = text.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    std::string clean;
    for (char c : value) clean.push_back(c == '\r' || c == '\n' ? ' ' : c);
    return InsertHeader{0, std::string(name), std::move(clean)};
}

}  // namespace

std::string_view protocol_state(Stage stage) {
    switch (stage) {
    case Stage::connect: return "CONNECT";
    case Stage::helo: return "HELO";
    case Stage::mail: return "MAIL";
    case Stage::rcpt: return "RCPT";
    case Stage::end_of_message: return "END-OF-MESSAGE";
    }
    return "";
}

Negotiated negotiate_policy_filter(const OptionNegotiation& offer) {
    if (offer.version < 2) return {std::nullopt, "MTA protocol version below 2"};
    OptionNegotiation r;
    r.version = std::min(offer.version, kProtocolVersion);
    r.actions = offer.actions & (action::add_headers | action::quarantine);
    // Steps we do not need, and commands we read without answering, each
    // only if offered (engine.c: a filter may not ask for more than the MTA
    // offers; milter8.c drops what it did not offer).
    // Not SMFIP_HDR_LEADSPC: with it the MTA also takes our header values
    // verbatim, and "X-Greylist:delayed" would lose its space.
    std::uint32_t wanted = step::no_unknown | step::no_data | step::no_reply_header |
                           step::no_reply_eoh | step::no_reply_body;
    r.steps = offer.steps & wanted;
    if (offer.actions & action::set_symlist) {
        r.actions |= action::set_symlist;
        r.macros[static_cast<std::size_t>(MacroStage::connect)] = std::string(kConnectMacros);
        r.macros[static_cast<std::size_t>(MacroStage::envfrom)] = std::string(kMailMacros);
        r.macros[static_cast<std::size_t>(MacroStage::envrcpt)] = std::string(kRcptMacros);
        r.macros[static_cast<std::size_t>(MacroStage::eom)] = std::string(kEomMacros);
    }
    return {std::move(r), {}};
}

std::string safe_reply_text(std::string_view text) {
    std::string plain;
    plain.reserve(std::min(text.size(), kMaxReplyText));
    for (char c : text) {
        if (plain.size() == kMaxReplyText) break;
        auto u = static_cast<unsigned char>(c);
        plain.push_back(u < 0x20 || u > 0x7e ? ' ' : c);
    }
    while (!plain.empty() && plain.back() == ' ') plain.pop_back();
    std::string out;
    out.reserve(plain.size() + 8);
    for (char c : plain) {
        out.push_back(c);
        if (c == '%') out.push_back('%');
    }
    return out;
}

ReplyCode make_reply_code(std::string_view code, std::string_view text) {
    char cls = code.empty() ? '4' : code[0];
    if (cls != '4' && cls != '5') cls = '4';
    std::string c(code.size() == 3 && is_digit(code[1]) && is_digit(code[2]) ? code
                                                                             : std::string_view(cls == '5' ? "554" : "451"));
    c[0] = cls;
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    std::string enhanced = std::string(1, cls) + ".7.1";
    if (std::size_t n = enhanced_code_length(text); n > 0) {
        if (text[0] == cls) enhanced.assign(text.substr(0, n));
        text.remove_prefix(n);
        while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    }
    std::string body = safe_reply_text(text);
    std::string out = c + " " + enhanced;
    if (!body.empty()) out += " " + body;
    return ReplyCode{std::move(out)};
}

StageVerdict map_action(const policy::Action& a) {
    StageVerdict v;
    switch (a.kind) {
    case ActionKind::ok:
    case ActionKind::dunno:
        break;
    case ActionKind::reject:
        // access(5): REJECT without text is "Access denied"; Postfix's
        // access_map_reject_code is 554.
        v.reply = make_reply_code("554", a.text.empty() ? "Access denied" : a.text);
        break;
    case ActionKind::defer:
    case ActionKind::defer_if_permit:
        // access_map_defer_code 450; a milter cannot wait for a later
        // permit, so DEFER_IF_PERMIT defers here and now.
        v.reply = make_reply_code("450", a.text.empty() ? "Try again later" : a.text);
        break;
    case ActionKind::smtp_4xx:
    case ActionKind::smtp_5xx:
        v.reply = make_reply_code(a.code, a.text);
        break;
    case ActionKind::prepend:
        if (auto h = split_header(a.text))
            v.prepend = std::move(*h);
        else
            v.unsupported = true;
        break;
    case ActionKind::hold:
        v.quarantine = a.text.empty() ? std::string("held by policy") : safe_reply_text(a.text);
        break;
    case ActionKind::discard:
        v.reply = Discard{};
        break;
    case ActionKind::defer_if_reject:  // no later reject to wait for: nothing to do
    case ActionKind::redirect:
    case ActionKind::filter:
    case ActionKind::bcc:
    case ActionKind::warn:
    case ActionKind::info:
        v.unsupported = a.kind != ActionKind::warn && a.kind != ActionKind::info &&
                        a.kind != ActionKind::defer_if_reject;
        break;
    }
    return v;
}

// ---- Session ------------------------------------------------------------------

std::string strip_angles(std::string_view a) {
    while (!a.empty() && a.front() == ' ') a.remove_prefix(1);
    while (!a.empty() && a.back() == ' ') a.remove_suffix(1);
    if (a.size() >= 2 && a.front() == '<' && a.back() == '>') a = a.substr(1, a.size() - 2);
    return std::string(a);
}

void Session::define(const Macros& m) {
    // Connection macros come with CONNECT and HELO; the rest belong to the message.
    bool connection = m.for_command == 'C' || m.for_command == 'H';
    // MAIL's macros open a new message: the old message's are gone.
    if (m.for_command == 'M') message_macros_.clear();
    auto& into = connection ? macros_ : message_macros_;
    for (const auto& [name, value] : m.values) into[std::string(unbrace(name))] = value;
}

std::string_view Session::macro(std::string_view name) const {
    name = unbrace(name);
    if (auto it = message_macros_.find(name); it != message_macros_.end()) return it->second;
    if (auto it = macros_.find(name); it != macros_.end()) return it->second;
    return {};
}

void Session::connect(const Connect& c) {
    // An unverified name is "[address]" (libmilter's xxfi_connect); Postfix
    // then says "unknown".
    if (c.hostname.empty() || c.hostname.front() == '[')
        client_name_ = "unknown";
    else
        client_name_ = c.hostname;
    std::string_view addr = c.address;
    if (iequals_prefix(addr, "IPv6:")) addr.remove_prefix(5);
    if (c.family == '4' || c.family == '6') {
        client_address_ = addr;
        client_port_ = std::to_string(c.port);
    } else {
        client_address_.clear();
        client_port_.clear();
    }
}

void Session::helo(const Helo& h) { helo_ = h.name; }

void Session::mail(const Mail& m, std::string instance) {
    forget_message();
    in_message_ = true;
    sender_ = strip_angles(m.address);
    instance_ = std::move(instance);
    for (const auto& p : m.esmtp)
        if (iequals_prefix(p, "SIZE=")) declared_size_ = p.substr(5);
}

void Session::rcpt(const Rcpt& r) { recipient_ = strip_angles(r.address); }

void Session::header(const Header& h, bool leading_space) {
    // name ":" [" "] value CRLF, as the message is stored.
    size_ += h.name.size() + 1 + (leading_space ? 0 : 1) + h.value.size() + 2;
}

void Session::end_of_headers() { size_ += 2; }

void Session::body(std::size_t bytes) { size_ += bytes; }

void Session::end_message() {
    forget_message();
    message_macros_.clear();
}

void Session::forget_message() {
    in_message_ = false;
    sender_.clear();
    recipient_.clear();
    instance_.clear();
    declared_size_.clear();
    size_ = 0;
    accepted_recipients_ = 0;
}

policy::Request Session::request(Stage stage) const {
    policy::Request r;
    r.append("request", "smtpd_access_policy");
    r.append("protocol_state", protocol_state(stage));
    // The connect packet is authoritative; macros fill in what it lacks.
    std::string_view address = client_address_;
    if (address.empty()) address = macro("client_addr");
    r.append("client_address", address);
    std::string_view name = client_name_;
    if (name == "unknown" && !macro("client_name").empty() && macro("client_name").front() != '[')
        name = macro("client_name");
    r.append("client_name", name);
    std::string_view ptr = macro("client_ptr");
    r.append("reverse_client_name", ptr.empty() || ptr.front() == '[' ? name : ptr);
    r.append("client_port", client_port_.empty() ? macro("client_port") : std::string_view(client_port_));
    r.append("server_address", macro("daemon_addr"));
    r.append("server_port", macro("daemon_port"));
    r.append("helo_name", helo_);
    r.append("queue_id", macro("i"));
    r.append("sender", sender_);
    r.append("recipient", stage == Stage::rcpt ? std::string_view(recipient_) : std::string_view());
    // Postfix counts recipients only once the envelope is complete.
    r.append("recipient_count",
             stage == Stage::end_of_message ? std::to_string(accepted_recipients_) : std::string("0"));
    r.append("instance", instance_);
    std::string size = stage == Stage::end_of_message ? std::to_string(size_) : declared_size_;
    r.append("size", size.empty() ? std::string("0") : size);
    r.append("sasl_method", macro("auth_type"));
    r.append("sasl_username", macro("auth_authen"));
    r.append("sasl_sender", macro("auth_author"));
    return r;
}

}  // namespace proto::milter
