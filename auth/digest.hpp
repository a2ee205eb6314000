#pragma once
/// HTTP Digest access authentication (RFC 7616; RFC 2617 and RFC 2069 legacy forms): turns a
/// parsed challenge into a `digest_challenge` and, per nonce, computes Proxy-Authorization
/// values with a strictly increasing nc. No secrets are stored: the password is passed to each
/// `authorize` call. Thread safety: `digest_state` is a plain value and not synchronised; use one
/// per upstream and serialise its use (a nonce's nc must reach the server in order).

#include "auth/challenge.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace authshim::auth {

enum class digest_algorithm { md5, md5_sess, sha256, sha256_sess, sha512_256, sha512_256_sess };

/// The RFC 7616 spelling: "MD5", "MD5-sess", "SHA-256", ..., "SHA-512-256-sess".
std::string_view digest_algorithm_name(digest_algorithm algorithm) noexcept;
/// Case-insensitive; empty for anything but the six RFC 7616 names.
std::optional<digest_algorithm> parse_digest_algorithm(std::string_view name) noexcept;
/// Higher is preferred: SHA-512-256 > SHA-512-256-sess > SHA-256 > SHA-256-sess > MD5 > MD5-sess.
int digest_algorithm_strength(digest_algorithm algorithm) noexcept;

enum class digest_qop { none, auth, auth_int };

/// What a Digest challenge offers. `domain` is ignored (authshim talks to one proxy).
struct digest_challenge {
    std::string realm; ///< empty when the (non-conforming) challenge had none
    std::string nonce;
    std::optional<std::string> opaque;
    digest_algorithm algorithm = digest_algorithm::md5;
    bool algorithm_present = false; ///< echo `algorithm=` only when the challenge named one
    bool qop_auth = false;
    bool qop_auth_int = false; ///< neither set: legacy RFC 2069 challenge without qop
    bool stale = false;        ///< the previous nonce expired; not a credential rejection
    bool userhash = false;
    bool charset_utf8 = false;
};

/// Reads a challenge whose scheme is "digest". Errors: `malformed_challenge` (another scheme, or
/// a token68), `digest_missing_nonce`, `digest_unsupported_algorithm`, `digest_unsupported_qop`
/// (qop offers neither auth nor auth-int, or a -sess algorithm without qop).
std::error_code parse_digest_challenge(const challenge& c, digest_challenge& out);

/// The qop `authorize` will use: auth when offered (it needs no body and works pre-emptively),
/// else auth-int, else none (RFC 2069).
digest_qop choose_qop(const digest_challenge& c) noexcept;

/// Produces a client nonce: printable ASCII without `"` or `\`; empty on failure.
using cnonce_source = std::function<std::string()>;

/// 16 bytes from OpenSSL's RAND_bytes as 32 lowercase hex digits.
cnonce_source default_cnonce_source();

/// One nonce of one upstream: nonce, nc counter, cnonce (drawn once per nonce, so -sess session
/// keys stay valid whichever cnonce a server uses for A1).
class digest_state {
public:
    explicit digest_state(digest_challenge challenge,
                          cnonce_source cnonce = default_cnonce_source());

    /// Starts over with a new challenge (e.g. after `stale=true`): nc restarts at 1.
    void reset(digest_challenge challenge);

    /// Computes the next Proxy-Authorization value for `method` and `digest_uri` (the exact
    /// request-target: the absolute URI, or `host:port` for CONNECT) and increments nc.
    /// `body` is the buffered request body, needed only when qop=auth-int is used (pass "" for
    /// a request without one). UTF-8 usernames that are not plain ASCII go as `username*`
    /// (RFC 8187) when the challenge said charset=UTF-8, else as raw bytes like other clients.
    /// Errors: `digest_body_required`, `digest_unsupported_qop`, `digest_nonce_exhausted`,
    /// `invalid_header_value`, `crypto_failure`; `header_value` is then unchanged.
    std::error_code authorize(std::string_view method, std::string_view digest_uri,
                              std::string_view username, std::string_view password,
                              std::optional<std::string_view> body, std::string& header_value);

    /// Applies a Proxy-Authentication-Info value: `nextnonce` replaces the nonce and restarts
    /// nc at 1 with a fresh cnonce; other parameters (rspauth, ...) are not checked.
    /// Errors: `malformed_authentication_info`, `challenge_too_large`.
    std::error_code on_authentication_info(std::string_view header_value);

    const digest_challenge& challenge() const noexcept { return challenge_; }
    digest_qop qop() const noexcept { return choose_qop(challenge_); }
    /// The nc of the last `authorize` for the current nonce; 0 before the first.
    std::uint32_t nonce_count() const noexcept { return nc_; }

private:
    digest_challenge challenge_;
    cnonce_source cnonce_source_;
    std::string cnonce_; ///< drawn on first use of a nonce
    std::uint32_t nc_ = 0;
};

} // namespace authshim::auth
