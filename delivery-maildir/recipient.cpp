// Recipient address checks; see recipient.h.
#include "recipient.h"

namespace maildir {

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

bool safe_component(std::string_view text) {
    if (text.empty() || text.size() > kMaxComponent) return false;
    if (text.front() == '.') return false;  // ".", "..", hidden files, Maildir++ folders
    if (text.find("..") != std::string_view::npos) return false;
    for (unsigned char c : text)
        if (c <= 32 || c >= 127 || c == '/' || c == '\\') return false;
    return true;
}

bool safe_folder(std::string_view text) {
    return safe_component(text) && text.back() != '.';
}

SplitLocal split_extension(std::string_view local, std::string_view delimiters) {
    SplitLocal s;
    auto at = delimiters.empty() ? std::string_view::npos : local.find_first_of(delimiters);
    if (at == std::string_view::npos) {
        s.user = std::string(local);
        return s;
    }
    s.user = std::string(local.substr(0, at));
    s.extension = std::string(local.substr(at + 1));
    s.has_delimiter = true;
    return s;
}

}  // namespace maildir
