// SipHash-2-4 through OpenSSL; see siphash.h.
#include "hash/siphash.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <stdexcept>

namespace proto::hash {

namespace {

EVP_MAC* siphash_mac() {
    // Fetched once: fetching looks the algorithm up in the provider tables.
    static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "SIPHASH", nullptr);
    if (!mac) throw std::runtime_error("OpenSSL provides no SIPHASH");
    return mac;
}

std::uint64_t load_le64(const unsigned char* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

}  // namespace

struct SipHash24::Context {
    EVP_MAC_CTX* keyed = nullptr;  // keyed once; every call works on a copy
    ~Context() { EVP_MAC_CTX_free(keyed); }
};

SipHash24::SipHash24(const Key& key) {
    auto context = std::make_shared<Context>();
    context->keyed = EVP_MAC_CTX_new(siphash_mac());
    // 8 bytes of output (OpenSSL's default is 16); 2 and 4 rounds are its default.
    std::size_t size = 8;
    unsigned int c_rounds = 2, d_rounds = 4;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                           OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_C_ROUNDS, &c_rounds),
                           OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_D_ROUNDS, &d_rounds),
                           OSSL_PARAM_construct_end()};
    if (!context->keyed || !EVP_MAC_init(context->keyed, key.data(), key.size(), params))
        throw std::runtime_error("OpenSSL SIPHASH: cannot set the key");
    context_ = std::move(context);
}

std::uint64_t SipHash24::operator()(std::string_view data) const {
    std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> ctx(EVP_MAC_CTX_dup(context_->keyed),
                                                                  &EVP_MAC_CTX_free);
    unsigned char out[8];
    std::size_t n = 0;
    if (!ctx || !EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(data.data()),
                                data.size()) ||
        !EVP_MAC_final(ctx.get(), out, &n, sizeof out) || n != sizeof out)
        throw std::runtime_error("OpenSSL SIPHASH failed");
    return load_le64(out);
}

std::uint64_t siphash24(const SipHash24::Key& key, std::string_view data) {
    return SipHash24(key)(data);
}

std::string hex64(std::uint64_t value) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(16, '0');
    for (int i = 15; i >= 0; --i) {
        out[static_cast<std::size_t>(i)] = digits[value & 0xf];
        value >>= 4;
    }
    return out;
}

}  // namespace proto::hash
