// make_backend and the security option words (see sasl.h).
#include "sasl/sasl.h"

#include <stdexcept>

#include "sasl/backends.h"

namespace mta::sasl {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

}  // namespace

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
