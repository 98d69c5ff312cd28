// Maildrop file codec; see maildrop_file.h.
#include "queue/maildrop_file.h"

#include <algorithm>
#include <charconv>

#include "queue/queue_file.h"
#include "smtp/address.h"

namespace mta::queue {

namespace {

void field(std::string& out, std::string_view name, std::string_view value) {
    out.append(name);
    out.push_back('=');
    out.append(escape(value));
    out.push_back('\n');
}

// Reads "name=value\n" lines from the front of the file.
struct Reader {
    std::string_view rest;
    std::string* error;

    bool fail(std::string text) {
        if (error) *error = std::move(text);
        return false;
    }
    // The next line without its LF; false at the end of the input.
    bool line(std::string_view& out) {
        auto nl = rest.find('\n');
        if (nl == std::string_view::npos) return fail("truncated file");
        out = rest.substr(0, nl);
        rest.remove_prefix(nl + 1);
        return true;
    }
    bool value(std::string_view line, std::string_view name, std::size_t max, std::string& out) {
        if (!line.starts_with(name) || line.size() <= name.size() || line[name.size()] != '=')
            return fail("expected field " + std::string(name));
        std::string_view raw = line.substr(name.size() + 1);
        if (raw.size() > max * 3) return fail(std::string(name) + " too long");
        auto v = unescape(raw);
        if (!v) return fail("bad escape in " + std::string(name));
        if (v->size() > max) return fail(std::string(name) + " too long");
        for (char c : *v)
            if (c == '\0' || c == '\r' || c == '\n') return fail("control character in " + std::string(name));
        out = std::move(*v);
        return true;
    }
};

// RFC 5321 4.1.2 Mailbox, or a bare local part (qualified by pickup).
bool valid_address(const std::string& address) {
    proto::smtp::AddressLimits limits;
    limits.allow_no_domain = true;
    limits.utf8 = true;
    return proto::smtp::parse_mailbox(address, nullptr, limits).has_value();
}

}  // namespace

bool valid_maildrop_address(const std::string& address) { return valid_address(address); }

std::string serialize_maildrop(const MaildropMessage& message) {
    std::string out;
    out.reserve(message.content.size() + 256 + message.recipients.size() * 32);
    out.append(kMaildropMagic);
    out.push_back('\n');
    field(out, "sender", message.sender);
    field(out, "fullname", message.fullname);
    for (const auto& r : message.recipients) field(out, "rcpt", r);
    out.append("size=" + std::to_string(message.content.size()) + "\n\n");
    out.append(message.content);
    out.append(kMaildropEnd);
    return out;
}

std::size_t maildrop_file_bound(const MaildropLimits& limits) {
    std::size_t line = 3 * std::max(limits.max_address, limits.max_fullname) + 16;
    std::size_t content = limits.max_content == 0 ? std::size_t{1} << 40 : limits.max_content;
    return 64 + line * (limits.max_recipients + 2) + content + kMaildropEnd.size();
}

std::optional<MaildropMessage> parse_maildrop(std::string_view file, const MaildropLimits& limits,
                                              std::string* error) {
    Reader r{file, error};
    MaildropMessage m;
    std::string_view l;
    if (file.find('\0') != std::string_view::npos) {
        r.fail("NUL byte in file");
        return std::nullopt;
    }
    if (!r.line(l) || l != kMaildropMagic) {
        r.fail("not a maildrop file (bad first line)");
        return std::nullopt;
    }
    if (!r.line(l) || !r.value(l, "sender", limits.max_address, m.sender)) return std::nullopt;
    if (!m.sender.empty() && !valid_address(m.sender)) {
        r.fail("bad sender address syntax");
        return std::nullopt;
    }
    if (!r.line(l) || !r.value(l, "fullname", limits.max_fullname, m.fullname)) return std::nullopt;
    std::size_t size = 0;
    while (true) {
        if (!r.line(l)) {
            r.fail("truncated envelope");
            return std::nullopt;
        }
        if (l.starts_with("rcpt=")) {
            if (m.recipients.size() >= limits.max_recipients) {
                r.fail("too many recipients (limit " + std::to_string(limits.max_recipients) + ")");
                return std::nullopt;
            }
            std::string rcpt;
            if (!r.value(l, "rcpt", limits.max_address, rcpt)) return std::nullopt;
            if (rcpt.empty() || !valid_address(rcpt)) {
                r.fail("bad recipient address syntax");
                return std::nullopt;
            }
            m.recipients.push_back(std::move(rcpt));
            continue;
        }
        if (!l.starts_with("size=")) {
            r.fail("unexpected field");
            return std::nullopt;
        }
        std::string_view digits = l.substr(5);
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), size);
        if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() || digits.size() > 15) {
            r.fail("bad size");
            return std::nullopt;
        }
        break;
    }
    if (m.recipients.empty()) {
        r.fail("no recipients");
        return std::nullopt;
    }
    if (limits.max_content && size > limits.max_content) {
        r.fail("message too big (" + std::to_string(size) + " bytes, limit " +
               std::to_string(limits.max_content) + ")");
        return std::nullopt;
    }
    if (!r.line(l) || !l.empty()) {
        r.fail("missing empty line after the envelope");
        return std::nullopt;
    }
    if (r.rest.size() < size || r.rest.substr(size) != kMaildropEnd) {
        r.fail(r.rest.size() < size ? "truncated content" : "missing end marker");
        return std::nullopt;
    }
    std::string_view content = r.rest.substr(0, size);
    for (std::size_t i = 0; i < content.size(); ++i) {
        bool cr = content[i] == '\r', lf = content[i] == '\n';
        if ((cr && (i + 1 >= content.size() || content[i + 1] != '\n')) || (lf && (i == 0 || content[i - 1] != '\r'))) {
            r.fail("content is not made of CRLF lines");
            return std::nullopt;
        }
    }
    if (!content.empty() && !content.ends_with("\r\n")) {
        r.fail("content does not end with CRLF");
        return std::nullopt;
    }
    m.content = std::string(content);
    return m;
}

}  // namespace mta::queue
