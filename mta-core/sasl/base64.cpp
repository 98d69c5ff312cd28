// Strict RFC 4648 base64 for SMTP AUTH (see sasl.h). No I/O; fuzzed.
#include <array>

#include "sasl/sasl.h"

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

}  // namespace mta::sasl
