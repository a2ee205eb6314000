#include "auth/digest.hpp"

#include "auth/crypto.hpp"
#include "auth/detail_text.hpp"
#include "auth/errors.hpp"

#include <array>
#include <limits>
#include <utility>
#include <vector>

namespace authshim::auth {
namespace {

struct algorithm_info {
    digest_algorithm algorithm;
    std::string_view name;
    crypto::hash_kind hash;
    bool session;
    int strength;
};

// Preference: the stronger hash first; within one hash the plain form before -sess, which adds
// nothing for a proxy client and is the form servers get wrong (Apache's MD5-sess).
constexpr std::array<algorithm_info, 6> algorithms{{
    {digest_algorithm::md5, "MD5", crypto::hash_kind::md5, false, 2},
    {digest_algorithm::md5_sess, "MD5-sess", crypto::hash_kind::md5, true, 1},
    {digest_algorithm::sha256, "SHA-256", crypto::hash_kind::sha256, false, 4},
    {digest_algorithm::sha256_sess, "SHA-256-sess", crypto::hash_kind::sha256, true, 3},
    {digest_algorithm::sha512_256, "SHA-512-256", crypto::hash_kind::sha512_256, false, 6},
    {digest_algorithm::sha512_256_sess, "SHA-512-256-sess", crypto::hash_kind::sha512_256, true, 5},
}};

const algorithm_info& info(digest_algorithm algorithm) noexcept {
    for (const algorithm_info& i : algorithms) {
        if (i.algorithm == algorithm) return i;
    }
    return algorithms[0];
}

/// Reads the qop option list (`"auth,auth-int"`; unknown options are ignored).
void read_qop_options(std::string_view list, digest_challenge& out) {
    while (!list.empty()) {
        const std::size_t comma = list.find(',');
        std::string_view item = list.substr(0, comma);
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
            item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
            item.remove_suffix(1);
        if (detail::iequals(item, "auth")) out.qop_auth = true;
        if (detail::iequals(item, "auth-int")) out.qop_auth_int = true;
    }
}

bool is_plain_ascii(std::string_view text) noexcept {
    for (char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c >= 0x80 || (detail::is_ctl(c) && c != '\t')) return false;
    }
    return true;
}

/// The username parameter: hashed (userhash), quoted, or RFC 8187 `username*`.
void append_username(std::string& out, const digest_challenge& c, std::string_view username,
                     const std::string& hashed_username) {
    if (c.userhash) {
        out += "username=";
        detail::append_quoted(out, hashed_username);
    } else if (is_plain_ascii(username) || (!c.charset_utf8 && !detail::has_ctl(username, true))) {
        // Plain ASCII; or non-ASCII for a server that did not announce charset=UTF-8 and so
        // probably predates username* (Squid, Apache): raw bytes as obs-text, as curl sends.
        out += "username=";
        detail::append_quoted(out, username);
    } else {
        out += "username*=";
        out += detail::rfc8187_encode(username);
    }
}

} // namespace

std::string_view digest_algorithm_name(digest_algorithm algorithm) noexcept {
    return info(algorithm).name;
}

std::optional<digest_algorithm> parse_digest_algorithm(std::string_view name) noexcept {
    for (const algorithm_info& i : algorithms) {
        if (detail::iequals(name, i.name)) return i.algorithm;
    }
    return std::nullopt;
}

int digest_algorithm_strength(digest_algorithm algorithm) noexcept {
    return info(algorithm).strength;
}

std::error_code parse_digest_challenge(const challenge& c, digest_challenge& out) {
    if (c.scheme != "digest" || c.token68) return auth_errc::malformed_challenge;
    digest_challenge d;
    const std::string* nonce = c.param("nonce");
    if (nonce == nullptr || nonce->empty()) return auth_errc::digest_missing_nonce;
    d.nonce = *nonce;
    if (const std::string* realm = c.param("realm")) d.realm = *realm;
    if (const std::string* opaque = c.param("opaque")) d.opaque = *opaque;
    if (const std::string* algorithm = c.param("algorithm")) {
        const auto parsed = parse_digest_algorithm(*algorithm);
        if (!parsed) return auth_errc::digest_unsupported_algorithm;
        d.algorithm = *parsed;
        d.algorithm_present = true;
    }
    if (const std::string* qop = c.param("qop")) {
        read_qop_options(*qop, d);
        if (!d.qop_auth && !d.qop_auth_int) return auth_errc::digest_unsupported_qop;
    } else if (info(d.algorithm).session) {
        // -sess needs a cnonce, which RFC 2617 only sends with qop: no consistent answer exists.
        return auth_errc::digest_unsupported_qop;
    }
    if (const std::string* stale = c.param("stale")) d.stale = detail::iequals(*stale, "true");
    if (const std::string* uh = c.param("userhash")) d.userhash = detail::iequals(*uh, "true");
    if (const std::string* cs = c.param("charset")) d.charset_utf8 = detail::iequals(*cs, "UTF-8");
    out = std::move(d);
    return {};
}

digest_qop choose_qop(const digest_challenge& c) noexcept {
    if (c.qop_auth) return digest_qop::auth;
    if (c.qop_auth_int) return digest_qop::auth_int;
    return digest_qop::none;
}

