#include "auth/detail_text.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace authshim::auth;

TEST_CASE("text: encodings", "[text]") {
    CHECK(detail::base64_encode("") == "");
    CHECK(detail::base64_encode("f") == "Zg==");
    CHECK(detail::base64_encode("fo") == "Zm8=");
    CHECK(detail::base64_encode("foo") == "Zm9v");
    CHECK(detail::base64_encode("foobar") == "Zm9vYmFy");
    CHECK(detail::rfc8187_encode("J\xC3\xA4s\xC3\xB8n Doe") == "UTF-8''J%C3%A4s%C3%B8n%20Doe");
    CHECK(detail::rfc8187_encode("a-b.c_d~e!#$&+^`|") == "UTF-8''a-b.c_d~e!#$&+^`|");
    CHECK(detail::rfc8187_encode("%'*\"\\") == "UTF-8''%25%27%2A%22%5C");
    CHECK(detail::hex8(0) == "00000000");
    CHECK(detail::hex8(1000) == "000003e8");
    CHECK(detail::hex8(0xffffffffu) == "ffffffff");
    std::string q;
    detail::append_quoted(q, R"(a"b\c)");
    CHECK(q == R"("a\"b\\c")");
    CHECK(detail::iequals("Digest", "dIGEST"));
    CHECK_FALSE(detail::iequals("Digest", "Digest "));
    CHECK(detail::has_ctl("a\tb", false));
    CHECK_FALSE(detail::has_ctl("a\tb", true));
}
