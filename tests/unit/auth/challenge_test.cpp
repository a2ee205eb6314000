#include "auth/challenge.hpp"

#include "auth/errors.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using authshim::auth::auth_errc;
using authshim::auth::auth_param;
using authshim::auth::challenge;
using authshim::auth::parse_auth_info;
using authshim::auth::parse_challenges;
using authshim::auth::parse_limits;
using namespace std::string_literals;

namespace {

std::vector<challenge> parse_ok(std::string_view value) {
    std::vector<challenge> out;
    std::string detail;
    const std::error_code ec = parse_challenges(value, out, detail);
    INFO(detail);
    REQUIRE_FALSE(ec);
    return out;
}

std::error_code parse_err(std::string_view value, std::string* detail_out = nullptr) {
    std::vector<challenge> out{challenge{"stale", std::nullopt, {}}};
    std::string detail;
    const std::error_code ec = parse_challenges(value, out, detail);
    CHECK(out.empty()); // never a partial result
    if (ec) CHECK_FALSE(detail.empty());
    if (detail_out) *detail_out = detail;
    return ec;
}

} // namespace

TEST_CASE("a single Basic challenge", "[challenge]") {
    const auto c = parse_ok(R"(Basic realm="Corporate proxy", charset="UTF-8")");
    REQUIRE(c.size() == 1);
    CHECK(c[0].scheme == "basic");
    CHECK_FALSE(c[0].token68);
    REQUIRE(c[0].param("realm"));
    CHECK(*c[0].param("realm") == "Corporate proxy");
    CHECK(*c[0].param("charset") == "UTF-8");
    CHECK(c[0].param("nonce") == nullptr);
}

TEST_CASE("several challenges in one header value", "[challenge]") {
    const auto c = parse_ok(R"(Digest realm="a", nonce="n1", qop="auth,auth-int", )"
                            R"(algorithm=SHA-256, Basic realm="b", Negotiate, NTLM)");
    REQUIRE(c.size() == 4);
    CHECK(c[0].scheme == "digest");
    CHECK(c[0].params.size() == 4);
    CHECK(*c[0].param("qop") == "auth,auth-int");
    CHECK(*c[0].param("algorithm") == "SHA-256");
    CHECK(c[1].scheme == "basic");
    CHECK(*c[1].param("realm") == "b");
    CHECK(c[2].scheme == "negotiate");
    CHECK(c[2].params.empty());
    CHECK(c[3].scheme == "ntlm");
}

TEST_CASE("challenges across repeated header lines stay apart", "[challenge]") {
    const std::string_view values[] = {R"(Digest realm="a", nonce="n1")", "NTLM",
                                       R"(Basic realm="b")"};
    std::vector<challenge> out;
    std::string detail;
    REQUIRE_FALSE(parse_challenges(values, out, detail));
    REQUIRE(out.size() == 3);
    CHECK(out[0].scheme == "digest");
    CHECK(out[1].scheme == "ntlm");
    CHECK(out[2].scheme == "basic");

    // A value cannot continue the previous line's challenge.
    const std::string_view split[] = {R"(Digest realm="a")", R"(nonce="n1")"};
    CHECK(parse_challenges(split, out, detail) == auth_errc::malformed_challenge);
    CHECK(out.empty());
    CHECK(detail.find("header value 2") != std::string::npos);
}

TEST_CASE("quoted strings are unescaped", "[challenge]") {
    const auto c = parse_ok(R"(Basic realm="say \"hi\", back\\slash \q, tab	x")");
    REQUIRE(c.size() == 1);
    CHECK(*c[0].param("realm") == "say \"hi\", back\\slash q, tab\tx");
    // Commas and equals signs inside quotes do not split anything.
    const auto d = parse_ok(R"(Digest realm="a, Basic b=c", nonce="x")");
    REQUIRE(d.size() == 1);
    CHECK(*d[0].param("realm") == "a, Basic b=c");
    // Non-ASCII (obs-text) is kept byte for byte.
    const auto e = parse_ok("Basic realm=\"J\xC3\xA4s\xC3\xB8n\"");
    CHECK(*e[0].param("realm") == "J\xC3\xA4s\xC3\xB8n");
}

