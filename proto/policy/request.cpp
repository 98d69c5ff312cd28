#include "policy/request.h"

#include <algorithm>

namespace proto::policy {

std::string_view Request::get(std::string_view name) const {
    for (const auto& [key, value] : attributes_)
        if (key == name) return value;
    return {};
}

bool Request::has(std::string_view name) const {
    return std::any_of(attributes_.begin(), attributes_.end(),
                       [&](const Attribute& a) { return a.first == name; });
}

void Request::set(std::string_view name, std::string_view value) {
    for (auto& [key, val] : attributes_) {
        if (key == name) {
            val.assign(value);
            return;
        }
    }
    attributes_.emplace_back(std::string(name), std::string(value));
}

std::string Request::serialize() const {
    std::string out;
    for (const auto& [key, value] : attributes_) {
        out += key;
        out += '=';
        out += value;
        out += '\n';
    }
    out += '\n';
    return out;
}

RequestParser::Result RequestParser::fail(std::string why, std::size_t consumed) {
    failed_ = true;
    error_ = std::move(why);
    return {ParseStatus::error, consumed};
}

bool RequestParser::finish_line(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) return false;
    auto name = line.substr(0, eq);
    // Attribute names are short lower-case words; anything else is not Postfix.
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.';
        if (!ok) return false;
    }
    // NUL or a stray CR cannot come from Postfix; refusing them keeps every
    // accepted request identical after a serialize/parse round trip.
    if (line.find_first_of(std::string_view("\0\r", 2)) != std::string_view::npos) return false;
    request_.append(name, line.substr(eq + 1));
    return true;
}

RequestParser::Result RequestParser::feed(std::string_view data) {
    if (failed_) return {ParseStatus::error, 0};
    if (done_) return {ParseStatus::done, 0};
    std::size_t pos = 0;
    while (pos < data.size()) {
        auto nl = data.find('\n', pos);
        std::size_t chunk_end = nl == std::string_view::npos ? data.size() : nl + 1;
        std::size_t chunk = chunk_end - pos;
        if (line_.size() + chunk > limits_.max_line)
            return fail("line longer than " + std::to_string(limits_.max_line) + " bytes", pos);
        if (request_bytes_ + chunk > limits_.max_request)
            return fail("request larger than " + std::to_string(limits_.max_request) + " bytes",
                        pos);
        request_bytes_ += chunk;
        line_.append(data.substr(pos, chunk));
        pos = chunk_end;
        if (nl == std::string_view::npos) break;

        std::string_view line(line_);
        line.remove_suffix(1);  // LF
        if (line.empty() || line == "\r") {
            if (request_.empty()) return fail("empty request", pos);
            done_ = true;
            line_.clear();
            return {ParseStatus::done, pos};
        }
        if (request_.attributes().size() >= limits_.max_attributes)
            return fail("more than " + std::to_string(limits_.max_attributes) + " attributes", pos);
        if (!finish_line(line)) return fail("malformed attribute line", pos);
        line_.clear();
    }
    return {ParseStatus::need_more, pos};
}

Request RequestParser::take() {
    Request out = std::move(request_);
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
