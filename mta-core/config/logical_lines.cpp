// Postfix's readllines(3): see logical_lines.h.
#include "logical_lines.h"

namespace mta::config::detail {

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

std::vector<LogicalLine> logical_lines(std::string_view text, const std::string& file,
                                       std::vector<std::string>* warnings) {
    std::vector<LogicalLine> out;
    bool open = false;  // the last logical line may still be continued
    int number = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        ++number;
        std::string_view body = trim(line);
        if (body.empty() || body.front() == '#') continue;
        if (is_space(line.front())) {
            if (open) {
                out.back().text.append(line);
            } else if (warnings) {
                warnings->push_back(file + ": logical line must not start with whitespace: \"" +
                                    std::string(line) + "\"");
            }
            continue;
        }
        out.push_back({std::string(line), number});
        open = true;
    }
    return out;
}

}  // namespace mta::config::detail
