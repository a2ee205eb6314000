#pragma once
/// Loads and validates an authshim JSON configuration file. Every problem is collected and
/// reported at once, each with where it is (file plus line:column for syntax errors, file plus
/// JSON pointer for everything else) and what was expected. Loading checks the shape of secret
/// sources but reads none: `resolve_credentials` (config/secret_resolver.hpp) does that next.
/// No diagnostic ever quotes a password.
/// Thread safety: free functions with no shared state.

#include "config/config.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace authshim::config {

/// One problem found while loading. `where` is e.g. `/etc/authshim.json:3:14` or
/// `/etc/authshim.json: /timeouts/connect`; `what` says what is wrong and what was expected.
struct diagnostic {
    std::string where;
    std::string what;
    /// `where: what`
    std::string to_string() const;
};

struct load_result {
    std::optional<config> value;    ///< set when there are no errors
    std::vector<diagnostic> errors; ///< empty on success
    /// Non-fatal remarks: a plain-text password, credentials no upstream uses, an access block
    /// of /0. Given with or without errors.
    std::vector<diagnostic> warnings;
};

/// Reads and validates `file`. Relative paths inside it are resolved against its directory.
load_result load_file(const std::filesystem::path& file);

/// Validates JSON text. `origin` names the text in diagnostics; `base_dir` resolves relative
/// paths.
load_result load_string(std::string_view text, const std::string& origin,
                        const std::filesystem::path& base_dir);

/// Parses a duration such as `250ms`, `15s`, `5m`, `1h` (a positive integer and a unit).
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

/// The largest unit that writes `value` exactly (`5m`, `15s`, `250ms`): how durations are
/// written in the config file and in messages about them.
std::string format_duration(std::chrono::milliseconds value);

/// Parses `host:port`, `[v6]:port` or `v4:port`. Port 1-65535 (0 allowed when `allow_port_zero`).
std::optional<endpoint> parse_endpoint(std::string_view text, bool allow_port_zero = false);

/// Parses `a.b.c.d/n`, `v6/n` or a bare address (full-length prefix).
std::optional<cidr> parse_cidr(std::string_view text);

/// Parses one `access.destinations` entry: `host.example.com`, `*.example.com`, an IP address
/// or an address block (`10.0.0.0/8`, `2001:db8::/32`). Nothing for anything else; the loader
/// explains why.
std::optional<destination_pattern> parse_destination(std::string_view text);

/// Parses an IP literal strictly: IPv4 as four decimal numbers 0-255 without leading zeros (no
/// `0x7f.1`, `0177.0.0.1`, `2130706433`, `127.1`), IPv6 without brackets or zone ID. Gives 4 or
/// 16 bytes in network order; nothing when `text` is not such a literal.
std::optional<std::vector<std::uint8_t>> parse_ip_address(std::string_view text);

/// The effective configuration as pretty JSON, every default filled in (`log.access` as false
/// or its full object form, `admin.listen` and `admin.token` as null when there are none).
/// Secrets (passwords and the admin token) are masked: `{"plain": "********"}`,
/// `{"dpapi": "<N bytes>"}`; env, file and credman references are shown (they are not secrets);
/// a resolved password or token never is. The output loads again to the same configuration,
/// except that a plain secret becomes the mask and a DPAPI blob is refused.
std::string to_display_json(const config& cfg);

} // namespace authshim::config
