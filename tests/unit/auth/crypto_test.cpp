#include "auth/crypto.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <string>

using namespace authshim::auth;

TEST_CASE("crypto: digests match FIPS / RFC test vectors", "[crypto]") {
    using crypto::hash_kind;
    CHECK(crypto::hex_hash(hash_kind::md5, {""}) == "d41d8cd98f00b204e9800998ecf8427e");
    CHECK(crypto::hex_hash(hash_kind::md5, {"abc"}) == "900150983cd24fb0d6963f7d28e17f72");
    CHECK(crypto::hex_hash(hash_kind::sha256, {"abc"}) ==
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    // FIPS 180-4 SHA-512/256("abc"): not the first half of SHA-512("abc").
    CHECK(crypto::hex_hash(hash_kind::sha512_256, {"abc"}) ==
          "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23");
    // Parts are joined with ':'.
    CHECK(crypto::hex_hash(hash_kind::md5, {"a", "b", ""}) ==
          crypto::hex_hash(hash_kind::md5, {"a:b:"}));
}

TEST_CASE("crypto: random bytes and cleansing", "[crypto]") {
    std::array<unsigned char, 32> a{}, b{};
    REQUIRE(crypto::random_bytes(a));
    REQUIRE(crypto::random_bytes(b));
    CHECK(a != b);
    CHECK(crypto::random_bytes({}));
    std::string secret = "hunter2";
    crypto::cleanse(secret);
    CHECK(secret.empty());
}
