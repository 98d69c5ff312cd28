// Postfix's readllines(3), shared by the main.cf and master.cf readers:
// physical lines joined into logical lines. Internal to mta_config.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mta::config::detail {

struct LogicalLine {
    std::string text;  // newlines removed, continuation text appended as is
    int line = 0;      // first physical line
};

inline bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

// A line whose first non-blank character is '#' is a comment and a line of
// only whitespace is skipped; neither ends a logical line. A line starting
// with whitespace continues the previous logical line; with none to
// continue, it is dropped with a warning (as Postfix does).
std::vector<LogicalLine> logical_lines(std::string_view text, const std::string& file,
                                       std::vector<std::string>* warnings);

std::string_view trim(std::string_view s);

}  // namespace mta::config::detail

namespace mta::config::detail {

// Postfix's mystrtokq(3) with "{}": tokens separated by any of seps; a
// "{...}" stretch (nested) keeps its separators; an unclosed brace takes the
// rest of the text.
std::vector<std::string> split_quoted(std::string_view text, std::string_view seps);

// Postfix's extpar(3) with EXTPAR_FLAG_STRIP: "{ text }" -> "text". Returns
// false (and leaves out alone) if the braces do not balance or anything
// follows the closing brace.
bool strip_braces(std::string_view in, std::string& out);

}  // namespace mta::config::detail
