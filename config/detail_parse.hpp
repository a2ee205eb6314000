#pragma once
/// Private to config/: value parsers that explain why a text was refused. The public
/// `parse_duration` / `parse_endpoint` / `parse_cidr` in loader.hpp wrap these; the loader uses
/// the explanations in its diagnostics.

#include "config/config.hpp"

#include <chrono>
#include <string>
#include <string_view>
#include <variant>

namespace authshim::config::detail {

/// Either the parsed value or an explanation (what is wrong and what was expected; it never
/// repeats the input, the caller quotes it when that is safe).
template <typename T> using parsed = std::variant<T, std::string>;

/// A positive integer and a unit (`ms`, `s`, `m`, `h`); no upper bound beyond overflow.
parsed<std::chrono::milliseconds> parse_duration(std::string_view text);

/// The largest unit that represents `value` exactly: 5m, not 300s; 250ms stays 250ms. Parses
/// back to the same value with `parse_duration`.
std::string format_duration(std::chrono::milliseconds value);

/// A port number in decimal, 1-65535 (or 0 when `allow_zero`).
parsed<std::uint16_t> parse_port(std::string_view text, bool allow_zero);

/// `host:port`, `[v6]:port`; the host is a DNS name or an IP literal (canonical text).
parsed<endpoint> parse_endpoint(std::string_view text, bool allow_port_zero);

/// `a.b.c.d/n`, `v6/n`, or a bare address; host bits beyond the prefix are refused.
parsed<cidr> parse_cidr(std::string_view text);

/// `"lo-hi"` with 1 <= lo <= hi <= 65535.
parsed<port_range> parse_port_range(std::string_view text);

/// An upstream proxy address: `host:port`, `http://host:port` or `https://host:port` (TLS to the
/// proxy); the scheme is case-insensitive and a trailing `/` is allowed. Sets `transport` and
/// `address` only.
parsed<upstream> parse_upstream_address(std::string_view text);

/// One `access.destinations` entry (see config::destination_pattern); the explanation says
/// what was wrong (a scheme, a port, a misplaced `*` ...) and how to write it instead.
parsed<destination_pattern> parse_destination(std::string_view text);

/// True when the last label of `host` (a trailing dot ignored) is a number (`1`, `0x7f`,
/// `0X`): the host would be read as an IPv4 address in some legacy form by URL parsers and
/// `inet_aton`, never as a DNS name.
bool ends_in_number(std::string_view host);

/// True when `host` is a syntactically valid DNS name (letters, digits, `-`, `_`, dots).
bool is_valid_host_name(std::string_view host);

} // namespace authshim::config::detail
