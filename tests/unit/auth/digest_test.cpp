#include "auth/digest.hpp"

#include "auth/challenge.hpp"
#include "auth/errors.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <set>
#include <string>
#include <vector>

using authshim::auth::auth_errc;
using authshim::auth::challenge;
using authshim::auth::choose_qop;
using authshim::auth::default_cnonce_source;
using authshim::auth::digest_algorithm;
using authshim::auth::digest_algorithm_name;
using authshim::auth::digest_algorithm_strength;
using authshim::auth::digest_challenge;
using authshim::auth::digest_qop;
using authshim::auth::digest_state;
using authshim::auth::parse_challenges;
using authshim::auth::parse_digest_algorithm;
using authshim::auth::parse_digest_challenge;

namespace {

challenge parse_one(std::string_view value) {
    std::vector<challenge> out;
    std::string detail;
    INFO(value);
    REQUIRE_FALSE(parse_challenges(value, out, detail));
    REQUIRE(out.size() == 1);
    return out[0];
}

digest_challenge digest_of(std::string_view value) {
    digest_challenge d;
    REQUIRE_FALSE(parse_digest_challenge(parse_one(value), d));
    return d;
}

std::error_code digest_error(std::string_view value) {
    digest_challenge d;
    return parse_digest_challenge(parse_one(value), d);
}

authshim::auth::cnonce_source fixed(std::string cnonce, int* calls = nullptr) {
    return [cnonce, calls] {
        if (calls) ++*calls;
        return cnonce;
    };
}

/// The value of one parameter of a generated header, read back with our own parser.
std::string param_of(const std::string& header, std::string_view name) {
    const challenge c = parse_one(header);
    const std::string* v = c.param(name);
    return v ? *v : std::string("<absent>");
}

const char* const rfc2617_challenge =
    R"(Digest realm="testrealm@host.com", qop="auth,auth-int", )"
    R"(nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41")";

} // namespace

TEST_CASE("Digest: RFC 2617 §3.5 example", "[digest][vector]") {
    digest_state state(digest_of(rfc2617_challenge), fixed("0a4f113b"));
    std::string header;
    REQUIRE_FALSE(state.authorize("GET", "/dir/index.html", "Mufasa", "Circle Of Life",
                                  std::nullopt, header));
    CHECK(header == R"(Digest username="Mufasa", realm="testrealm@host.com", )"
                    R"(nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", )"
                    R"(response="6629fae49393a05397450978507c4ef1", qop=auth, nc=00000001, )"
                    R"(cnonce="0a4f113b", opaque="5ccc069c403ebaf9f0171e9517f40e41")");
    CHECK(state.nonce_count() == 1);
}

TEST_CASE("Digest: RFC 7616 §3.9.1 MD5 and SHA-256 examples", "[digest][vector]") {
    const std::string common = R"(realm="http-auth@example.org", qop="auth, auth-int", )"
                               R"(nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", )"
                               R"(opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")";
    const std::string cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    std::string header;

    digest_state md5(digest_of("Digest " + common + ", algorithm=MD5"), fixed(cnonce));
    REQUIRE_FALSE(
        md5.authorize("GET", "/dir/index.html", "Mufasa", "Circle of Life", std::nullopt, header));
    CHECK(param_of(header, "response") == "8ca523f5e9506fed4657c9700eebdbec");
    CHECK(param_of(header, "algorithm") == "MD5");
    CHECK(param_of(header, "qop") == "auth"); // auth preferred over auth-int

    digest_state sha(digest_of("Digest " + common + ", algorithm=SHA-256"), fixed(cnonce));
    REQUIRE_FALSE(
        sha.authorize("GET", "/dir/index.html", "Mufasa", "Circle of Life", std::nullopt, header));
    CHECK(header ==
          R"(Digest username="Mufasa", realm="http-auth@example.org", )"
          R"(nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", )"
          R"(uri="/dir/index.html", algorithm=SHA-256, )"
          R"(response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", )"
          R"(qop=auth, nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", )"
          R"(opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")");
}

