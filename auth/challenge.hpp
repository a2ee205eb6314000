#pragma once
/// Parses Proxy-Authenticate values into challenges (RFC 9110 §11) and Proxy-Authentication-Info
/// values into parameter lists, tolerating what real proxies send (unquoted values with `+ / =`,
/// `realm = "x"`, empty list elements) and rejecting hostile input with an error, never a crash.
/// Results are plain values owned by the caller. Thread safety: free functions, no shared state.

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace authshim::auth {

/// Hard limits of the parsers. Exceeding any gives `auth_errc::challenge_too_large`.
struct parse_limits {
    static constexpr std::size_t max_total_bytes = 16 * 1024; ///< all header values together
    static constexpr std::size_t max_challenges = 64;
    static constexpr std::size_t max_params = 64;            ///< per challenge (or info value)
    static constexpr std::size_t max_value_bytes = 4 * 1024; ///< per parameter value, unescaped
};

struct auth_param {
    std::string name;  ///< lowercased (parameter names are case-insensitive)
    std::string value; ///< quoted-string already unescaped; unquoted values as sent
};

struct challenge {
    std::string scheme;                 ///< lowercased, e.g. "digest", "basic", "ntlm"
    std::optional<std::string> token68; ///< `Negotiate abc==` form; then `params` is empty
    std::vector<auth_param> params;     ///< in order; names are unique within a challenge

    /// The value of parameter `lowercase_name`, or null. Points into `params`.
    const std::string* param(std::string_view lowercase_name) const noexcept;
};

/// Parses every challenge of every value (one per Proxy-Authenticate header line, in order) into
/// `out` (replaced). A challenge never spans two values. Unknown schemes are kept (the caller
/// skips them). On error `out` is empty, the code is `malformed_challenge` or
/// `challenge_too_large`, and `detail` says what and where (value index, byte offset) without
/// quoting the input.
std::error_code parse_challenges(std::span<const std::string_view> header_values,
                                 std::vector<challenge>& out, std::string& detail);

/// Convenience for a single header value.
std::error_code parse_challenges(std::string_view header_value, std::vector<challenge>& out,
                                 std::string& detail);

/// Parses a Proxy-Authentication-Info value (`#auth-param`, no scheme) into `out` (replaced).
/// Errors: `malformed_authentication_info` or `challenge_too_large`, with `detail` as above.
std::error_code parse_auth_info(std::string_view header_value, std::vector<auth_param>& out,
                                std::string& detail);

} // namespace authshim::auth
