// See message_edit.h.
#include "milter/message_edit.h"

#include <strings.h>

namespace mta::milter {

EditableMessage::EditableMessage(std::string_view m) {
    std::size_t pos = 0;
    while (pos < m.size()) {
        auto eol = m.find("\r\n", pos);
        if (eol == std::string_view::npos) eol = m.size();
        std::string_view line = m.substr(pos, eol - pos);
        if (line.empty()) {  // the empty line that ends the header
            pos = eol + 2;
            break;
        }
        bool continuation = line[0] == ' ' || line[0] == '\t';
        auto colon = line.find(':');
        if (continuation && !headers_.empty()) {
            headers_.back().raw_value += "\r\n";
            headers_.back().raw_value += line;
        } else if (colon != std::string_view::npos && colon > 0 && valid_name(line.substr(0, colon))) {
            headers_.push_back({std::string(line.substr(0, colon)), std::string(line.substr(colon + 1))});
        } else {
            // Not a header field: the body starts here (RFC 5322 2.1 has no
            // such message; the queue keeps it as the client sent it).
            break;
        }
        pos = eol + 2;
    }
    if (pos < m.size()) body_ = std::string(m.substr(pos));
}

bool EditableMessage::valid_name(std::string_view name) {
    if (name.empty()) return false;
    for (char c : name)
        if (c <= 32 || c >= 127 || c == ':') return false;
    return true;
}

std::string EditableMessage::value_for_milter(const HeaderField& h, bool leading_space) {
    std::string_view v = h.raw_value;
    if (!leading_space && !v.empty() && v[0] == ' ') v.remove_prefix(1);
    std::string out;
    out.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '\r' && i + 1 < v.size() && v[i + 1] == '\n') continue;
        out += v[i];
    }
    return out;
}

std::string EditableMessage::to_crlf(std::string_view text) {
    std::string out;
    out.reserve(text.size() + text.size() / 32);
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '\r') {
            if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
            out += "\r\n";  // a bare CR is a line end too (as Postfix reads it)
        } else if (c == '\n') {
            out += "\r\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string EditableMessage::stored_value(std::string_view value, bool leading_space) {
    std::string v = to_crlf(value);
    // Every line after the first must be a continuation.
    std::string out;
    out.reserve(v.size() + 8);
    for (std::size_t i = 0; i < v.size(); ++i) {
        out += v[i];
        if (v[i] == '\n' && (i + 1 >= v.size() || (v[i + 1] != ' ' && v[i + 1] != '\t'))) out += '\t';
    }
    // A trailing line end would end the field early.
    while (out.size() >= 3 && out.ends_with("\r\n\t")) out.resize(out.size() - 3);
    if (!leading_space) out.insert(out.begin(), ' ');
    return out;
}

void EditableMessage::add_header(std::string_view name, std::string_view value, bool leading_space) {
    headers_.push_back({std::string(name), stored_value(value, leading_space)});
}

void EditableMessage::insert_header(std::uint32_t index, std::string_view name, std::string_view value,
                                    bool leading_space) {
    std::size_t at = std::min<std::size_t>(index, headers_.size());
    headers_.insert(headers_.begin() + static_cast<std::ptrdiff_t>(at),
                    HeaderField{std::string(name), stored_value(value, leading_space)});
}

void EditableMessage::change_header(std::uint32_t index, std::string_view name, std::string_view value,
                                    bool leading_space) {
    if (index == 0) index = 1;  // libmilter treats 0 as 1
    std::uint32_t seen = 0;
    for (auto it = headers_.begin(); it != headers_.end(); ++it) {
        if (it->name.size() != name.size() || ::strncasecmp(it->name.data(), name.data(), name.size()) != 0)
            continue;
        if (++seen != index) continue;
        if (value.empty())
            headers_.erase(it);
        else
            it->raw_value = stored_value(value, leading_space);
        return;
    }
    if (!value.empty()) add_header(name, value, leading_space);
}

std::string EditableMessage::serialize() const {
    std::string out;
    std::size_t n = body_.size() + 2;
    for (const auto& h : headers_) n += h.name.size() + h.raw_value.size() + 3;
    out.reserve(n);
    for (const auto& h : headers_) {
        out += h.name;
        out += ':';
        out += h.raw_value;
        out += "\r\n";
    }
    out += "\r\n";
    out += body_;
    return out;
}

}  // namespace mta::milter
