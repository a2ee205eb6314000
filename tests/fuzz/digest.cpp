// libFuzzer target: the Digest response builder (auth/digest.hpp): challenge fields, method,
// request-target, credentials, cnonce and Proxy-Authentication-Info in, Proxy-Authorization out.
//
// Input: fields separated by '\n' (any other byte, '\r' and NUL included, may appear in a
// field); missing fields take the defaults in brackets:
//   0 a Proxy-Authenticate value (through parse_challenges and parse_digest_challenge)
//   1 method [GET]   2 digest-uri [http://example.com/]   3 username [user]   4 password [pw]
//   5 cnonce [0a4f113b]   6 a Proxy-Authentication-Info value [none]
//   7 flags for a challenge built directly, bypassing the parser [none: not built]: any of
//     a b d e f g (algorithm MD5, MD5-sess, SHA-256, SHA-256-sess, SHA-512-256,
//     SHA-512-256-sess), p (algorithm present), q (qop auth), i (qop auth-int), u (userhash),
//     c (charset=UTF-8), o (opaque present)
//   8 realm   9 nonce   10 opaque (of that directly built challenge)
//   11 request body: the rest of the input, newlines included [none]
// Checked for every Proxy-Authorization produced:
// - one header line: `Digest ` then only HTAB, SP, visible ASCII and obs-text (no CR, LF, NUL);
// - it parses back (our own parser) as exactly one `digest` challenge: quoted strings balanced;
// - realm, nonce, uri, opaque, qop, nc, cnonce, algorithm and userhash read back as the values
//   that went in, nc counts 1, 2, 3 per nonce, and `response` is what a server computes from the
//   values read back (RFC 7616 §3.4.1), so the echoed values are the hashed ones;
// - the password changes `response` only (the same state with another password gives the same
//   header apart from the response);
// - on error the header is untouched and nc does not move.
#include "auth/digest.hpp"
#include "auth/challenge.hpp"
#include "auth/crypto.hpp"
#include "auth/errors.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace auth = authshim::auth;
namespace crypto = authshim::auth::crypto;

namespace {

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_digest: invariant broken: %s\n", what);
    std::abort();
}

void check(bool condition, const char* what) {
    if (!condition) fail(what);
}

std::string hex8(std::uint32_t value) {
    char buffer[9];
    std::snprintf(buffer, sizeof buffer, "%08x", value);
    return buffer;
}

struct inputs {
    std::string_view method = "GET";
    std::string_view uri = "http://example.com/";
    std::string_view username = "user";
    std::string_view password = "pw";
    std::string cnonce = "0a4f113b";
    std::optional<std::string_view> auth_info;
    std::optional<std::string_view> body;
};

crypto::hash_kind hash_of(auth::digest_algorithm a) {
    switch (a) {
    case auth::digest_algorithm::md5:
    case auth::digest_algorithm::md5_sess:
        return crypto::hash_kind::md5;
    case auth::digest_algorithm::sha256:
    case auth::digest_algorithm::sha256_sess:
        return crypto::hash_kind::sha256;
    default:
        return crypto::hash_kind::sha512_256;
    }
}

bool is_session(auth::digest_algorithm a) {
    return a == auth::digest_algorithm::md5_sess || a == auth::digest_algorithm::sha256_sess ||
           a == auth::digest_algorithm::sha512_256_sess;
}

std::string param(const auth::challenge& c, std::string_view name) {
    const std::string* v = c.param(name);
    return v ? *v : std::string("<absent>");
}

/// The parameters of `header` but its response (everything else must not depend on the
/// password), as `name=value` lines; empty when too large to read back (see check_header).
std::optional<std::string> without_response(const std::string& header) {
    std::vector<auth::challenge> parsed;
    std::string detail;
    if (const auto ec = auth::parse_challenges(header, parsed, detail)) {
        if (ec == auth::auth_errc::challenge_too_large) return std::nullopt;
        fail("header does not parse back");
    }
    if (parsed.size() != 1) fail("header does not parse back as one challenge");
    std::string out;
    for (const auto& p : parsed[0].params) {
        if (p.name == "response") continue;
        out += p.name + '=' + p.value + '\n';
    }
    return out;
}

