#pragma once
/// Codec of the REG_BINARY `WinHttpSettings` value (the machine-wide WinHTTP proxy that
/// `netsh winhttp set proxy` writes). Portable: plain values and bytes, no Windows headers.
/// Ownership: plain copyable values. Thread safety: free functions without shared state.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace authshim::service {

/// `flags` bits of the value (netsh writes both for a named proxy).
inline constexpr std::uint32_t winhttp_flag_direct = 0x1;
inline constexpr std::uint32_t winhttp_flag_named_proxy = 0x2;
/// Versions (first u32) seen in the wild; Wine only honours 0x18.
inline constexpr std::uint32_t winhttp_version_classic = 0x18;
inline constexpr std::uint32_t winhttp_version_newer = 0x28;
/// Longest proxy or bypass string `decode` accepts (real values are far shorter).
inline constexpr std::size_t winhttp_max_string_bytes = 32 * 1024;

/// One decoded value: little-endian u32 version, counter, flags, then u32 length + proxy
/// (ASCII), u32 length + bypass list; whatever follows is kept verbatim in `trailing`.
struct winhttp_settings {
    std::uint32_t version = winhttp_version_classic;
    std::uint32_t counter = 0;
    std::uint32_t flags = winhttp_flag_direct;
    std::string proxy;
    std::string bypass;
    std::vector<std::uint8_t> trailing;

    friend bool operator==(const winhttp_settings&, const winhttp_settings&) = default;
};

/// Decodes `bytes`; nothing (and `*error`, when given, says why) when the value is truncated,
/// a length runs past the end or above `winhttp_max_string_bytes`, or a string holds bytes
/// other than printable ASCII. Never reads outside `bytes`.
std::optional<winhttp_settings> decode(std::span<const std::uint8_t> bytes, std::string* error);

/// The value's bytes; `decode(encode(s)) == s` for every `s` with printable-ASCII strings.
std::vector<std::uint8_t> encode(const winhttp_settings& settings);

/// One line for people: `proxy 127.0.0.1:3128, bypass "<local>"`, `direct access (no proxy)`.
std::string describe(const winhttp_settings& settings);

/// True when `settings` makes WinHTTP use a named proxy (flag set and a proxy string).
bool uses_named_proxy(const winhttp_settings& settings);

/// The settings `authshim winhttp apply` writes: named proxy `proxy` (flags 3), `bypass`,
/// counter 0, and the version of `previous` when that is 0x18 or 0x28 (else 0x18).
winhttp_settings applied_settings(std::string proxy, std::string bypass,
                                  const std::optional<winhttp_settings>& previous);

/// The proxy addresses in a WinHTTP proxy string (`host:port`, `http=host:port;https=...`,
/// optionally `http://host:port`), without scheme prefixes, lower-cased, empty entries dropped.
std::vector<std::string> proxy_addresses(std::string_view proxy);

/// `18 00 00 00 ...`: bytes as space-separated lower-case hex pairs, 16 per line.
std::string hex_dump(std::span<const std::uint8_t> bytes);

} // namespace authshim::service