TEST_CASE("unquoted values as IIS and others send them", "[challenge]") {
    const auto c = parse_ok("Digest qop=\"auth\",algorithm=MD5-sess,realm=\"Digest\","
                            "nonce=+Upgraded+v1a8b/c9d0e1f2==,charset=utf-8");
    REQUIRE(c.size() == 1);
    CHECK(*c[0].param("algorithm") == "MD5-sess");
    CHECK(*c[0].param("nonce") == "+Upgraded+v1a8b/c9d0e1f2==");
    CHECK(*c[0].param("charset") == "utf-8");
    CHECK(*c[0].param("qop") == "auth");
    // Whitespace around '=' (BWS) still makes a parameter, not a new challenge.
    const auto d = parse_ok(R"(Basic realm = "x" ,	charset	=UTF-8)");
    REQUIRE(d.size() == 1);
    CHECK(*d[0].param("realm") == "x");
    CHECK(*d[0].param("charset") == "UTF-8");
    // Empty values.
    const auto e = parse_ok(R"(Digest nonce="n", opaque="", domain=)");
    REQUIRE(e.size() == 1);
    CHECK(*e[0].param("opaque") == "");
    CHECK(*e[0].param("domain") == "");
}

TEST_CASE("token68 challenges", "[challenge]") {
    const auto c = parse_ok("Negotiate YIIBhwYGKwYBBQUCoIIBezCCAXeg+/==, NTLM TlRMTVNTUAACAAAA, "
                            "Custom abc=, Basic realm=\"x\"");
    REQUIRE(c.size() == 4);
    CHECK(c[0].scheme == "negotiate");
    REQUIRE(c[0].token68);
    CHECK(*c[0].token68 == "YIIBhwYGKwYBBQUCoIIBezCCAXeg+/==");
    CHECK(c[0].params.empty());
    CHECK(*c[1].token68 == "TlRMTVNTUAACAAAA");
    CHECK(*c[2].token68 == "abc=");
    CHECK_FALSE(c[3].token68);
    CHECK(*c[3].param("realm") == "x");
}

TEST_CASE("scheme and parameter names are case-insensitive", "[challenge]") {
    const auto c = parse_ok(R"(DIGEST Realm="R", NONCE="n", QoP="auth", bAsIc REALM="b")");
    REQUIRE(c.size() == 2);
    CHECK(c[0].scheme == "digest");
    CHECK(*c[0].param("realm") == "R"); // values keep their case
    CHECK(*c[0].param("nonce") == "n");
    CHECK(*c[0].param("qop") == "auth");
    CHECK(c[1].scheme == "basic");
}

TEST_CASE("unknown schemes are kept for the caller to skip", "[challenge]") {
    const auto c = parse_ok(R"(Bearer realm="x", error="invalid_token", Foo, Basic realm="y")");
    REQUIRE(c.size() == 3);
    CHECK(c[0].scheme == "bearer");
    CHECK(c[1].scheme == "foo");
    CHECK(c[2].scheme == "basic");
}

TEST_CASE("empty list elements and empty input are tolerated", "[challenge]") {
    CHECK(parse_ok("").empty());
    CHECK(parse_ok("  ,\t, ").empty());
    const auto c = parse_ok(R"( , , Basic realm="x" , , charset="UTF-8",, Digest nonce="n",)");
    REQUIRE(c.size() == 2);
    CHECK(c[0].params.size() == 2);
    CHECK(*c[1].param("nonce") == "n");
}

TEST_CASE("malformed challenges are rejected with a position", "[challenge][hostile]") {
    struct bad_case {
        const char* name;
        std::string value;
    };
    const bad_case cases[] = {
        {"unterminated quote", R"(Digest realm="never closed, nonce="x)"},
        {"unterminated quote at end", R"(Basic realm=")"},
        {"trailing backslash", "Basic realm=\"abc\\"},
        {"parameter before scheme", R"(realm="x", Basic)"},
        {"parameter after token68", R"(Negotiate abc==, realm="x")"},
        {"duplicate parameter", R"(Digest nonce="a", NONCE="b")"},
        {"missing =", R"(Digest realm "x")"},
        {"quote right after scheme", R"(Basic"x")"},
        {"junk after value", R"(Basic realm="x"y)"},
        {"junk after token value", R"(Digest nonce=abc"def")"},
        {"lone =", "="},
        {"lone quote", "\""},
        {"NUL outside quotes", std::string("Basic\0realm", 11)},
        {"NUL inside quotes", std::string("Basic realm=\"a\0b\"", 17)},
        {"NUL in unquoted value", std::string("Basic realm=a\0b", 15)},
        {"escaped NUL", std::string("Basic realm=\"a\\\0b\"", 18)},
        {"CR LF injection", "Basic realm=\"a\r\nX-Injected: 1\""},
        {"bare LF", "Basic realm=x\nDigest"},
        {"DEL", "Basic realm=\"a\x7f\""},
        {"control character", "Basic \x01"},
    };
    for (const bad_case& c : cases) {
        INFO(c.name);
        std::string detail;
        CHECK(parse_err(c.value, &detail) == auth_errc::malformed_challenge);
        CHECK(detail.find("offset") != std::string::npos);
    }
    std::string detail;
    parse_err(R"(Basic realm="secret-looking-value)", &detail);
    CHECK(detail.find("secret-looking-value") == std::string::npos); // input is never echoed
    CHECK(detail == "unterminated quoted string (header value 1, offset 12)");
}

