#pragma once
/// authshim's own error conditions in upstream authentication, as a std::error_code category,
/// so that expected failures (hostile challenges, unusable schemes) travel as values.
/// Thread safety: the category is a stateless singleton.

#include <system_error>
#include <type_traits>

namespace authshim::auth {

enum class auth_errc {
    malformed_challenge = 1,       ///< a Proxy-Authenticate value breaks RFC 9110 §11 syntax
    challenge_too_large,           ///< a challenge exceeds the parser's size or count limits
    malformed_authentication_info, ///< a Proxy-Authentication-Info value is not a param list
    no_supported_scheme,           ///< nothing offered is both implemented and allowed
    downgrade_refused,             ///< Digest was offered before; Basic alone is refused now
    digest_missing_nonce,          ///< a Digest challenge without a (non-empty) nonce
    digest_unsupported_algorithm,  ///< a Digest algorithm other than the six of RFC 7616
    digest_unsupported_qop,        ///< qop offers neither auth nor auth-int, or -sess without qop
    digest_body_required,          ///< qop=auth-int is the only choice and no body was given
    digest_nonce_exhausted,        ///< nc would pass ffffffff for this nonce
    invalid_header_value,          ///< a value to be sent contains control characters
    crypto_failure,                ///< a digest or the random generator is unavailable or failed
};

const std::error_category& auth_category() noexcept;

inline std::error_code make_error_code(auth_errc e) noexcept {
    return {static_cast<int>(e), auth_category()};
}

} // namespace authshim::auth

template <> struct std::is_error_code_enum<authshim::auth::auth_errc> : std::true_type {};
