// libsasl2's client side for SMTP AUTH; see sasl_client.h.
#include "delivery/sasl_client.h"

// libsasl2's own header: <sasl/sasl.h> would find this project's
// mta-core/sasl/sasl.h first on the include path; saslutil.h includes it.
#include <sasl/saslutil.h>

#include <cstring>
#include <mutex>
#include <vector>

#include "sasl/sasl.h"

namespace mta::delivery {

namespace {

// Once per process; sasl_done is never called (as the server side: a second
// initialisation is not reliable across plugins).
int client_init() {
    static std::once_flag once;
    static int rc = SASL_FAIL;
    std::call_once(once, [] { rc = sasl_client_init(nullptr); });
    return rc;
}

}  // namespace

struct SaslClient::State {
    SaslCredentials credentials;
    std::vector<unsigned char> secret;  // sasl_secret_t: length, then the password
    std::vector<sasl_callback_t> callbacks;
    sasl_conn_t* conn = nullptr;
    int init_rc = SASL_OK;

    static int user(void* context, int id, const char** result, unsigned* len) {
        auto* s = static_cast<State*>(context);
        if (id != SASL_CB_USER && id != SASL_CB_AUTHNAME) return SASL_BADPARAM;
        *result = s->credentials.user.c_str();
        if (len) *len = static_cast<unsigned>(s->credentials.user.size());
        return SASL_OK;
    }
    static int pass(sasl_conn_t*, void* context, int id, sasl_secret_t** psecret) {
        auto* s = static_cast<State*>(context);
        if (id != SASL_CB_PASS) return SASL_BADPARAM;
        *psecret = reinterpret_cast<sasl_secret_t*>(s->secret.data());
        return SASL_OK;
    }
};

SaslClient::SaslClient(const std::string& server_name, const SaslCredentials& credentials,
                       const SaslSecurity& security)
    : state_(std::make_unique<State>()) {
    State& s = *state_;
    s.credentials = credentials;
    s.secret.resize(sizeof(sasl_secret_t) + credentials.password.size() + 1, 0);
    auto* secret = reinterpret_cast<sasl_secret_t*>(s.secret.data());
    secret->len = credentials.password.size();
    std::memcpy(secret->data, credentials.password.data(), credentials.password.size());
    // libsasl2 takes every callback as int (*)() and calls it by its id's type.
    using generic = int (*)();
    auto as_generic = [](auto fn) { return reinterpret_cast<generic>(reinterpret_cast<void (*)()>(fn)); };
    s.callbacks = {
        {SASL_CB_USER, as_generic(&State::user), &s},
        {SASL_CB_AUTHNAME, as_generic(&State::user), &s},
        {SASL_CB_PASS, as_generic(&State::pass), &s},
        {SASL_CB_LIST_END, nullptr, nullptr},
    };
    s.init_rc = client_init();
    if (s.init_rc != SASL_OK) return;
    s.init_rc = sasl_client_new("smtp", server_name.c_str(), nullptr, nullptr, s.callbacks.data(), 0, &s.conn);
    if (s.init_rc != SASL_OK) return;
    sasl_security_properties_t props{};
    props.min_ssf = 0;
    props.max_ssf = 1;  // no security layer (Postfix's smtp does the same)
    props.maxbufsize = 0;
    props.security_flags = (security.noplaintext ? SASL_SEC_NOPLAINTEXT : 0) |
                           (security.noanonymous ? SASL_SEC_NOANONYMOUS : 0) |
                           (security.nodictionary ? SASL_SEC_NODICTIONARY : 0) |
                           (security.noactive ? SASL_SEC_NOACTIVE : 0) |
                           (security.mutual_auth ? SASL_SEC_MUTUAL_AUTH : 0);
    s.init_rc = sasl_setprop(s.conn, SASL_SEC_PROPS, &props);
}

SaslClient::~SaslClient() {
    if (state_->conn) sasl_dispose(&state_->conn);
}

SaslClient::Start SaslClient::start(const std::string& mechanisms) {
    Start out;
    if (state_->init_rc != SASL_OK) {
        out.error = std::string("SASL client initialisation failed: ") + sasl_errstring(state_->init_rc, nullptr, nullptr);
        return out;
    }
    const char* clientout = nullptr;
    unsigned clientoutlen = 0;
    const char* chosen = nullptr;
    int rc = sasl_client_start(state_->conn, mechanisms.c_str(), nullptr, &clientout, &clientoutlen, &chosen);
    if (rc != SASL_OK && rc != SASL_CONTINUE) {
        out.error = rc == SASL_NOMECH ? std::string("no mechanism available")
                                      : std::string(sasl_errdetail(state_->conn));
        return out;
    }
    out.mechanism = chosen ? chosen : "";
    if (clientout) out.response = sasl::base64_encode(std::string_view(clientout, clientoutlen));
    return out;
}

std::optional<std::string> SaslClient::step(std::string_view challenge, std::string& error) {
    auto raw = sasl::base64_decode(challenge);
    if (!raw) {
        error = "malformed server challenge";
        return std::nullopt;
    }
    const char* clientout = nullptr;
    unsigned clientoutlen = 0;
    int rc = sasl_client_step(state_->conn, raw->data(), static_cast<unsigned>(raw->size()), nullptr, &clientout,
                              &clientoutlen);
    if (rc != SASL_OK && rc != SASL_CONTINUE) {
        error = sasl_errdetail(state_->conn);
        return std::nullopt;
    }
    return sasl::base64_encode(std::string_view(clientout ? clientout : "", clientoutlen));
}

}  // namespace mta::delivery