TEST_CASE("hostile sizes are rejected by the limits", "[challenge][hostile]") {
    SECTION("1 MB in one value") {
        const std::string huge = "Basic realm=\"" + std::string(1024 * 1024, 'a') + "\"";
        CHECK(parse_err(huge) == auth_errc::challenge_too_large);
    }
    SECTION("many values adding up past the total") {
        const std::string one = "Basic realm=\"" + std::string(1000, 'a') + "\"";
        const std::vector<std::string_view> values(20, one);
        std::vector<challenge> out;
        std::string detail;
        CHECK(parse_challenges(values, out, detail) == auth_errc::challenge_too_large);
        CHECK(out.empty());
    }
    SECTION("10,000 parameters") {
        std::string many = "Digest ";
        for (int i = 0; i < 10'000; ++i)
            many += "p" + std::to_string(i) + "=1, ";
        CHECK(parse_err(many) == auth_errc::challenge_too_large);
    }
    SECTION("more parameters than the per-challenge limit, within the byte limit") {
        std::string many = "Digest ";
        for (std::size_t i = 0; i <= parse_limits::max_params; ++i) {
            many += "p" + std::to_string(i) + "=1,";
        }
        REQUIRE(many.size() < parse_limits::max_total_bytes);
        CHECK(parse_err(many) == auth_errc::challenge_too_large);
        // Exactly at the limit is fine.
        std::string at_limit = "Digest ";
        for (std::size_t i = 0; i < parse_limits::max_params; ++i) {
            at_limit += "p" + std::to_string(i) + "=1,";
        }
        CHECK(parse_ok(at_limit)[0].params.size() == parse_limits::max_params);
    }
    SECTION("more challenges than the limit") {
        std::string many;
        for (std::size_t i = 0; i <= parse_limits::max_challenges; ++i)
            many += "X, ";
        CHECK(parse_err(many) == auth_errc::challenge_too_large);
        std::string at_limit;
        for (std::size_t i = 0; i < parse_limits::max_challenges; ++i)
            at_limit += "X, ";
        CHECK(parse_ok(at_limit).size() == parse_limits::max_challenges);
    }
    SECTION("a value over 4 KiB, quoted or not") {
        const std::string big(parse_limits::max_value_bytes + 1, 'v');
        CHECK(parse_err("Basic realm=\"" + big + "\"") == auth_errc::challenge_too_large);
        CHECK(parse_err("Basic realm=" + big) == auth_errc::challenge_too_large);
        const std::string fits(parse_limits::max_value_bytes, 'v');
        CHECK(parse_ok("Basic realm=\"" + fits + "\"")[0].param("realm")->size() ==
              parse_limits::max_value_bytes);
    }
}

TEST_CASE("random bytes never crash the parser", "[challenge][hostile]") {
    std::mt19937 rng(20240601);
    const std::string alphabet = "Basic Digest realm=\"\\,= \t\x01\0abc+/"s;
    std::vector<challenge> out;
    std::string detail;
    for (int round = 0; round < 20'000; ++round) {
        std::string input(rng() % 64, ' ');
        for (char& c : input) {
            c = rng() % 4 == 0 ? static_cast<char>(rng() % 256) : alphabet[rng() % alphabet.size()];
        }
        const std::error_code ec = parse_challenges(input, out, detail);
        if (ec) {
            CHECK((ec == auth_errc::malformed_challenge || ec == auth_errc::challenge_too_large));
            CHECK(out.empty());
        }
    }
}

TEST_CASE("Proxy-Authentication-Info parameter lists", "[challenge][info]") {
    std::vector<auth_param> params;
    std::string detail;
    REQUIRE_FALSE(parse_auth_info(R"(nextnonce="abc+/=", qop=auth, rspauth="d0e1", )"
                                  R"(cnonce="xyz", nc=00000001)",
                                  params, detail));
    REQUIRE(params.size() == 5);
    CHECK(params[0].name == "nextnonce");
    CHECK(params[0].value == "abc+/=");
    CHECK(params[4].value == "00000001");

    REQUIRE_FALSE(parse_auth_info("", params, detail));
    CHECK(params.empty());
    CHECK(parse_auth_info("Digest nextnonce=\"x\"", params, detail) ==
          auth_errc::malformed_authentication_info);
    CHECK(params.empty());
    CHECK(parse_auth_info(R"(nextnonce="x)", params, detail) ==
          auth_errc::malformed_authentication_info);
    CHECK(parse_auth_info(std::string(20'000, 'a'), params, detail) ==
          auth_errc::challenge_too_large);
}
