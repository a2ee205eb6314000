#include "auth/basic.hpp"

#include <catch2/catch.hpp>

using authshim::auth::basic_authorization;

// Expected values computed independently with Python:
//   base64.b64encode((user + ":" + password).encode("utf-8")).decode()

TEST_CASE("Basic: RFC 7617 examples", "[basic]") {
    CHECK(basic_authorization("Aladdin", "open sesame") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    // RFC 7617 §2.1 with charset=UTF-8: "test" / "123£".
    CHECK(basic_authorization("test", "123\xC2\xA3") == "Basic dGVzdDoxMjPCow==");
}

TEST_CASE("Basic: domain user and a password full of special characters", "[basic]") {
    // Password: p@ss w0rd! 100% :"\' äöü€  (UTF-8)
    const std::string password = "p@ss w0rd! 100% :\"\\' \xC3\xA4\xC3\xB6\xC3\xBC\xE2\x82\xAC";
    CHECK(basic_authorization("CORP\\svc-pki", password) ==
          "Basic Q09SUFxzdmMtcGtpOnBAc3MgdzByZCEgMTAwJSA6IlwnIMOkw7bDvOKCrA==");
}

TEST_CASE("Basic: empty parts and every padding length", "[basic]") {
    CHECK(basic_authorization("", "") == "Basic Og==");
    CHECK(basic_authorization("a", "") == "Basic YTo=");
    CHECK(basic_authorization("ab", "") == "Basic YWI6");
    CHECK(basic_authorization("u", "p") == "Basic dTpw");
    // Bytes are passed through untouched, including high and NUL bytes.
    CHECK(basic_authorization(std::string("\xff\0", 2), "\x80") == "Basic /wA6gA==");
}
