#pragma once
/// Private to config/: IP literal parsing and formatting shared by config.cpp, the value parsers
/// and the loader. Strict: no leading zeros in IPv4 octets (they read as octal elsewhere), no
/// IPv6 zone IDs, no brackets, no whitespace.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace authshim::config::detail {

using ipv4_bytes = std::array<std::uint8_t, 4>;
using ipv6_bytes = std::array<std::uint8_t, 16>;

/// `a.b.c.d`, each part 0-255 in decimal without leading zeros.
std::optional<ipv4_bytes> parse_ipv4(std::string_view text);

/// An IPv6 literal without brackets (`::1`, `2001:db8::1`, `::ffff:127.0.0.1`).
std::optional<ipv6_bytes> parse_ipv6(std::string_view text);

/// Either kind of literal as 4 or 16 bytes; empty when `text` is not an IP literal.
std::vector<std::uint8_t> parse_ip(std::string_view text);

/// Dotted decimal for 4 bytes, RFC 5952 text for 16 bytes (`::ffff:a.b.c.d` for mapped
/// addresses). Any other size gives `"?"`.
std::string format_ip(const std::vector<std::uint8_t>& bytes);

/// True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104.
bool is_loopback(const std::vector<std::uint8_t>& bytes);

/// True for 0.0.0.0 and ::.
bool is_unspecified(const std::vector<std::uint8_t>& bytes);

} // namespace authshim::config::detail
