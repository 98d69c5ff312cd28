// make_backend, base64 and the security option words (see sasl.h).
#include "sasl/sasl.h"

#include <array>
#include <stdexcept>

#include "sasl/backends.h"

namespace mta::sasl {

namespace {

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<signed char, 256> decode_table() {
    std::array<signed char, 256> table{};
    for (auto& v : table) v = -1;
    for (std::size_t i = 0; i < alphabet.size(); ++i)
        table[static_cast<unsigned char>(alphabet[i])] = static_cast<signed char>(i);
    return table;
}
constexpr auto decoding = decode_table();

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

}  // namespace

std::string base64_encode(std::string_view raw) {
    std::string out;
    out.reserve((raw.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= raw.size(); i += 3) {
        unsigned v = (static_cast<unsigned char>(raw[i]) << 16) |
                     (static_cast<unsigned char>(raw[i + 1]) << 8) | static_cast<unsigned char>(raw[i + 2]);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    if (raw.size() - i == 1) {
        unsigned v = static_cast<unsigned char>(raw[i]) << 16;
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += "==";
    } else if (raw.size() - i == 2) {
        unsigned v = (static_cast<unsigned char>(raw[i]) << 16) | (static_cast<unsigned char>(raw[i + 1]) << 8);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

// RFC 4648 3.5: padding required, no characters outside the alphabet, and
// the bits that padding leaves over must be zero (canonical encoding), so
// every accepted text has exactly one decoding and encodes back to itself.
std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        bool last = i + 4 == text.size();
        int pad = 0;
        if (last && text[i + 3] == '=') pad = (text[i + 2] == '=') ? 2 : 1;
        int v[4];
        for (int k = 0; k < 4 - pad; ++k) {
            v[k] = decoding[static_cast<unsigned char>(text[i + k])];
            if (v[k] < 0) return std::nullopt;
        }
        if (pad == 0) {
            unsigned n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
            out += static_cast<char>((n >> 16) & 0xff);
            out += static_cast<char>((n >> 8) & 0xff);
            out += static_cast<char>(n & 0xff);
        } else if (pad == 1) {
            if (v[2] & 3) return std::nullopt;
            unsigned n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6);
            out += static_cast<char>((n >> 16) & 0xff);
            out += static_cast<char>((n >> 8) & 0xff);
        } else {
            if (v[1] & 15) return std::nullopt;
            unsigned n = (v[0] << 18) | (v[1] << 12);
            out += static_cast<char>((n >> 16) & 0xff);
        }
    }
    return out;
}

SecurityOptions parse_security_options(std::string_view text) {
    SecurityOptions options;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto end = text.find_first_of(", \t\r\n", pos);
        if (end == std::string_view::npos) end = text.size();
        auto word = text.substr(pos, end - pos);
        pos = end + 1;
        if (word.empty()) continue;
        if (iequals(word, "noplaintext")) options.noplaintext = true;
        else if (iequals(word, "noactive")) options.noactive = true;
        else if (iequals(word, "nodictionary")) options.nodictionary = true;
        else if (iequals(word, "noanonymous")) options.noanonymous = true;
        else if (iequals(word, "forward_secrecy")) options.forward_secrecy = true;
        else if (iequals(word, "mutual_auth")) options.mutual_auth = true;
        else
            throw std::runtime_error("SASL: unknown security option \"" + std::string(word) +
                                     "\" (known: noanonymous, noplaintext, noactive, nodictionary, "
                                     "forward_secrecy, mutual_auth)");
    }
    return options;
}

std::string tls_options_text(const Settings& settings) {
    if (settings.tls_security_options == "$smtpd_sasl_security_options" ||
        settings.tls_security_options == "${smtpd_sasl_security_options}" ||
        settings.tls_security_options == "$(smtpd_sasl_security_options)")
        return settings.security_options;
    return settings.tls_security_options;
}

std::shared_ptr<Backend> make_backend(const Settings& settings, boost::asio::any_io_executor io) {
    // Validate both option lists up front: Postfix would only find out at
    // the first AUTH of a session.
    parse_security_options(settings.security_options);
    parse_security_options(tls_options_text(settings));
    if (settings.type == "cyrus") return make_cyrus_backend(settings, std::move(io));
    if (settings.type == "dovecot") return make_dovecot_backend(settings, std::move(io));
    throw std::runtime_error("smtpd_sasl_type: unsupported SASL type \"" + settings.type +
                             "\" (supported: cyrus, dovecot)");
}

}  // namespace mta::sasl