namespace {
// RFC 7616 §3.9.2, SHA-512-256 with userhash. The RFC prints values computed with truncated
// SHA-512; these are the corrected FIPS SHA-512/256 values (shared/docs/PROTOCOL-NOTES.md),
// re-checked with Python: hashlib.new("sha512_256", ...).
const std::string jason = "J\xC3\xA4s\xC3\xB8n Doe"; // "Jäsøn Doe" in UTF-8
const std::string rfc7616_sha512_challenge =
    R"(Digest realm="api@example.org", qop="auth", algorithm=SHA-512-256, )"
    R"(nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", )"
    R"(opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS", charset=UTF-8)";
const std::string rfc7616_cnonce = "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v";
const std::string rfc7616_sha512_response =
    "3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5";
} // namespace

TEST_CASE("Digest: RFC 7616 §3.9.2 SHA-512-256 with userhash (corrected)", "[digest][vector]") {
    digest_state state(digest_of(rfc7616_sha512_challenge + ", userhash=true"),
                       fixed(rfc7616_cnonce));
    CHECK(state.challenge().userhash);
    CHECK(state.challenge().charset_utf8);
    std::string header;
    REQUIRE_FALSE(
        state.authorize("GET", "/doe.json", jason, "Secret, or not?", std::nullopt, header));
    CHECK(header ==
          R"(Digest username="793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b", )"
          R"(realm="api@example.org", nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", )"
          R"(uri="/doe.json", algorithm=SHA-512-256, )"
          R"(response="3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5", )"
          R"(qop=auth, nc=00000001, cnonce="NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v", )"
          R"(opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS", userhash=true)");
}

