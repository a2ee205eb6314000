#pragma once
/// Private to auth/: ASCII helpers and the encodings the schemes put on the wire (base64,
/// quoted-string, RFC 8187 ext-value, nc hex). Pure functions; thread-safe.

#include <cstdint>
#include <string>
#include <string_view>

namespace authshim::auth::detail {

constexpr bool is_ctl(unsigned char c) noexcept {
    return c < 0x20 || c == 0x7f;
}

constexpr char to_lower_ascii(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

/// ASCII case-insensitive equality (RFC 9110 tokens); other bytes compare exactly.
bool iequals(std::string_view a, std::string_view b) noexcept;

std::string to_lower_ascii(std::string_view text);

/// True when `text` contains a control character; HTAB counts as one unless `allow_htab`.
bool has_ctl(std::string_view text, bool allow_htab) noexcept;

/// Appends `"text"` with `"` and `\` backslash-escaped (RFC 9110 §5.6.4). The caller ensures
/// `text` holds no control characters other than HTAB.
void append_quoted(std::string& out, std::string_view text);

/// RFC 4648 base64 with padding.
std::string base64_encode(std::string_view bytes);

/// RFC 8187 ext-value for UTF-8 text: `UTF-8''` then attr-chars, everything else %XX.
std::string rfc8187_encode(std::string_view utf8);

/// 8 lowercase hex digits (the Digest nc format).
std::string hex8(std::uint32_t value);

} // namespace authshim::auth::detail
