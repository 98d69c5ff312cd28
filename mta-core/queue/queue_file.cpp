// Queue file envelope codec; see queue_file.h.
#include "queue/queue_file.h"

#include <charconv>

namespace mta::queue {

namespace {

constexpr char kHex[] = "0123456789ABCDEF";

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

void field(std::string& out, std::string_view name, std::string_view value) {
    out.append(name);
    out.push_back('=');
    out.append(escape(value));
    out.push_back('\n');
}

}  // namespace

std::string escape(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (unsigned char c : value) {
        if (c < 0x21 || c > 0x7e || c == '%') {
            out.push_back('%');
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 15]);
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
    return out;
}

std::optional<std::string> unescape(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (std::size_t i = 0; i < value.size(); ++i) {
        char c = value[i];
        if (c != '%') {
            out.push_back(c);
            continue;
        }
        if (i + 2 >= value.size()) return std::nullopt;
        int hi = hex_value(value[i + 1]);
        int lo = hex_value(value[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

std::string serialize(const Envelope& e) {
    std::string out(kMagic);
    out.push_back('\n');
    field(out, "id", e.id);
    field(out, "arrival", std::to_string(e.arrival));
    field(out, "sender", e.sender);
    field(out, "client_name", e.client_name);
    field(out, "client_address", e.client_address);
    field(out, "helo", e.helo);
    field(out, "protocol", e.protocol);
    field(out, "sasl_username", e.sasl_username);
    field(out, "body_type", e.body_type);
    field(out, "smtputf8", e.smtputf8 ? "1" : "0");
    field(out, "filter", e.filter);
    if (!e.dsn_envid.empty()) field(out, "dsn_envid", e.dsn_envid);
    if (!e.dsn_ret.empty()) field(out, "dsn_ret", e.dsn_ret);
    for (const auto& r : e.recipients) {
        // "rcpt=ADDRESS ORIGINAL DONE": three escaped words (escaping leaves no space).
        out.append("rcpt=");
        out.append(escape(r.address));
        out.push_back(' ');
        out.append(escape(r.original));
        out.append(r.done ? " 1\n" : " 0\n");
        // "rcpt_dsn=NOTIFY ORCPT" for the recipient above, when the client gave either.
        if (!r.dsn_notify.empty() || !r.dsn_orcpt.empty()) {
            out.append("rcpt_dsn=");
            out.append(escape(r.dsn_notify));
            out.push_back(' ');
            out.append(escape(r.dsn_orcpt));
            out.push_back('\n');
        }
    }
    out.push_back('\n');
    return out;
}

std::optional<Parsed> parse(std::string_view file, std::string* error) {
    auto fail = [&](std::string why) -> std::optional<Parsed> {
        if (error) *error = std::move(why);
        return std::nullopt;
    };
    Parsed p;
    std::size_t pos = 0;
    bool first = true;
    bool have_id = false, have_arrival = false, have_sender = false;
    while (true) {
        std::size_t lf = file.find('\n', pos);
        if (lf == std::string_view::npos) return fail("envelope not terminated");
        std::string_view line = file.substr(pos, lf - pos);
        pos = lf + 1;
        if (first) {
            if (line != kMagic) return fail("not a queue file (bad magic)");
            first = false;
            continue;
        }
        if (line.empty()) break;
        std::size_t eq = line.find('=');
        if (eq == std::string_view::npos) return fail("line without '='");
        std::string_view name = line.substr(0, eq);
        std::string_view raw = line.substr(eq + 1);
        Envelope& e = p.envelope;
        if (name == "rcpt") {
            std::size_t s1 = raw.find(' ');
            std::size_t s2 = s1 == std::string_view::npos ? s1 : raw.find(' ', s1 + 1);
            if (s2 == std::string_view::npos) return fail("bad rcpt line");
            auto address = unescape(raw.substr(0, s1));
            auto original = unescape(raw.substr(s1 + 1, s2 - s1 - 1));
            std::string_view done = raw.substr(s2 + 1);
            if (!address || !original || (done != "0" && done != "1") || address->empty())
                return fail("bad rcpt line");
            e.recipients.push_back({std::move(*address), std::move(*original), done == "1",
                                    lf - 1});
            continue;
        }
        if (name == "rcpt_dsn") {
            std::size_t sp = raw.find(' ');
            if (sp == std::string_view::npos || e.recipients.empty() || !e.recipients.back().dsn_notify.empty() ||
                !e.recipients.back().dsn_orcpt.empty())
                return fail("bad rcpt_dsn line");
            auto notify = unescape(raw.substr(0, sp));
            auto orcpt = unescape(raw.substr(sp + 1));
            if (!notify || !orcpt || (notify->empty() && orcpt->empty())) return fail("bad rcpt_dsn line");
            e.recipients.back().dsn_notify = std::move(*notify);
            e.recipients.back().dsn_orcpt = std::move(*orcpt);
            continue;
        }
        auto value = unescape(raw);
        if (!value) return fail("bad escape in " + std::string(name));
        if (name == "id") {
            e.id = std::move(*value);
            have_id = true;
        } else if (name == "arrival") {
            auto r = std::from_chars(value->data(), value->data() + value->size(), e.arrival);
            if (r.ec != std::errc() || r.ptr != value->data() + value->size())
                return fail("bad arrival");
            have_arrival = true;
        } else if (name == "sender") {
            e.sender = std::move(*value);
            have_sender = true;
        } else if (name == "client_name") {
            e.client_name = std::move(*value);
        } else if (name == "client_address") {
            e.client_address = std::move(*value);
        } else if (name == "helo") {
            e.helo = std::move(*value);
        } else if (name == "protocol") {
            e.protocol = std::move(*value);
        } else if (name == "sasl_username") {
            e.sasl_username = std::move(*value);
        } else if (name == "body_type") {
            e.body_type = std::move(*value);
        } else if (name == "smtputf8") {
            e.smtputf8 = *value == "1";
        } else if (name == "filter") {
            e.filter = std::move(*value);
        } else if (name == "dsn_envid") {
            e.dsn_envid = std::move(*value);
        } else if (name == "dsn_ret") {
            if (*value != "FULL" && *value != "HDRS") return fail("bad dsn_ret");
            e.dsn_ret = std::move(*value);
        } else {
            return fail("unknown field " + std::string(name));
        }
    }
    if (!have_id || !have_arrival || !have_sender) return fail("missing id, arrival or sender");
    if (p.envelope.recipients.empty()) return fail("no recipients");
    p.content_offset = pos;
    return p;
}

}  // namespace mta::queue
