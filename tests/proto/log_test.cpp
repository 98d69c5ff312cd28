// The log line formats, at the lowest layer: whatever bytes a value holds,
// a JSON line parses and gives back the bytes (log.h's scheme), and a text
// line holds no control, no bidirectional control and no invalid UTF-8.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "daemon/log.h"

using namespace proto;

namespace {

std::string random_bytes(std::mt19937& random, std::size_t max) {
    std::string s(random() % (max + 1), '\0');
    for (auto& c : s) c = static_cast<char>(random() % 256);
    return s;
}

// log.h: \\ is one backslash, \xNN the byte NN.
std::string unescape(const std::string& v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '\\' && i + 1 < v.size() && v[i + 1] == '\\') {
            out += '\\';
            ++i;
        } else if (v[i] == '\\' && i + 3 < v.size() && v[i + 1] == 'x') {
            out += static_cast<char>(std::stoi(v.substr(i + 2, 2), nullptr, 16));
            i += 3;
        } else {
            out += v[i];
        }
    }
    return out;
}

// Code points of well-formed UTF-8, or nullopt.
std::optional<std::u32string> decode_utf8(const std::string& s) {
    std::u32string out;
    for (std::size_t i = 0; i < s.size();) {
        unsigned char b = static_cast<unsigned char>(s[i]);
        int n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + static_cast<std::size_t>(n) > s.size()) return std::nullopt;
        char32_t c = n == 1 ? b : b & (0x7f >> n);
        for (int k = 1; k < n; ++k) {
            unsigned char x = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
            if ((x & 0xc0) != 0x80) return std::nullopt;
            c = (c << 6) | (x & 0x3f);
        }
        out += c;
        i += static_cast<std::size_t>(n);
    }
    return out;
}

class LogFormat : public ::testing::Test {
protected:
    void TearDown() override { log::set_format(log::Format::text); }
};

}  // namespace

TEST_F(LogFormat, JsonLinesParseAndGiveBackEveryByte) {
    log::set_format(log::Format::json);
    std::mt19937 random(7);
    for (int i = 0; i < 20000; ++i) {
        std::string a = random_bytes(random, 40), b = random_bytes(random, 40);
        std::string m = random_bytes(random, 20);
        std::string line = log::format_event(log::Level::warning, m, {{"a", a}, {"b", b}});
        ASSERT_EQ(line.back(), '\n');
        line.pop_back();
        ASSERT_EQ(line.find('\n'), std::string::npos);
        nlohmann::json j;
        ASSERT_NO_THROW(j = nlohmann::json::parse(line)) << line;
        EXPECT_EQ(unescape(j["a"].get<std::string>()), a);
        EXPECT_EQ(unescape(j["b"].get<std::string>()), b);
        EXPECT_EQ(unescape(j["msg"].get<std::string>()), m);
    }
}

TEST_F(LogFormat, JsonSchemeExamples) {
    log::set_format(log::Format::json);
    auto value = [](std::string v) {
        auto line = log::format_event(log::Level::info, "m", {{"v", v}});
        return nlohmann::json::parse(line)["v"].get<std::string>();
    };
    EXPECT_EQ(value("\xff\xfe\xc3\x28@x.example"), "\\xff\\xfe\\xc3(@x.example");
    EXPECT_EQ(value("a\\xff"), "a\\\\xff");               // a literal backslash is doubled
    EXPECT_EQ(value("caf\xc3\xa9"), "caf\xc3\xa9");        // UTF-8 is kept
    EXPECT_EQ(value("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate is not UTF-8
    EXPECT_EQ(value("\xc0\xaf"), "\\xc0\\xaf");            // nor an overlong form
}

TEST_F(LogFormat, TextLinesHoldNoControlsAndNoBidiControls) {
    log::set_format(log::Format::text);
    std::mt19937 random(11);
    std::vector<std::string> pieces = {"\xe2\x80\xae", "\xe2\x81\xa6", "\xe2\x80\x8f", "\xd8\x9c",
                                       "\xc2\x9b",     "\x1b[2J",      "\\",          "\n",
                                       " x=y",         "\"",           "\x7f"};
    for (int i = 0; i < 20000; ++i) {
        std::string v = random_bytes(random, 30);
        v += pieces[random() % pieces.size()];
        std::string m = pieces[random() % pieces.size()] + random_bytes(random, 10);
        std::string line = log::format_event(log::Level::info, m, {{"v", v}, {"w", "plain"}});
        ASSERT_EQ(line.back(), '\n');
        line.pop_back();
        auto cps = decode_utf8(line);
        ASSERT_TRUE(cps) << line;
        for (char32_t c : *cps) {
            ASSERT_FALSE(c < 0x20 || (c >= 0x7f && c <= 0x9f)) << line;
            ASSERT_FALSE(c == 0x061c || c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
                         (c >= 0x2066 && c <= 0x2069))
                << line;
        }
        // The fields cannot be forged: the last one is still the real one.
        ASSERT_TRUE(line.ends_with(" w=plain")) << line;
    }
}

TEST_F(LogFormat, TextEscapesBackslashAndControls) {
    log::set_format(log::Format::text);
    auto line = log::format_event(log::Level::info, "m\x1b]0;x\x07", {{"v", "a\\b\xe2\x80\xae\x01"}});
    EXPECT_NE(line.find(" v=\"a\\\\b\\u202e\\x01\""), std::string::npos) << line;
    EXPECT_NE(line.find("m\\x1b]0;x\\x07"), std::string::npos) << line;
}
