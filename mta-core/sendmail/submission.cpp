// The sendmail command's input handling; see submission.h.
#include "sendmail/submission.h"

#include <algorithm>
#include <cctype>

namespace mta::sendmail {

namespace {

bool field_is(std::string_view line, std::string_view name) {
    if (line.size() <= name.size()) return false;
    for (std::size_t i = 0; i < name.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
    // RFC 5322 2.2: name, optional blanks (obsolete syntax), colon.
    std::size_t i = name.size();
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    return i < line.size() && line[i] == ':';
}

// The lower-cased name of a header field line ("" if it has no colon).
std::string field_name(std::string_view line) {
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return {};
    std::string name;
    for (char c : line.substr(0, colon)) name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return name;
}

std::string trim(std::string_view s) {
    std::size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
    return std::string(s.substr(b, e - b));
}

// One mailbox: "addr", "Name <addr>", "<@route:addr>", with comments.
std::string mailbox_address(std::string_view text) {
    // The last <...> outside quotes and comments is the address.
    std::string plain;  // text with comments removed
    std::string angle;
    bool in_quote = false, in_angle = false, have_angle = false;
    int comment = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (comment > 0) {
            if (c == '\\') ++i;
            else if (c == '(') ++comment;
            else if (c == ')') --comment;
            continue;
        }
        if (in_quote) {
            if (c == '\\' && i + 1 < text.size()) {
                (in_angle ? angle : plain) += text.substr(i, 2);
                ++i;
                continue;
            }
            if (c == '"') in_quote = false;
            (in_angle ? angle : plain) += c;
            continue;
        }
        if (c == '"') {
            in_quote = true;
            (in_angle ? angle : plain) += c;
        } else if (c == '(') {
            comment = 1;
        } else if (c == '<') {
            in_angle = true;
            have_angle = true;
            angle.clear();
        } else if (c == '>' && in_angle) {
            in_angle = false;
        } else {
            (in_angle ? angle : plain) += c;
        }
    }
    std::string address = have_angle ? angle : plain;
    // Obsolete source routes (RFC 5322 4.4): "@a,@b:user@c" -> "user@c".
    if (!address.empty() && trim(address).starts_with("@"))
        if (auto colon = address.find(':'); colon != std::string::npos) address = address.substr(colon + 1);
    // Folding whitespace outside quotes is not part of an addr-spec.
    std::string out;
    bool q = false;
    for (char c : address) {
        if (c == '"') q = !q;
        if (!q && std::isspace(static_cast<unsigned char>(c))) continue;
        out += c;
    }
    return out;
}

}  // namespace

MessageReader::MessageReader(std::size_t max_size, bool dot_ends) : max_size_(max_size), dot_ends_(dot_ends) {}

bool MessageReader::feed(std::string_view bytes) {
    while (!done_ && !bytes.empty()) {
        auto nl = bytes.find('\n');
        if (nl == std::string_view::npos) {
            partial_.append(bytes);
            // A line without its end is bounded by the size limit too.
            if (max_size_ && partial_.size() > max_size_) too_big_ = true;
            if (too_big_) partial_.clear();
            return !done_;
        }
        partial_.append(bytes.substr(0, nl));
        bytes.remove_prefix(nl + 1);
        line(partial_);
        partial_.clear();
    }
    return !done_;
}

void MessageReader::finish() {
    if (!done_ && !partial_.empty()) line(partial_);
    partial_.clear();
    done_ = true;
}

void MessageReader::line(std::string_view text) {
    if (text.ends_with('\r')) text.remove_suffix(1);
    bool first = first_;
    first_ = false;
    if (first && text.starts_with("From ")) return;
    if (dot_ends_ && text == ".") {
        done_ = true;
        return;
    }
    if (too_big_) return;
    if (max_size_ && out_.size() + text.size() + 2 > max_size_) {
        too_big_ = true;
        out_.clear();
        return;
    }
    for (char c : text) out_ += c == '\r' ? ' ' : c;
    out_ += "\r\n";
}

std::vector<std::string> parse_address_list(std::string_view value) {
    std::vector<std::string> out;
    std::string piece;
    bool in_quote = false, in_angle = false;
    int comment = 0;
    auto flush = [&] {
        std::string a = mailbox_address(piece);
        if (!a.empty()) out.push_back(a);
        piece.clear();
    };
    for (std::size_t i = 0; i < value.size(); ++i) {
        char c = value[i];
        if (comment > 0) {
            piece += c;
            if (c == '\\' && i + 1 < value.size()) piece += value[++i];
            else if (c == '(') ++comment;
            else if (c == ')') --comment;
            continue;
        }
        if (in_quote) {
            piece += c;
            if (c == '\\' && i + 1 < value.size()) piece += value[++i];
            else if (c == '"') in_quote = false;
            continue;
        }
        switch (c) {
            case '"': in_quote = true; piece += c; break;
            case '(': comment = 1; piece += c; break;
            case '<': in_angle = true; piece += c; break;
            case '>': in_angle = false; piece += c; break;
            case ',':
            case ';':
                if (in_angle) piece += c;
                else flush();
                break;
            case ':':
                // A group's display name ends here (RFC 5322 3.4); inside
                // <...> it is a source route's colon.
                if (in_angle) piece += c;
                else piece.clear();
                break;
            default: piece += c;
        }
    }
    flush();
    return out;
}

Extracted extract_recipients(std::string_view message) {
    Extracted x;
    x.message.reserve(message.size());
    // RFC 5322 3.6.6: a resent message is addressed by its Resent- fields;
    // as Postfix's cleanup, those are used when there are any.
    std::vector<std::string> plain, resent;
    bool has_resent = false;
    std::size_t pos = 0;
    enum class Kind { other, to, bcc, resent_to, resent_bcc } kind = Kind::other;
    std::string value;
    auto end_field = [&] {
        if (kind != Kind::other) {
            auto& into = kind == Kind::resent_to || kind == Kind::resent_bcc ? resent : plain;
            for (auto& a : parse_address_list(value)) into.push_back(std::move(a));
        }
        kind = Kind::other;
        value.clear();
    };
    while (pos < message.size()) {
        auto end = message.find("\r\n", pos);
        std::size_t next = end == std::string_view::npos ? message.size() : end + 2;
        std::string_view line = message.substr(pos, (end == std::string_view::npos ? message.size() : end) - pos);
        if (line.empty()) break;
        bool continuation = line[0] == ' ' || line[0] == '\t';
        if (!continuation) {
            end_field();
            if (field_is(line, "to") || field_is(line, "cc")) kind = Kind::to;
            else if (field_is(line, "bcc")) kind = Kind::bcc;
            else if (field_is(line, "resent-to") || field_is(line, "resent-cc")) kind = Kind::resent_to;
            else if (field_is(line, "resent-bcc")) kind = Kind::resent_bcc;
            if (field_name(line).starts_with("resent-")) has_resent = true;
            if (kind != Kind::other) value = line.substr(line.find(':') + 1);
        } else if (kind != Kind::other) {
            value += line;
        }
        if (kind != Kind::bcc && kind != Kind::resent_bcc) x.message.append(message.substr(pos, next - pos));
        pos = next;
    }
    end_field();
    x.message.append(message.substr(pos));
    x.recipients = has_resent ? std::move(resent) : std::move(plain);
    return x;
}

}  // namespace mta::sendmail
