// Dovecot authentication protocol codec (see dovecot_protocol.h).
#include "sasl/dovecot_protocol.h"

#include <charconv>
#include <vector>

namespace mta::sasl::dovecot {

namespace {

std::vector<std::string_view> split_tabs(std::string_view line) {
    std::vector<std::string_view> fields;
    std::size_t pos = 0;
    while (true) {
        auto end = line.find('\t', pos);
        if (end == std::string_view::npos) {
            fields.push_back(line.substr(pos));
            return fields;
        }
        fields.push_back(line.substr(pos, end - pos));
        pos = end + 1;
    }
}

template <class T>
bool parse_number(std::string_view text, T& value) {
    if (text.empty() || text.size() > 20) return false;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    return ec == std::errc() && ptr == text.data() + text.size();
}

bool starts_with(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

unsigned property(std::string_view name) {
    struct Entry {
        std::string_view name;
        unsigned bit;
    };
    static constexpr Entry table[] = {
        {"plaintext", plaintext},         {"active", active},           {"dictionary", dictionary},
        {"anonymous", anonymous},         {"forward-secrecy", forward_secrecy},
        {"mutual-auth", mutual_auth},     {"private", private_mech},
    };
    for (const auto& e : table)
        if (iequals(name, e.name)) return e.bit;
    return 0;  // unknown properties are ignored, as Postfix does
}

// OK, CONT, FAIL: id, then args.
bool parse_request_reply(Reply& reply, const std::vector<std::string_view>& fields, std::string& error) {
    if (fields.size() < 2 || !parse_number(fields[1], reply.id)) {
        error = "reply without a valid request id";
        return false;
    }
    if (reply.kind == Reply::Kind::cont) {
        if (fields.size() < 3) {
            error = "CONT without data";
            return false;
        }
        reply.data = std::string(fields[2]);
        return true;
    }
    for (std::size_t i = 2; i < fields.size(); ++i) {
        auto f = fields[i];
        if (starts_with(f, "user=")) reply.user = tab_unescape(f.substr(5));
        else if (starts_with(f, "reason=")) reply.reason = tab_unescape(f.substr(7));
        else if (starts_with(f, "resp=")) reply.data = std::string(f.substr(5));
        else if (f == "temp") reply.temporary = true;
    }
    return true;
}

}  // namespace

std::string tab_escape(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        switch (c) {
            case '\001': out += "\0011"; break;
            case '\t': out += "\001t"; break;
            case '\r': out += "\001r"; break;
            case '\n': out += "\001n"; break;
            default: out += c;
        }
    }
    return out;
}

std::string tab_unescape(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (std::size_t i = 0; i < value.size(); ++i) {
        if (value[i] != '\001' || i + 1 == value.size()) {
            out += value[i];
            continue;
        }
        switch (value[++i]) {
            case '1': out += '\001'; break;
            case 't': out += '\t'; break;
            case 'r': out += '\r'; break;
            case 'n': out += '\n'; break;
            default: out += value[i];  // Dovecot keeps the character itself
        }
    }
    return out;
}

std::optional<Reply> parse_line(std::string_view line, std::string& error) {
    if (line.find('\0') != std::string_view::npos) {
        error = "NUL byte in a line";
        return std::nullopt;
    }
    auto fields = split_tabs(line);
    Reply reply;
    auto command = fields[0];
    if (command == "VERSION") {
        reply.kind = Reply::Kind::version;
        if (fields.size() < 3 || !parse_number(fields[1], reply.major) || !parse_number(fields[2], reply.minor)) {
            error = "malformed VERSION line";
            return std::nullopt;
        }
    } else if (command == "MECH") {
        reply.kind = Reply::Kind::mech;
        if (fields.size() < 2 || fields[1].empty()) {
            error = "MECH without a name";
            return std::nullopt;
        }
        reply.mechanism = std::string(fields[1]);
        for (std::size_t i = 2; i < fields.size(); ++i) reply.properties |= property(fields[i]);
    } else if (command == "SPID") {
        reply.kind = Reply::Kind::spid;
    } else if (command == "CUID") {
        reply.kind = Reply::Kind::cuid;
    } else if (command == "COOKIE") {
        reply.kind = Reply::Kind::cookie;
    } else if (command == "DONE") {
        reply.kind = Reply::Kind::done;
    } else if (command == "OK" || command == "CONT" || command == "FAIL") {
        reply.kind = command == "OK" ? Reply::Kind::ok : command == "CONT" ? Reply::Kind::cont : Reply::Kind::fail;
        if (!parse_request_reply(reply, fields, error)) return std::nullopt;
    } else {
        reply.kind = Reply::Kind::other;  // unknown commands are ignored (protocol 1.x rule)
    }
    return reply;
}

bool Parser::feed(std::string_view bytes) {
    if (broken()) return false;
    while (!bytes.empty()) {
        auto lf = bytes.find('\n');
        auto chunk = bytes.substr(0, lf == std::string_view::npos ? bytes.size() : lf);
        if (partial_.size() + chunk.size() > max_line) {
            error_ = "line longer than " + std::to_string(max_line) + " bytes";
            partial_.clear();
            return false;
        }
        partial_.append(chunk);
        if (lf == std::string_view::npos) return true;
        bytes.remove_prefix(lf + 1);
        std::string why;
        auto reply = parse_line(partial_, why);
        partial_.clear();
        if (!reply) {
            error_ = why;
            return false;
        }
        ready_.push_back(std::move(*reply));
    }
    return true;
}

std::optional<Reply> Parser::next() {
    if (ready_.empty()) return std::nullopt;
    Reply reply = std::move(ready_.front());
    ready_.pop_front();
    return reply;
}

std::string handshake(unsigned long pid) {
    return "VERSION\t1\t2\nCPID\t" + std::to_string(pid) + "\n";
}

std::string format_auth(const AuthRequest& r) {
    std::string line = "AUTH\t" + std::to_string(r.id) + "\t" + tab_escape(r.mechanism) +
                       "\tservice=" + tab_escape(r.service) + "\tnologin";
    auto add = [&line](std::string_view key, const std::string& value) {
        if (value.empty()) return;
        line += '\t';
        line += key;
        line += '=';
        line += tab_escape(value);
    };
    add("lip", r.local_ip);
    add("rip", r.remote_ip);
    add("lport", r.local_port);
    add("rport", r.remote_port);
    if (r.secured) line += "\tsecured";
    if (r.initial_response) line += "\tresp=" + tab_escape(*r.initial_response);
    line += '\n';
    return line;
}

std::string format_cont(unsigned long id, std::string_view response_base64) {
    return "CONT\t" + std::to_string(id) + "\t" + tab_escape(response_base64) + "\n";
}

}  // namespace mta::sasl::dovecot
