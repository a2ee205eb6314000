// The static OpenSSL of the Windows build (scripts/build-openssl-mingw.sh): TLS works, and the
// legacy provider (MD4, needed for NTLM later) is built in, since the build passes no-module.
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>

#include <catch2/catch.hpp>

#include <array>
#include <string>

TEST_CASE("windows: static OpenSSL 3 with TLS and the built-in legacy provider", "[openssl]") {
    CHECK(OPENSSL_VERSION_MAJOR == 3);

    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    REQUIRE(ctx != nullptr);
    SSL_CTX_free(ctx);

    OSSL_PROVIDER* legacy = OSSL_PROVIDER_load(nullptr, "legacy");
    OSSL_PROVIDER* base = OSSL_PROVIDER_load(nullptr, "default");
    REQUIRE(legacy != nullptr);
    REQUIRE(base != nullptr);
    EVP_MD* md4 = EVP_MD_fetch(nullptr, "MD4", "provider=legacy");
    REQUIRE(md4 != nullptr);
    // RFC 1320 test vector: MD4("abc").
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    const std::string input = "abc";
    REQUIRE(EVP_Digest(input.data(), input.size(), digest.data(), &length, md4, nullptr) == 1);
    REQUIRE(length == 16);
    static const char* hex = "0123456789abcdef";
    std::string text;
    for (unsigned int i = 0; i < length; ++i) {
        text += hex[digest[i] >> 4];
        text += hex[digest[i] & 0x0f];
    }
    CHECK(text == "a448017aaf21d8525fc10ae87aa6729d");
    EVP_MD_free(md4);
    OSSL_PROVIDER_unload(legacy);
    OSSL_PROVIDER_unload(base);
}
