#pragma once
/// The syntax of a WinHTTP proxy bypass list (`winhttp.bypass` in the config, `--bypass` of
/// `authshim winhttp apply` and `authshim config set`). Portable; a pure function, safe from any
/// thread.

#include <cstddef>
#include <string>
#include <string_view>

namespace authshim::config {

/// Longest bypass list accepted (real lists are far shorter).
inline constexpr std::size_t winhttp_max_bypass_bytes = 2048;

/// Checks a bypass list: `;`-separated, non-empty entries of printable ASCII without whitespace
/// or double quotes, at most `winhttp_max_bypass_bytes`. False and `*error` (when given) says why
/// if not.
bool validate_winhttp_bypass(std::string_view list, std::string* error);

} // namespace authshim::config
