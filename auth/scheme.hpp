#pragma once
/// The authentication schemes authshim can answer with, named as in the configuration's
/// `upstreams[].schemes`. Plain values and pure functions; thread-safe.

#include "auth/detail_text.hpp"

#include <array>
#include <optional>
#include <string_view>

namespace authshim::auth {

enum class scheme { digest, basic };

/// The default `schemes` list: Digest when offered, else Basic.
inline constexpr std::array<scheme, 2> default_schemes{scheme::digest, scheme::basic};

/// "digest" or "basic": the configuration spelling and the lowercased challenge scheme.
constexpr std::string_view scheme_name(scheme s) noexcept {
    return s == scheme::digest ? "digest" : "basic";
}

/// Case-insensitive inverse of `scheme_name`; empty for anything else.
inline std::optional<scheme> scheme_from_name(std::string_view name) noexcept {
    if (detail::iequals(name, "digest")) return scheme::digest;
    if (detail::iequals(name, "basic")) return scheme::basic;
    return std::nullopt;
}

/// Whether a scheme's handshake is bound to one TCP connection (NTLM and Negotiate will be;
/// Basic and Digest are not: their answers can go on any connection to the upstream).
constexpr bool bound_to_connection(scheme) noexcept {
    return false;
}

} // namespace authshim::auth
