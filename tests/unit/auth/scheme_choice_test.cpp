#include "auth/scheme_choice.hpp"

#include "auth/errors.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using authshim::auth::auth_errc;
using authshim::auth::challenge;
using authshim::auth::choose_scheme;
using authshim::auth::default_schemes;
using authshim::auth::digest_algorithm;
using authshim::auth::parse_challenges;
using authshim::auth::scheme;
using authshim::auth::scheme_choice;
using authshim::auth::scheme_from_name;
using authshim::auth::scheme_name;

namespace {

const char* const digest_md5 = R"(Digest realm="r", nonce="md5", qop="auth")";
const char* const digest_sha256 = R"(Digest realm="r", nonce="sha", qop="auth", algorithm=SHA-256)";
const char* const digest_sha256_sess =
    R"(Digest realm="r", nonce="sess", qop="auth", algorithm=SHA-256-sess)";
const char* const digest_sha512 =
    R"(Digest realm="r", nonce="512", qop="auth", algorithm=SHA-512-256)";
const char* const digest_bad_alg = R"(Digest realm="r", nonce="x", algorithm=SHA-1)";
const char* const basic = R"(Basic realm="r")";

std::vector<challenge> parse(std::vector<std::string_view> values) {
    std::vector<challenge> out;
    std::string detail;
    REQUIRE_FALSE(parse_challenges(values, out, detail));
    return out;
}

const std::vector<scheme> digest_basic{scheme::digest, scheme::basic};
const std::vector<scheme> basic_digest{scheme::basic, scheme::digest};
const std::vector<scheme> only_basic{scheme::basic};
const std::vector<scheme> only_digest{scheme::digest};

} // namespace

TEST_CASE("scheme choice follows the upstream's ordered list", "[choice]") {
    struct row {
        std::vector<std::string_view> offered;
        std::vector<scheme> allowed;
        scheme expected;
        std::size_t index;
    };
    const row rows[] = {
        {{basic, digest_md5}, digest_basic, scheme::digest, 1},
        {{basic, digest_md5}, basic_digest, scheme::basic, 0},
        {{digest_md5, basic}, only_basic, scheme::basic, 1},
        {{basic}, digest_basic, scheme::basic, 0},
        {{digest_md5}, basic_digest, scheme::digest, 0},
        {{"Negotiate", "NTLM", basic}, digest_basic, scheme::basic, 2},
        {{"Bearer realm=\"x\"", digest_md5, "Negotiate"}, digest_basic, scheme::digest, 1},
        // An unusable Digest is skipped in favour of Basic (nothing offered before).
        {{digest_bad_alg, basic}, digest_basic, scheme::basic, 1},
        {{basic, basic}, digest_basic, scheme::basic, 0},
    };
    for (const row& r : rows) {
        const auto offered = parse(r.offered);
        const scheme_choice c = choose_scheme(offered, r.allowed, false);
        INFO(c.message);
        REQUIRE_FALSE(c.error);
        CHECK(c.chosen == r.expected);
        CHECK(c.challenge_index == r.index);
        CHECK(c.digest.has_value() == (r.expected == scheme::digest));
    }
}

TEST_CASE("within Digest the strongest algorithm wins; same algorithm: the first", "[choice]") {
    struct row {
        std::vector<std::string_view> offered;
        std::size_t index;
        digest_algorithm algorithm;
    };
    const row rows[] = {
        {{digest_md5, digest_sha256}, 1, digest_algorithm::sha256},
        {{digest_sha256, digest_md5}, 0, digest_algorithm::sha256},
        {{digest_md5, digest_sha512, digest_sha256}, 1, digest_algorithm::sha512_256},
        {{digest_sha256_sess, digest_sha256}, 1, digest_algorithm::sha256},
        {{digest_md5, digest_sha256_sess}, 1, digest_algorithm::sha256_sess},
        {{digest_bad_alg, digest_md5}, 1, digest_algorithm::md5},
        // A second challenge with the same algorithm is ignored (curl does the same).
        {{R"(Digest realm="a", nonce="first")", R"(Digest realm="b", nonce="second")"},
         0,
         digest_algorithm::md5},
    };
    for (const row& r : rows) {
        const auto offered = parse(r.offered);
        const scheme_choice c = choose_scheme(offered, default_schemes, false);
        REQUIRE_FALSE(c.error);
        CHECK(c.chosen == scheme::digest);
        CHECK(c.challenge_index == r.index);
        REQUIRE(c.digest);
        CHECK(c.digest->algorithm == r.algorithm);
        CHECK(c.usable_digest_offered);
    }
    const auto offered = parse({R"(Digest realm="a", nonce="first")", digest_md5});
    CHECK(choose_scheme(offered, default_schemes, false).digest->nonce == "first");
}