TEST_CASE("Digest: username forms", "[digest][username]") {
    std::string header;
    SECTION("non-ASCII with charset=UTF-8 goes as username* (RFC 8187)") {
        digest_state state(digest_of(rfc7616_sha512_challenge), fixed(rfc7616_cnonce));
        REQUIRE_FALSE(
            state.authorize("GET", "/doe.json", jason, "Secret, or not?", std::nullopt, header));
        CHECK(header.rfind(R"(Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, realm=)", 0) == 0);
        CHECK(header.find("userhash") == std::string::npos);
        // The username's form does not change A1: same response as the userhash example.
        CHECK(param_of(header, "response") == rfc7616_sha512_response);
    }
    SECTION("non-ASCII without charset goes raw, as older clients send it") {
        digest_state state(digest_of(R"(Digest realm="r", nonce="n", qop="auth")"), fixed("c"));
        REQUIRE_FALSE(state.authorize("GET", "/", jason, "pw", std::nullopt, header));
        CHECK(header.rfind("Digest username=\"" + jason + "\", ", 0) == 0);
    }
    SECTION("domain users and quotes are backslash-escaped") {
        digest_state state(digest_of(R"(Digest realm="r", nonce="n", qop="auth")"), fixed("c"));
        REQUIRE_FALSE(state.authorize("GET", "/", R"(CORP\svc-"pki")", "pw", std::nullopt, header));
        CHECK(header.rfind(R"(Digest username="CORP\\svc-\"pki\"", )", 0) == 0);
        CHECK(param_of(header, "username") == R"(CORP\svc-"pki")");
    }
    SECTION("control characters can only go as username*") {
        digest_state state(digest_of(R"(Digest realm="r", nonce="n", qop="auth")"), fixed("c"));
        REQUIRE_FALSE(state.authorize("GET", "/", "a\r\nb", "pw", std::nullopt, header));
        CHECK(header.rfind("Digest username*=UTF-8''a%0D%0Ab, ", 0) == 0);
    }
}

TEST_CASE("Digest: cross-checked against an independent computation", "[digest][vector]") {
    // Expected responses computed with Python's hashlib following RFC 7616 §3.4.1-3.4.3:
    //   ha1 = H(user:realm:pw); -sess: ha1 = H(ha1:nonce:cnonce)
    //   ha2 = H(method:uri) or, for auth-int, H(method:uri:H(body))
    //   response = H(ha1:nonce:nc:cnonce:qop:ha2); without qop H(ha1:nonce:ha2)
    // The no-qop and MD5 cases also match urllib.request.AbstractDigestAuthHandler.
    std::string header;
    SECTION("SHA-256-sess for CONNECT, two requests on one nonce") {
        digest_state state(digest_of(R"(Digest realm="proxy@corp.example", nonce="abc+/def==", )"
                                     R"(qop="auth", algorithm=SHA-256-sess)"),
                           fixed("0123456789abcdef0123456789abcdef"));
        REQUIRE_FALSE(state.authorize("CONNECT", "crl.example.com:443", "CORP\\svc-pki",
                                      "p@ss \"w0rd\"", std::nullopt, header));
        CHECK(param_of(header, "uri") == "crl.example.com:443");
        CHECK(param_of(header, "algorithm") == "SHA-256-sess");
        CHECK(param_of(header, "response") ==
              "0419405b6aa8a20fbbb3fc45b69d64e0faa81c0f61fafb4acd21278e230c0624");
        REQUIRE_FALSE(state.authorize("CONNECT", "crl.example.com:443", "CORP\\svc-pki",
                                      "p@ss \"w0rd\"", std::nullopt, header));
        CHECK(param_of(header, "nc") == "00000002");
        CHECK(param_of(header, "response") ==
              "806a38b7362cf7e07eca3326129a39b33582654e7775148733f717e6adf3fe86");
    }
    const std::string body("0\x82\x01\x00ocsp-request-bytes", 22);
    SECTION("MD5 auth-int with a binary body, and with an empty body") {
        digest_state state(digest_of(R"(Digest realm="realm", nonce="nonce123", qop="auth-int")"),
                           fixed("cn0nce"));
        REQUIRE(state.qop() == digest_qop::auth_int);
        CHECK(state.authorize("POST", "http://ocsp.example.com/", "svc", "pw", std::nullopt,
                              header) == auth_errc::digest_body_required);
        CHECK(state.nonce_count() == 0); // a refused call uses no nc
        REQUIRE_FALSE(
            state.authorize("POST", "http://ocsp.example.com/", "svc", "pw", body, header));
        CHECK(param_of(header, "qop") == "auth-int");
        CHECK(param_of(header, "response") == "1a86717511f675258419a28889e0ef6a");
        digest_state fresh(digest_of(R"(Digest realm="realm", nonce="nonce123", qop="auth-int")"),
                           fixed("cn0nce"));
        REQUIRE_FALSE(
            fresh.authorize("GET", "http://crl.example.com/a.crl", "svc", "pw", "", header));
        CHECK(param_of(header, "response") == "d172475327e192eb1f731b1ec79f98b8");
    }
    SECTION("SHA-512-256-sess auth-int") {
        digest_state state(digest_of(R"(Digest realm="realm", nonce="nonce123", qop=auth-int, )"
                                     R"(algorithm=sha-512-256-SESS)"),
                           fixed("cn0nce"));
        REQUIRE_FALSE(
            state.authorize("POST", "http://ocsp.example.com/", "svc", "pw", body, header));
        CHECK(param_of(header, "algorithm") == "SHA-512-256-sess"); // canonical spelling
        CHECK(param_of(header, "response") ==
              "e0c06726c79b782a5032ef1aa13008a37fa3dedc561a4e997301c82d92ced25b");
    }
    SECTION("MD5-sess on the RFC 2617 inputs") {
        digest_state state(digest_of(std::string(rfc2617_challenge) + ", algorithm=MD5-sess"),
                           fixed("0a4f113b"));
        REQUIRE_FALSE(state.authorize("GET", "/dir/index.html", "Mufasa", "Circle Of Life",
                                      std::nullopt, header));
        CHECK(param_of(header, "response") == "8e3825c57e897f5a0dec6c2d4e5059d0");
    }
    SECTION("legacy RFC 2069 challenge without qop") {
        int calls = 0;
        digest_state state(digest_of(R"(Digest realm="testrealm@host.com", )"
                                     R"(nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", )"
                                     R"(opaque="5ccc069c403ebaf9f0171e9517f40e41")"),
                           fixed("unused", &calls));
        REQUIRE(state.qop() == digest_qop::none);
        REQUIRE_FALSE(state.authorize("GET", "/dir/index.html", "Mufasa", "Circle Of Life",
                                      std::nullopt, header));
        CHECK(header == R"(Digest username="Mufasa", realm="testrealm@host.com", )"
                        R"(nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", )"
                        R"(response="670fd8c2df070c60b045671b8b24ff02", )"
                        R"(opaque="5ccc069c403ebaf9f0171e9517f40e41")");
        CHECK(calls == 0); // no cnonce without qop
    }
}

