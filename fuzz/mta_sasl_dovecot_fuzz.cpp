// Fuzz the Dovecot auth protocol codec (what mta-core reads from the auth
// server) and the SMTP AUTH base64. The first byte chooses where the input
// is split, so lines straddle reads. Checked: a broken stream stays broken;
// no line over the limit is ever accepted; TAB escaping removes every
// separator and undoes itself; a request line has exactly one LF, at its
// end; base64 that decodes encodes back to the same text.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sasl/dovecot_protocol.h"
#include "sasl/sasl.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    std::size_t cut = data[0] % (input.size() + 1);
    namespace dc = mta::sasl::dovecot;
    dc::Parser parser;
    bool ok = parser.feed(input.substr(0, cut));
    if (ok) ok = parser.feed(input.substr(cut));
    else if (parser.feed(input.substr(cut))) std::abort();  // broken stays broken
    while (auto reply = parser.next()) {
        if (reply->kind == dc::Reply::Kind::mech && reply->mechanism.empty()) std::abort();
        if (reply->data.size() > dc::max_line) std::abort();
    }
    auto escaped = dc::tab_escape(input);
    if (escaped.find_first_of("\t\r\n") != std::string::npos) std::abort();
    if (dc::tab_unescape(escaped) != input) std::abort();
    dc::AuthRequest request;
    request.id = cut;
    request.mechanism = std::string(input.substr(0, cut));
    request.service = "smtp";
    request.remote_ip = std::string(input.substr(cut));
    request.initial_response = std::string(input);
    auto line = dc::format_auth(request);
    if (line.find('\n') != line.size() - 1) std::abort();
    auto cont = dc::format_cont(cut, input);
    if (cont.find('\n') != cont.size() - 1) std::abort();
    if (auto decoded = mta::sasl::base64_decode(input)) {
        if (mta::sasl::base64_encode(*decoded) != input) std::abort();
    }
    auto encoded = mta::sasl::base64_encode(input);
    auto back = mta::sasl::base64_decode(encoded);
    if (!back || *back != input) std::abort();
    return 0;
}