cnonce_source default_cnonce_source() {
    return [] {
        std::array<unsigned char, 16> bytes{};
        if (!crypto::random_bytes(bytes)) return std::string();
        static constexpr char lower_hex[] = "0123456789abcdef";
        std::string out;
        for (unsigned char b : bytes) {
            out += lower_hex[b >> 4];
            out += lower_hex[b & 0x0f];
        }
        return out;
    };
}

digest_state::digest_state(digest_challenge challenge, cnonce_source cnonce)
    : challenge_(std::move(challenge)), cnonce_source_(std::move(cnonce)) {}

void digest_state::reset(digest_challenge challenge) {
    challenge_ = std::move(challenge);
    cnonce_.clear();
    nc_ = 0;
}

std::error_code digest_state::authorize(std::string_view method, std::string_view digest_uri,
                                        std::string_view username, std::string_view password,
                                        std::optional<std::string_view> body,
                                        std::string& header_value) {
    const digest_challenge& c = challenge_;
    const algorithm_info& alg = info(c.algorithm);
    const digest_qop qop = choose_qop(c);
    if (qop == digest_qop::none && alg.session) return auth_errc::digest_unsupported_qop;
    if (qop == digest_qop::auth_int && !body) return auth_errc::digest_body_required;
    if (nc_ == std::numeric_limits<std::uint32_t>::max()) return auth_errc::digest_nonce_exhausted;
    // Everything echoed must be sendable: a CR or LF here would split the header.
    if (method.empty() || digest_uri.empty() || detail::has_ctl(method, false) ||
        detail::has_ctl(digest_uri, false) || detail::has_ctl(c.realm, true) ||
        detail::has_ctl(c.nonce, true) || (c.opaque && detail::has_ctl(*c.opaque, true))) {
        return auth_errc::invalid_header_value;
    }

    const bool needs_cnonce = qop != digest_qop::none || alg.session;
    if (needs_cnonce && cnonce_.empty()) {
        std::string drawn = cnonce_source_ ? cnonce_source_() : std::string();
        if (drawn.empty() || detail::has_ctl(drawn, false) ||
            drawn.find_first_of("\"\\") != std::string::npos) {
            return auth_errc::crypto_failure;
        }
        cnonce_ = std::move(drawn);
    }
    const std::uint32_t nc = nc_ + 1;
    const std::string nc_text = detail::hex8(nc);
    const std::string_view qop_text = qop == digest_qop::auth_int ? "auth-int" : "auth";

    // H(A1), the password-equivalent: cleansed before returning on every path.
    std::optional<std::string> ha1 = crypto::hex_hash(alg.hash, {username, c.realm, password});
    if (ha1 && alg.session) {
        std::optional<std::string> session = crypto::hex_hash(alg.hash, {*ha1, c.nonce, cnonce_});
        crypto::cleanse(*ha1);
        ha1 = std::move(session);
    }
    std::optional<std::string> ha2;
    if (qop == digest_qop::auth_int) {
        if (auto body_hash = crypto::hex_hash(alg.hash, {*body})) {
            ha2 = crypto::hex_hash(alg.hash, {method, digest_uri, *body_hash});
        }
    } else {
        ha2 = crypto::hex_hash(alg.hash, {method, digest_uri});
    }
    std::optional<std::string> response;
    if (ha1 && ha2) {
        response =
            qop == digest_qop::none
                ? crypto::hex_hash(alg.hash, {*ha1, c.nonce, *ha2})
                : crypto::hex_hash(alg.hash, {*ha1, c.nonce, nc_text, cnonce_, qop_text, *ha2});
    }
    if (ha1) crypto::cleanse(*ha1);
    std::optional<std::string> hashed_username;
    if (c.userhash) hashed_username = crypto::hex_hash(alg.hash, {username, c.realm});
    if (!response || (c.userhash && !hashed_username)) return auth_errc::crypto_failure;

    std::string out = "Digest ";
    append_username(out, c, username, c.userhash ? *hashed_username : std::string());
    out += ", realm=";
    detail::append_quoted(out, c.realm);
    out += ", nonce=";
    detail::append_quoted(out, c.nonce);
    out += ", uri=";
    detail::append_quoted(out, digest_uri);
    if (c.algorithm_present) {
        out += ", algorithm=";
        out += alg.name;
    }
    out += ", response=";
    detail::append_quoted(out, *response);
    if (qop != digest_qop::none) {
        out += ", qop=";
        out += qop_text;
        out += ", nc=";
        out += nc_text;
        out += ", cnonce=";
        detail::append_quoted(out, cnonce_);
    }
    if (c.opaque) {
        out += ", opaque=";
        detail::append_quoted(out, *c.opaque);
    }
    if (c.userhash) out += ", userhash=true";
    nc_ = nc;
    header_value = std::move(out);
    return {};
}

std::error_code digest_state::on_authentication_info(std::string_view header_value) {
    std::vector<auth_param> params;
    std::string detail;
    if (auto ec = parse_auth_info(header_value, params, detail)) return ec;
    for (const auth_param& p : params) {
        if (p.name == "nextnonce" && !p.value.empty() && p.value != challenge_.nonce) {
            challenge_.nonce = p.value;
            challenge_.stale = false;
            cnonce_.clear();
            nc_ = 0;
        }
    }
    return {};
}

} // namespace authshim::auth