TEST_CASE("Digest: nc is strictly increasing per nonce; nextnonce restarts it", "[digest][nc]") {
    int calls = 0;
    digest_state state(digest_of(rfc2617_challenge), fixed("0a4f113b", &calls));
    std::string header;
    for (unsigned i = 1; i <= 1000; ++i) {
        REQUIRE_FALSE(state.authorize("GET", "/dir/index.html", "Mufasa", "Circle Of Life",
                                      std::nullopt, header));
        char expected[9];
        std::snprintf(expected, sizeof expected, "%08x", i);
        REQUIRE(param_of(header, "nc") == expected);
        REQUIRE(state.nonce_count() == i);
    }
    CHECK(param_of(header, "nc") == "000003e8");
    CHECK(calls == 1); // one cnonce per nonce

    // A nextnonce equal to the current nonce changes nothing.
    REQUIRE_FALSE(state.on_authentication_info(
        R"(qop=auth, rspauth="x", nextnonce="dcd98b7102dd2f0e8b11d0f600bfb0c093")"));
    CHECK(state.nonce_count() == 1000);
    REQUIRE_FALSE(state.on_authentication_info(R"(rspauth="x", cnonce="y", nc=000003e8)"));
    CHECK(state.nonce_count() == 1000);

    REQUIRE_FALSE(state.on_authentication_info(R"(qop=auth, nextnonce="nextone")"));
    CHECK(state.nonce_count() == 0);
    CHECK(state.challenge().nonce == "nextone");
    REQUIRE_FALSE(state.authorize("GET", "/dir/index.html", "Mufasa", "Circle Of Life",
                                  std::nullopt, header));
    CHECK(param_of(header, "nonce") == "nextone");
    CHECK(param_of(header, "nc") == "00000001");
    CHECK(calls == 2); // a fresh cnonce for the new nonce
    // Python: response for nonce "nextone", otherwise the RFC 2617 inputs.
    CHECK(param_of(header, "response") == "4d10aebcba027ac9fa8b05607aa70e26");

    CHECK(state.on_authentication_info(R"(nextnonce="unterminated)") ==
          auth_errc::malformed_authentication_info);
    CHECK(state.challenge().nonce == "nextone");
}

TEST_CASE("Digest: reset after stale=true starts the new nonce at 1", "[digest][nc]") {
    digest_state state(digest_of(rfc2617_challenge), fixed("c"));
    std::string header;
    for (int i = 0; i < 5; ++i) {
        REQUIRE_FALSE(state.authorize("GET", "/", "u", "p", std::nullopt, header));
    }
    const digest_challenge renewed =
        digest_of(R"(Digest realm="testrealm@host.com", nonce="fresh", qop="auth", stale=TRUE)");
    CHECK(renewed.stale);
    state.reset(renewed);
    REQUIRE_FALSE(state.authorize("GET", "/", "u", "p", std::nullopt, header));
    CHECK(param_of(header, "nonce") == "fresh");
    CHECK(param_of(header, "nc") == "00000001");
}