TEST_CASE("downgrade protection", "[choice][downgrade]") {
    struct row {
        std::vector<std::string_view> offered;
        std::vector<scheme> allowed;
        bool digest_before;
        std::error_code expected;
        scheme chosen = scheme::basic;
    };
    const std::error_code ok;
    const std::error_code refused = auth_errc::downgrade_refused;
    const row rows[] = {
        {{basic}, digest_basic, false, ok},          // never saw Digest: Basic is fine
        {{basic}, digest_basic, true, refused},      // Digest vanished: refuse Basic
        {{basic}, basic_digest, true, refused},      // still refused while digest is allowed
        {{basic}, only_basic, true, ok},             // only basic allowed: answer it
        {{digest_md5, basic}, only_basic, true, ok}, // ... even when Digest is there
        {{basic, digest_md5}, digest_basic, true, ok, scheme::digest},
        {{basic, digest_md5}, basic_digest, true, ok},          // the operator prefers Basic
        {{digest_bad_alg, basic}, digest_basic, true, refused}, // Digest now unusable
        {{"NTLM", basic}, digest_basic, true, refused},
    };
    for (const row& r : rows) {
        const auto offered = parse(r.offered);
        const scheme_choice c = choose_scheme(offered, r.allowed, r.digest_before);
        INFO(c.message);
        CHECK(c.error == r.expected);
        if (!c.error) CHECK(c.chosen == r.chosen);
    }
    const auto offered = parse({"NTLM", basic});
    const scheme_choice c = choose_scheme(offered, digest_basic, true);
    CHECK(c.message ==
          "upstream offered Digest before and now offers: ntlm, basic; Basic refused (allowed: "
          "digest, basic)");
    CHECK_FALSE(c.usable_digest_offered);
}

TEST_CASE("no usable scheme reports what was offered and allowed", "[choice]") {
    {
        const auto offered = parse({"Negotiate", "NTLM", "negotiate abc="});
        const scheme_choice c = choose_scheme(offered, default_schemes, false);
        CHECK(c.error == auth_errc::no_supported_scheme);
        CHECK(c.message == "offered: negotiate, ntlm; allowed: digest, basic");
    }
    {
        const auto offered = parse({digest_bad_alg, R"(Digest realm="r")"});
        const scheme_choice c = choose_scheme(offered, only_digest, false);
        CHECK(c.error == auth_errc::no_supported_scheme);
        CHECK(c.message ==
              "offered: digest (Digest challenge with an unsupported algorithm); allowed: digest");
        CHECK_FALSE(c.usable_digest_offered);
    }
    {
        const auto offered = parse({basic});
        const scheme_choice c = choose_scheme(offered, only_digest, false);
        CHECK(c.error == auth_errc::no_supported_scheme);
        CHECK(c.message == "offered: basic; allowed: digest");
    }
    {
        const scheme_choice c = choose_scheme({}, default_schemes, false);
        CHECK(c.error == auth_errc::no_supported_scheme);
        CHECK(c.message == "offered: none; allowed: digest, basic");
        const auto offered = parse({basic});
        CHECK(choose_scheme(offered, {}, false).message == "offered: basic; allowed: none");
    }
    {
        // Hostile scheme names are bounded in the message.
        std::string many;
        for (int i = 0; i < 20; ++i)
            many += "S" + std::to_string(i) + ", ";
        many += std::string(100, 'L');
        const auto offered = parse({many});
        const scheme_choice c = choose_scheme(offered, default_schemes, false);
        CHECK(c.message == "offered: s0, s1, s2, s3, s4, s5, s6, s7, ...; allowed: digest, basic");
        const auto one_long = parse({std::string(100, 'L')});
        CHECK(choose_scheme(one_long, default_schemes, false).message ==
              "offered: " + std::string(32, 'l') + "...; allowed: digest, basic");
    }
}

TEST_CASE("scheme names", "[choice]") {
    CHECK(scheme_name(scheme::digest) == "digest");
    CHECK(scheme_name(scheme::basic) == "basic");
    CHECK(scheme_from_name("DIGEST") == scheme::digest);
    CHECK(scheme_from_name("Basic") == scheme::basic);
    CHECK_FALSE(scheme_from_name("ntlm"));
    CHECK(default_schemes[0] == scheme::digest);
}