/// What a server checks in `header` for the request; `expected_nc` is the nc it must carry.
void check_header(const std::string& header, const auth::digest_state& state, const inputs& in,
                  std::uint32_t expected_nc) {
    const auth::digest_challenge& c = state.challenge();
    check(header.starts_with("Digest "), "does not start with 'Digest '");
    for (char ch : header) {
        const auto u = static_cast<unsigned char>(ch);
        check(u == '\t' || (u >= 0x20 && u != 0x7f), "control character in the header value");
    }
    std::vector<auth::challenge> parsed;
    std::string detail;
    if (const auto ec = auth::parse_challenges(header, parsed, detail)) {
        // Our parser's limits are for what upstreams send: a user name of more than 1365
        // non-ASCII bytes takes username* past max_value_bytes. Too large to read back here.
        if (ec == auth::auth_errc::challenge_too_large) return;
        std::fprintf(stderr, "%s: %s (header of %zu bytes)\n", ec.message().c_str(), detail.c_str(),
                     header.size());
        fail("header does not parse back");
    }
    check(parsed.size() == 1 && parsed[0].scheme == "digest" && !parsed[0].token68,
          "header is not one digest parameter list");
    const auth::challenge& p = parsed[0];

    check(param(p, "realm") == c.realm, "realm echoed wrong");
    check(param(p, "nonce") == c.nonce, "nonce echoed wrong");
    check(param(p, "uri") == in.uri, "uri echoed wrong");
    check(param(p, "opaque") == (c.opaque ? *c.opaque : std::string("<absent>")),
          "opaque echoed wrong");
    check(param(p, "algorithm") == (c.algorithm_present
                                        ? std::string(auth::digest_algorithm_name(c.algorithm))
                                        : std::string("<absent>")),
          "algorithm echoed wrong");
    check(param(p, "userhash") == (c.userhash ? "true" : "<absent>"), "userhash echoed wrong");
    const auth::digest_qop qop = auth::choose_qop(c);
    const std::string qop_text = qop == auth::digest_qop::auth_int ? "auth-int" : "auth";
    if (qop == auth::digest_qop::none) {
        check(!p.param("qop") && !p.param("nc") && !p.param("cnonce"), "qop fields without qop");
    } else {
        check(param(p, "qop") == qop_text, "qop echoed wrong");
        check(param(p, "nc") == hex8(expected_nc), "nc wrong");
        check(param(p, "cnonce") == in.cnonce, "cnonce echoed wrong");
    }
    check(state.nonce_count() == expected_nc, "nonce_count wrong");

    // The username as a server reads it.
    const auto hash = hash_of(c.algorithm);
    const bool plain_name = p.param("username") != nullptr;
    check(plain_name != (p.param("username*") != nullptr), "not exactly one username form");
    if (c.userhash) {
        check(plain_name && param(p, "username") ==
                                crypto::hex_hash(hash, {in.username, c.realm}).value_or("?"),
              "userhash wrong");
    } else if (plain_name) {
        check(param(p, "username") == in.username, "username echoed wrong");
    } else {
        check(param(p, "username*").starts_with("UTF-8''"), "username* not RFC 8187");
    }

    // response, recomputed from the values read back (the username from the input: the
    // username* and userhash forms are decoded or looked up by a server).
    auto ha1 = crypto::hex_hash(hash, {in.username, param(p, "realm"), in.password});
    check(ha1.has_value(), "hash failed");
    if (is_session(c.algorithm))
        ha1 = crypto::hex_hash(hash, {*ha1, param(p, "nonce"), param(p, "cnonce")});
    std::optional<std::string> ha2;
    if (qop == auth::digest_qop::auth_int) {
        ha2 = crypto::hex_hash(
            hash, {in.method, param(p, "uri"), crypto::hex_hash(hash, {*in.body}).value_or("")});
    } else {
        ha2 = crypto::hex_hash(hash, {in.method, param(p, "uri")});
    }
    const auto expected = qop == auth::digest_qop::none
                              ? crypto::hex_hash(hash, {*ha1, param(p, "nonce"), *ha2})
                              : crypto::hex_hash(hash, {*ha1, param(p, "nonce"), param(p, "nc"),
                                                        param(p, "cnonce"), param(p, "qop"), *ha2});
    check(param(p, "response") == expected.value_or("?"), "response does not verify");
}

