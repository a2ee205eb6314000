// libFuzzer target: the Proxy-Authenticate / Proxy-Authentication-Info parsers
// (auth/challenge.hpp) and the scheme choice made from their result (auth/scheme_choice.hpp).
//
// Input: the header values of one 407, one per line ('\n' separates values; a value may hold
// any other byte, '\r' and NUL included). Checked beyond "no crash, no leak, no UB":
// - success: schemes and parameter names are lowercase tokens, names unique per challenge,
//   counts and sizes within parse_limits, a token68 challenge has no parameters;
// - success: the challenges written back as canonical text (quoted values) parse to the same
//   challenges (nothing lost, nothing invented by the escaping rules);
// - failure: the output is empty and `detail` is a short text without control characters;
// - choose_scheme: a choice is allowed and offered, Digest beats Basic when both are allowed in
//   that order, Basic after Digest-before is refused, and the message quotes no parameter value.
#include "auth/challenge.hpp"
#include "auth/digest.hpp"
#include "auth/errors.hpp"
#include "auth/scheme.hpp"
#include "auth/scheme_choice.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace auth = authshim::auth;

namespace {

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_challenge: invariant broken: %s\n", what);
    std::abort();
}

void check(bool condition, const char* what) {
    if (!condition) fail(what);
}

bool is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool is_lower_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return is_tchar(static_cast<unsigned char>(c));
    });
}

void check_detail(const std::string& detail) {
    check(!detail.empty() && detail.size() < 200, "error detail empty or long");
    for (char c : detail)
        check(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f, "control character in detail");
}

void check_params(const std::vector<auth::auth_param>& params) {
    check(params.size() <= auth::parse_limits::max_params, "too many parameters");
    for (std::size_t i = 0; i < params.size(); ++i) {
        check(is_lower_token(params[i].name), "parameter name not a lowercase token");
        check(params[i].value.size() <= auth::parse_limits::max_value_bytes, "value too large");
        for (std::size_t j = 0; j < i; ++j)
            check(params[i].name != params[j].name, "duplicate parameter name");
        for (char c : params[i].value) {
            const auto u = static_cast<unsigned char>(c);
            check(u == '\t' || (u >= 0x20 && u != 0x7f), "control character in a value");
        }
    }
}

void append_quoted(std::string& out, std::string_view text) {
    out += '"';
    for (char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
}

/// One challenge as canonical text: `scheme token68` or `scheme a="x", b="y"`.
std::string write_challenge(const auth::challenge& c) {
    std::string out = c.scheme;
    if (c.token68) {
        out += ' ';
        out += *c.token68;
        return out;
    }
    for (std::size_t i = 0; i < c.params.size(); ++i) {
        out += i == 0 ? " " : ", ";
        out += c.params[i].name;
        out += '=';
        append_quoted(out, c.params[i].value);
    }
    return out;
}

bool same(const auth::challenge& a, const auth::challenge& b) {
    if (a.scheme != b.scheme || a.token68 != b.token68 || a.params.size() != b.params.size())
        return false;
    for (std::size_t i = 0; i < a.params.size(); ++i) {
        if (a.params[i].name != b.params[i].name || a.params[i].value != b.params[i].value)
            return false;
    }
    return true;
}

/// Parameter values that no part of a scheme_choice message could spell by accident: scheme
/// names are tokens and the fixed text is words and `,;:()` punctuation.
bool must_not_be_quoted(std::string_view value) {
    return value.size() >= 4 && value.find_first_of("\"=/@\\<>{}[]?") != std::string_view::npos;
}

void check_choice(const std::vector<auth::challenge>& offered) {
    using auth::scheme;
    static constexpr std::array<std::array<scheme, 2>, 2> orders{
        {{scheme::digest, scheme::basic}, {scheme::basic, scheme::digest}}};
    const std::array<std::vector<scheme>, 4> allowed_lists{
        std::vector<scheme>{orders[0].begin(), orders[0].end()},
        std::vector<scheme>{orders[1].begin(), orders[1].end()},
        std::vector<scheme>{scheme::digest}, std::vector<scheme>{scheme::basic}};
    bool any_basic = false;
    bool any_usable_digest = false;
    for (const auto& c : offered) {
        any_basic = any_basic || c.scheme == "basic";
        auth::digest_challenge d;
        if (c.scheme == "digest" && !auth::parse_digest_challenge(c, d)) any_usable_digest = true;
    }
    for (const auto& allowed : allowed_lists) {
        for (const bool before : {false, true}) {
            const auto r = auth::choose_scheme(offered, allowed, before);
            check(r.usable_digest_offered == any_usable_digest, "usable_digest_offered wrong");
            if (r.error) {
                check(!r.message.empty() && r.message.size() < 4096, "choice message size");
                for (const auto& c : offered) {
                    for (const auto& p : c.params) {
                        if (must_not_be_quoted(p.value))
                            check(r.message.find(p.value) == std::string::npos,
                                  "choice message quotes a parameter value");
                    }
                }
                continue;
            }
            check(std::find(allowed.begin(), allowed.end(), r.chosen) != allowed.end(),
                  "chose a scheme that is not allowed");
            check(r.challenge_index < offered.size(), "challenge index out of range");
            check(offered[r.challenge_index].scheme == auth::scheme_name(r.chosen),
                  "chosen challenge has another scheme");
            check(r.digest.has_value() == (r.chosen == scheme::digest), "digest presence");
            const bool digest_allowed =
                std::find(allowed.begin(), allowed.end(), scheme::digest) != allowed.end();
            if (r.chosen == scheme::basic) {
                check(any_basic, "basic chosen but not offered");
                check(!(before && digest_allowed && !any_usable_digest), "downgrade not refused");
                check(!(allowed.front() == scheme::digest && any_usable_digest),
                      "basic chosen over a usable digest");
            }
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    std::vector<std::string_view> values;
    for (std::size_t start = 0;;) {
        const std::size_t nl = input.find('\n', start);
        values.push_back(input.substr(start, nl == std::string_view::npos ? nl : nl - start));
        if (nl == std::string_view::npos) break;
        start = nl + 1;
    }

    std::vector<auth::challenge> challenges;
    std::string detail;
    if (const auto ec = auth::parse_challenges(values, challenges, detail)) {
        check(challenges.empty(), "challenges left after an error");
        check_detail(detail);
    } else {
        check(challenges.size() <= auth::parse_limits::max_challenges, "too many challenges");
        for (const auto& c : challenges) {
            check(is_lower_token(c.scheme), "scheme not a lowercase token");
            if (c.token68) check(c.params.empty(), "token68 with parameters");
            check_params(c.params);
            // Canonical text, one value per challenge (a value never continues a challenge).
            const std::string text = write_challenge(c);
            std::vector<auth::challenge> again;
            std::string again_detail;
            const auto ec2 = auth::parse_challenges(text, again, again_detail);
            // Escaping may take the canonical text past the total limit; nothing else fails.
            if (ec2) {
                check(ec2 == auth::auth_errc::challenge_too_large &&
                          text.size() > auth::parse_limits::max_total_bytes,
                      "canonical challenge text does not parse");
                continue;
            }
            check(again.size() == 1 && same(again[0], c), "canonical text parses differently");
        }
        check_choice(challenges);
    }

    // The same values as Proxy-Authentication-Info (a parameter list without a scheme).
    for (std::string_view value : values) {
        std::vector<auth::auth_param> params;
        std::string info_detail;
        if (auth::parse_auth_info(value, params, info_detail)) {
            check(params.empty(), "parameters left after an error");
            check_detail(info_detail);
        } else {
            check_params(params);
        }
    }
    return 0;
}