TEST_CASE("Digest: challenge parsing", "[digest][challenge]") {
    const digest_challenge d =
        digest_of(R"(Digest realm="r", nonce="n", qop="auth-int , AUTH, token", stale=false, )"
                  R"(domain="/ http://x/", algorithm=md5)");
    CHECK(d.realm == "r");
    CHECK(d.qop_auth);
    CHECK(d.qop_auth_int);
    CHECK_FALSE(d.stale);
    CHECK_FALSE(d.opaque);
    CHECK(d.algorithm == digest_algorithm::md5);
    CHECK(d.algorithm_present);
    CHECK(choose_qop(d) == digest_qop::auth);

    const digest_challenge squid = digest_of(R"(Digest realm="Squid", nonce="abc", qop="auth")");
    CHECK_FALSE(squid.algorithm_present);
    CHECK(squid.algorithm == digest_algorithm::md5);
    CHECK_FALSE(squid.charset_utf8);

    CHECK(digest_error(R"(Digest realm="r")") == auth_errc::digest_missing_nonce);
    CHECK(digest_error(R"(Digest realm="r", nonce="")") == auth_errc::digest_missing_nonce);
    CHECK(digest_error(R"(Digest nonce="n", algorithm=SHA-1)") ==
          auth_errc::digest_unsupported_algorithm);
    CHECK(digest_error(R"(Digest nonce="n", algorithm="SHA-512")") ==
          auth_errc::digest_unsupported_algorithm);
    CHECK(digest_error(R"(Digest nonce="n", qop="auth-conf")") ==
          auth_errc::digest_unsupported_qop);
    CHECK(digest_error(R"(Digest nonce="n", algorithm=MD5-sess)") ==
          auth_errc::digest_unsupported_qop); // -sess needs qop for its cnonce
    CHECK(digest_error(R"(Basic realm="r")") == auth_errc::malformed_challenge);
    CHECK(digest_error("Digest abc==") == auth_errc::malformed_challenge);
    // No realm is accepted (curl does the same): A1 then uses an empty realm.
    CHECK(digest_of(R"(Digest nonce="n")").realm.empty());
}

TEST_CASE("Digest: algorithm names and strength order", "[digest]") {
    using A = digest_algorithm;
    const A order[] = {A::sha512_256, A::sha512_256_sess, A::sha256, A::sha256_sess,
                       A::md5,        A::md5_sess};
    for (std::size_t i = 0; i + 1 < std::size(order); ++i) {
        CHECK(digest_algorithm_strength(order[i]) > digest_algorithm_strength(order[i + 1]));
    }
    for (A a : order)
        CHECK(parse_digest_algorithm(digest_algorithm_name(a)) == a);
    CHECK(parse_digest_algorithm("sha-256") == A::sha256);
    CHECK(digest_algorithm_name(A::sha512_256_sess) == "SHA-512-256-sess");
    CHECK_FALSE(parse_digest_algorithm("SHA-512"));
    CHECK_FALSE(parse_digest_algorithm(""));
}

TEST_CASE("Digest: authorize refuses what cannot be sent", "[digest][errors]") {
    std::string header = "unchanged";
    digest_state state(digest_of(rfc2617_challenge), fixed("c"));
    CHECK(state.authorize("GET", "/a\r\nX-Evil: 1", "u", "p", std::nullopt, header) ==
          auth_errc::invalid_header_value);
    CHECK(state.authorize("GE\nT", "/", "u", "p", std::nullopt, header) ==
          auth_errc::invalid_header_value);
    CHECK(state.authorize("GET", "", "u", "p", std::nullopt, header) ==
          auth_errc::invalid_header_value);
    CHECK(header == "unchanged");
    CHECK(state.nonce_count() == 0);

    digest_state no_random(digest_of(rfc2617_challenge), fixed(""));
    CHECK(no_random.authorize("GET", "/", "u", "p", std::nullopt, header) ==
          auth_errc::crypto_failure);
    digest_state bad_random(digest_of(rfc2617_challenge), fixed("a\"b"));
    CHECK(bad_random.authorize("GET", "/", "u", "p", std::nullopt, header) ==
          auth_errc::crypto_failure);
    digest_state no_source(digest_of(rfc2617_challenge), nullptr);
    CHECK(no_source.authorize("GET", "/", "u", "p", std::nullopt, header) ==
          auth_errc::crypto_failure);
    CHECK(header == "unchanged");

    // A hand-built inconsistent challenge (-sess without qop) is refused, not guessed at.
    digest_challenge odd;
    odd.nonce = "n";
    odd.algorithm = digest_algorithm::md5_sess;
    digest_state odd_state(odd, fixed("c"));
    CHECK(odd_state.authorize("GET", "/", "u", "p", std::nullopt, header) ==
          auth_errc::digest_unsupported_qop);
}

TEST_CASE("Digest: default cnonce comes from the CSPRNG", "[digest][cnonce]") {
    const auto source = default_cnonce_source();
    std::set<std::string> seen;
    for (int i = 0; i < 100; ++i) {
        const std::string c = source();
        REQUIRE(c.size() == 32);
        CHECK(c.find_first_not_of("0123456789abcdef") == std::string::npos);
        seen.insert(c);
    }
    CHECK(seen.size() == 100);
    // The default source is used when none is given.
    digest_state state(digest_of(rfc2617_challenge));
    std::string header;
    REQUIRE_FALSE(state.authorize("GET", "/", "u", "p", std::nullopt, header));
    CHECK(param_of(header, "cnonce").size() == 32);
}
