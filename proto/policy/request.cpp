#include "policy/request.h"

#include <array>

namespace proto::policy {

std::string_view Request::get(std::string_view name) const {
    for (std::size_t i = 0; i < size_; ++i)
        if (slots_[i].first == name) return slots_[i].second;
    return {};
}

bool Request::has(std::string_view name) const {
    for (std::size_t i = 0; i < size_; ++i)
        if (slots_[i].first == name) return true;
    return false;
}

void Request::set(std::string_view name, std::string_view value) {
    for (std::size_t i = 0; i < size_; ++i) {
        if (slots_[i].first == name) {
            slots_[i].second.assign(value);
            return;
        }
    }
    append(name, value);
}

void Request::append(std::string_view name, std::string_view value) {
    if (size_ == slots_.size()) slots_.emplace_back();
    slots_[size_].first.assign(name);
    slots_[size_].second.assign(value);
    ++size_;
}

std::string Request::serialize() const {
    std::string out;
    for (const auto& [key, value] : attributes()) {
        out += key;
        out += '=';
        out += value;
        out += '\n';
    }
    out += '\n';
    return out;
}

namespace {

// Attribute names are short words of letters, digits, '_', '-', '.'.
constexpr std::array<bool, 256> kNameChars = [] {
    std::array<bool, 256> t{};
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    t['_'] = t['-'] = t['.'] = true;
    return t;
}();

}  // namespace

RequestParser::Result RequestParser::fail(std::string why, std::size_t consumed) {
    failed_ = true;
    error_ = std::move(why);
    return {ParseStatus::error, consumed};
}

bool RequestParser::finish_line(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) return false;
    for (char c : line.substr(0, eq))
        if (!kNameChars[static_cast<unsigned char>(c)]) return false;
    auto value = line.substr(eq + 1);
    // NUL or a stray CR cannot come from Postfix; refusing them keeps every
    // accepted request identical after a serialize/parse round trip.
    if (value.find('\0') != std::string_view::npos || value.find('\r') != std::string_view::npos)
        return false;
    request_.append(line.substr(0, eq), value);
    return true;
}

RequestParser::Result RequestParser::feed(std::string_view data) {
    if (failed_) return {ParseStatus::error, 0};
    if (done_) return {ParseStatus::done, 0};
    std::size_t pos = 0;
    while (pos < data.size()) {
        auto nl = data.find('\n', pos);
        bool whole = nl != std::string_view::npos;
        std::size_t chunk = (whole ? nl + 1 : data.size()) - pos;
        if (line_.size() + chunk > limits_.max_line)
            return fail("line longer than " + std::to_string(limits_.max_line) + " bytes", pos);
        if (request_bytes_ + chunk > limits_.max_request)
            return fail("request larger than " + std::to_string(limits_.max_request) + " bytes",
                        pos);
        request_bytes_ += chunk;
        if (!whole) {
            line_.append(data.substr(pos));
            return {ParseStatus::need_more, data.size()};
        }
        // A line wholly inside this chunk is parsed in place, without copying.
        std::string_view line;
        if (line_.empty()) {
            line = data.substr(pos, chunk - 1);
        } else {
            line_.append(data.substr(pos, chunk));
            line = std::string_view(line_).substr(0, line_.size() - 1);
        }
        pos += chunk;
        if (line.empty() || line == "\r") {
            if (request_.empty()) return fail("empty request", pos);
            done_ = true;
            line_.clear();
            return {ParseStatus::done, pos};
        }
        if (request_.size() >= limits_.max_attributes)
            return fail("more than " + std::to_string(limits_.max_attributes) + " attributes", pos);
        if (!finish_line(line)) return fail("malformed attribute line", pos);
        line_.clear();
    }
    return {ParseStatus::need_more, pos};
}

Request RequestParser::take() {
    Request out = std::move(request_);
    request_ = Request{};
    reset();
    return out;
}

void RequestParser::reset() {
    request_.clear();
    line_.clear();
    request_bytes_ = 0;
    done_ = false;
    failed_ = false;
    error_.clear();
}

}  // namespace proto::policy
