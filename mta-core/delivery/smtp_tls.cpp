// Client-side TLS; see smtp_tls.h.
#include "delivery/smtp_tls.h"

#include <openssl/x509v3.h>

#include <sstream>
#include <stdexcept>

namespace mta::delivery {

namespace ssl = boost::asio::ssl;

std::optional<TlsLevel> parse_tls_level(std::string_view text) {
    if (text == "none") return TlsLevel::none;
    if (text == "may") return TlsLevel::may;
    if (text == "encrypt") return TlsLevel::encrypt;
    if (text == "verify") return TlsLevel::verify;
    if (text == "secure") return TlsLevel::secure;
    return std::nullopt;
}

const char* tls_level_name(TlsLevel level) {
    switch (level) {
        case TlsLevel::none: return "none";
        case TlsLevel::may: return "may";
        case TlsLevel::encrypt: return "encrypt";
        case TlsLevel::verify: return "verify";
        case TlsLevel::secure: return "secure";
    }
    return "none";
}

namespace {

std::vector<std::string> split(std::string_view s, std::string_view seps) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (seps.find(c) != std::string_view::npos) {
            if (!cur.empty()) out.push_back(cur);
            cur.clear();
        } else {
            cur.push_back(c);
        }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

}  // namespace

std::optional<TlsPolicy> parse_tls_policy(std::string_view value, const TlsPolicy& base,
                                          const std::vector<std::string>& verify_match,
                                          const std::vector<std::string>& secure_match, std::string* error) {
    auto words = split(value, " \t,");
    if (words.empty()) {
        if (error) *error = "empty TLS policy";
        return std::nullopt;
    }
    auto level = parse_tls_level(words[0]);
    if (!level) {
        if (error) *error = "unsupported TLS security level \"" + words[0] + "\"";
        return std::nullopt;
    }
    TlsPolicy p = base;
    p.level = *level;
    p.match = *level == TlsLevel::secure ? secure_match : verify_match;
    for (std::size_t i = 1; i < words.size(); ++i) {
        // TLS_README: "match=" names are separated by ":" in policy tables.
        if (words[i].starts_with("match=")) p.match = split(words[i].substr(6), ":");
    }
    return p;
}

std::shared_ptr<ssl::context> make_client_context(const std::string& ca_file, const std::string& ca_path,
                                                  const std::string& protocols) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    int floor = TLS1_2_VERSION;
    if (protocols.find(">=TLSv1.3") != std::string::npos || protocols.find("!TLSv1.2") != std::string::npos)
        floor = TLS1_3_VERSION;
    SSL_CTX_set_min_proto_version(ctx->native_handle(), floor);
    // The level decides after the handshake (examine()); a failed
    // verification must not stop "may" or "encrypt".
    ctx->set_verify_mode(ssl::verify_none);
    if (!ca_file.empty() || !ca_path.empty()) {
        if (SSL_CTX_load_verify_locations(ctx->native_handle(), ca_file.empty() ? nullptr : ca_file.c_str(),
                                          ca_path.empty() ? nullptr : ca_path.c_str()) != 1)
            throw std::runtime_error("cannot load smtp_tls_CAfile/smtp_tls_CApath " + ca_file + " " + ca_path);
    }
    return ctx;
}

TlsOutcome examine(SSL* ssl, const std::vector<std::string>& match, const std::string& hostname,
                   const std::string& nexthop) {
    TlsOutcome out;
    const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
    int alg_bits = 0;
    int bits = cipher ? SSL_CIPHER_get_bits(cipher, &alg_bits) : 0;
    std::ostringstream s;
    s << SSL_get_version(ssl) << " with cipher " << (cipher ? SSL_CIPHER_get_name(cipher) : "unknown") << " ("
      << bits << "/" << alg_bits << " bits)";
    out.summary = s.str();
    X509* cert = SSL_get1_peer_certificate(ssl);
    if (!cert) return out;
    out.trusted = SSL_get_verify_result(ssl) == X509_V_OK;
    char cn[256] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    out.peer_cn = cn;
    if (out.trusted) {
        for (const auto& m : match) {
            std::string name;
            if (m == "hostname") name = hostname;
            else if (m == "nexthop") name = nexthop;
            else if (m == "dot-nexthop") name = "." + nexthop;
            else name = m;
            // X509_check_host: a name with a leading dot matches its subdomains.
            if (!name.empty() && name != "." &&
                X509_check_host(cert, name.c_str(), name.size(), 0, nullptr) == 1) {
                out.verified = true;
                break;
            }
        }
    }
    X509_free(cert);
    return out;
}

}  // namespace mta::delivery
