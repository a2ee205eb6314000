#include "auth/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <climits>
#include <memory>

namespace authshim::auth::crypto {
namespace {

const EVP_MD* md_of(hash_kind kind) noexcept {
    switch (kind) {
    case hash_kind::md5:
        return EVP_md5();
    case hash_kind::sha256:
        return EVP_sha256();
    case hash_kind::sha512_256:
        return EVP_sha512_256();
    }
    return nullptr;
}

struct ctx_deleter {
    void operator()(EVP_MD_CTX* ctx) const noexcept { EVP_MD_CTX_free(ctx); }
};

} // namespace

std::optional<std::string> hex_hash(hash_kind kind, std::initializer_list<std::string_view> parts) {
    const EVP_MD* md = md_of(kind);
    std::unique_ptr<EVP_MD_CTX, ctx_deleter> ctx(EVP_MD_CTX_new());
    if (md == nullptr || !ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) return {};
    bool first = true;
    for (std::string_view part : parts) {
        if (!first && EVP_DigestUpdate(ctx.get(), ":", 1) != 1) return {};
        first = false;
        if (!part.empty() && EVP_DigestUpdate(ctx.get(), part.data(), part.size()) != 1) return {};
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(ctx.get(), digest, &length) != 1) return {};
    static constexpr char lower_hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(length * 2u);
    for (unsigned int i = 0; i < length; ++i) {
        out += lower_hex[digest[i] >> 4];
        out += lower_hex[digest[i] & 0x0f];
    }
    OPENSSL_cleanse(digest, sizeof digest); // may be an HA1, which is password-equivalent
    return out;
}

bool random_bytes(std::span<unsigned char> out) noexcept {
    if (out.size() > static_cast<std::size_t>(INT_MAX)) return false;
    return out.empty() || RAND_bytes(out.data(), static_cast<int>(out.size())) == 1;
}

void cleanse(std::string& secret) noexcept {
    if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
    secret.clear();
}

} // namespace authshim::auth::crypto