/// Three requests on one nonce, the Authentication-Info, one more request.
void exercise(auth::digest_state state, const inputs& in) {
    for (int round = 0; round < 4; ++round) {
        if (round == 3) {
            if (!in.auth_info) return;
            const std::string old_nonce = state.challenge().nonce;
            const std::uint32_t old_nc = state.nonce_count();
            if (state.on_authentication_info(*in.auth_info)) {
                check(state.challenge().nonce == old_nonce && state.nonce_count() == old_nc,
                      "a bad Authentication-Info changed the state");
                return;
            }
            check(state.challenge().nonce == old_nonce || state.nonce_count() == 0,
                  "nextnonce did not restart nc");
        }
        const std::uint32_t nc_before = state.nonce_count();
        auth::digest_state other = state; // the same nonce, nc and cnonce
        std::string header = "untouched";
        if (state.authorize(in.method, in.uri, in.username, in.password, in.body, header)) {
            check(header == "untouched", "header changed on error");
            check(state.nonce_count() == nc_before, "nc moved on error");
            return;
        }
        check_header(header, state, in, nc_before + 1);
        std::string other_header;
        const std::string other_password = std::string(in.password) + "!";
        check(
            !other.authorize(in.method, in.uri, in.username, other_password, in.body, other_header),
            "another password failed");
        const auto mine = without_response(header);
        const auto theirs = without_response(other_header);
        check(!mine || !theirs || *mine == *theirs, "the password changes more than the response");
    }
}

std::optional<auth::digest_algorithm> algorithm_flag(char f) {
    switch (f) {
    case 'a':
        return auth::digest_algorithm::md5;
    case 'b':
        return auth::digest_algorithm::md5_sess;
    case 'c':
        return std::nullopt; // charset, see below
    case 'd':
        return auth::digest_algorithm::sha256;
    case 'e':
        return auth::digest_algorithm::sha256_sess;
    case 'f':
        return auth::digest_algorithm::sha512_256;
    case 'g':
        return auth::digest_algorithm::sha512_256_sess;
    default:
        return std::nullopt;
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    std::vector<std::string_view> fields;
    for (std::size_t start = 0;;) {
        const std::size_t nl =
            fields.size() == 11 ? std::string_view::npos : input.find('\n', start);
        fields.push_back(input.substr(start, nl == std::string_view::npos ? nl : nl - start));
        if (nl == std::string_view::npos) break;
        start = nl + 1;
    }
    const auto field = [&](std::size_t i) -> std::optional<std::string_view> {
        if (i < fields.size()) return fields[i];
        return std::nullopt;
    };

    inputs in;
    if (auto f = field(1)) in.method = *f;
    if (auto f = field(2)) in.uri = *f;
    if (auto f = field(3)) in.username = *f;
    if (auto f = field(4)) in.password = *f;
    if (auto f = field(5)) in.cnonce = std::string(*f);
    in.auth_info = field(6);
    in.body = field(11);
    const std::string cnonce = in.cnonce;
    auto source = [cnonce] { return cnonce; };

    // The challenge as it arrives: parsed, then read as Digest.
    std::vector<auth::challenge> challenges;
    std::string detail;
    if (!auth::parse_challenges(fields[0], challenges, detail)) {
        for (const auto& c : challenges) {
            auth::digest_challenge d;
            if (c.scheme != "digest" || auth::parse_digest_challenge(c, d)) continue;
            check(!d.nonce.empty(), "digest challenge without a nonce accepted");
            check(d.qop_auth || d.qop_auth_int || !is_session(d.algorithm), "-sess without qop");
            exercise(auth::digest_state(std::move(d), source), in);
        }
    }

    // A challenge built directly: values the parser would refuse (control characters) reach
    // authorize() itself.
    if (auto flags = field(7)) {
        auth::digest_challenge d;
        d.realm = std::string(field(8).value_or(""));
        d.nonce = std::string(field(9).value_or("n"));
        for (char f : *flags) {
            if (auto a = algorithm_flag(f)) d.algorithm = *a;
            d.algorithm_present = d.algorithm_present || f == 'p';
            d.qop_auth = d.qop_auth || f == 'q';
            d.qop_auth_int = d.qop_auth_int || f == 'i';
            d.userhash = d.userhash || f == 'u';
            d.charset_utf8 = d.charset_utf8 || f == 'c';
            if (f == 'o') d.opaque = std::string(field(10).value_or(""));
        }
        exercise(auth::digest_state(std::move(d), source), in);
    }
    return 0;
}
