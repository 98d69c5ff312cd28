// A message as milters see it and edit it: its header fields and its body,
// taken from the stored form (CRLF line ends, RFC 5322 2.2 folding kept), and
// written back in that form. No I/O.
//
// Header values are sent to milters as Postfix's milter8.c sends them: the
// text after the colon, its first space removed (unless the filter asked for
// SMFIP_HDR_LEADSPC), folded lines joined by LF. Values a milter gives back
// are stored with CRLF, and a line that would not be a continuation (not
// starting with white space) gets a TAB, so an edit can never start a new
// header field (a header injection).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mta::milter {

struct HeaderField {
    std::string name;
    std::string raw_value;  // after the colon, up to the final CRLF; folding CRLFs kept
};

class EditableMessage {
public:
    // message: header, empty line, body, CRLF line ends (as the queue stores it).
    explicit EditableMessage(std::string_view message);

    const std::vector<HeaderField>& headers() const { return headers_; }
    const std::string& body() const { return body_; }
    // The value to send for a header (see above).
    static std::string value_for_milter(const HeaderField& h, bool leading_space);

    // SMFIR_ADDHEADER: at the end of the header.
    void add_header(std::string_view name, std::string_view value, bool leading_space);
    // SMFIR_INSHEADER: before the index-th field (0: the top); past the end: at the end.
    void insert_header(std::uint32_t index, std::string_view name, std::string_view value, bool leading_space);
    // SMFIR_CHGHEADER: the index-th (1-based) field of that name, any case;
    // an empty value deletes it; a missing one is added (smfi_chgheader(3)).
    void change_header(std::uint32_t index, std::string_view name, std::string_view value, bool leading_space);
    // SMFIR_REPLBODY: bytes as the milter sent them; LF or CRLF line ends.
    void replace_body(std::string_view bytes) { body_ = to_crlf(bytes); }

    std::string serialize() const;
    static std::string to_crlf(std::string_view text);
    // A field name RFC 5322 3.6.8 allows: printable ASCII but colon.
    static bool valid_name(std::string_view name);

private:
    static std::string stored_value(std::string_view value, bool leading_space);
    std::vector<HeaderField> headers_;
    std::string body_;
};

}  // namespace mta::milter
