#pragma once
/// Plain configuration structs for authshim, as described by the key table in
/// shared/docs/ARCHITECTURE.md. Values only: no I/O, no logging. Built by config/loader.hpp;
/// credential passwords are filled in afterwards by `resolve_credentials`
/// (config/secret_resolver.hpp).
/// Ownership: plain values, copyable (secrets copy as `secret_string`, wiped when destroyed).
/// Thread safety: immutable after loading and resolving; share by const ref.

#include "config/secret.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace authshim::config {

/// A `host:port` pair. `host` is a name, an IPv4 literal or an IPv6 literal without brackets.
struct endpoint {
    std::string host;
    std::uint16_t port = 0;

    /// `host:port`, with brackets around IPv6 literals.
    std::string to_string() const;
    friend bool operator==(const endpoint&, const endpoint&) = default;
};

/// An address block such as `127.0.0.0/8` or `::1/128`. `address` holds 4 or 16 bytes.
struct cidr {
    std::vector<std::uint8_t> address; ///< network byte order, 4 (IPv4) or 16 (IPv6) bytes
    unsigned prefix_length = 0;

    std::string to_string() const;
    /// True when `addr` (4 or 16 bytes, network order) lies inside this block. IPv4-mapped
    /// IPv6 addresses (`::ffff:a.b.c.d`) match IPv4 blocks.
    bool contains(const std::vector<std::uint8_t>& addr) const;
    friend bool operator==(const cidr&, const cidr&) = default;
};

/// An inclusive port range; a single port has `low == high`.
struct port_range {
    std::uint16_t low = 0;
    std::uint16_t high = 0;
    bool contains(std::uint16_t port) const { return port >= low && port <= high; }
    friend bool operator==(const port_range&, const port_range&) = default;
};

/// `http`: plain TCP to the proxy (`host:port`, `http://host:port`); `https`: TLS to the proxy
/// itself (`https://host:port`), whatever the client's request is.
enum class upstream_transport { http, https };

/// The schemes authshim may answer a 407 with, in the order of preference the config gives.
enum class auth_scheme { digest, basic };

struct upstream {
    std::string name = "upstream";
    upstream_transport transport = upstream_transport::http;
    endpoint address;
    /// The name of a `config::credentials` entry (the loader checks that it exists); none: the
    /// upstream is used without authentication and a 407 from it is not answered.
    std::optional<std::string> credentials{};
    /// Ordered, non-empty, without duplicates.
    std::vector<auth_scheme> schemes{auth_scheme::digest, auth_scheme::basic};
    /// https only: a PEM bundle of the CAs that may sign the proxy's certificate (absolute,
    /// resolved against the config dir); none: the operating system's trust store.
    std::optional<std::filesystem::path> ca_file{};
};

/// One `credentials.<name>` entry.
struct credential {
    std::string username;         ///< non-empty; `DOMAIN\user` allowed
    secret_ref password_source{}; ///< where the password comes from
    /// The password itself: empty after loading, filled by `resolve_credentials`.
    secret_string password{};
};

/// One `access.destinations` entry: the request-target hosts it lets through. Names match
/// names only and address blocks IP literals only (authshim resolves nothing).
struct destination_pattern {
    enum class kind {
        host,       ///< `crl.example.com`: exactly that name
        subdomains, ///< `*.example.com`: every name below it, at any depth, not the name itself
        address,    ///< `10.0.0.0/8`, `192.0.2.7`, `2001:db8::/32`: IP literals inside the block
    };
    kind type = kind::host;
    /// host and subdomains: the name in lower case without a trailing dot (`example.com` for
    /// `*.example.com`); empty for address.
    std::string name;
    cidr block; ///< address only
    /// Canonical text that loads back to the same pattern: `*.example.com`, `10.0.0.0/8`.
    std::string to_string() const;
    friend bool operator==(const destination_pattern&, const destination_pattern&) = default;
};

struct access_policy {
    std::vector<cidr> clients;             ///< default: 127.0.0.0/8 and ::1/128
    bool clients_explicit = false;         ///< true when `access.clients` was present in the file
    std::vector<port_range> connect_ports; ///< default: 443
    /// `access.destinations`; empty: no allow-list, every destination (the default, `null`).
    std::vector<destination_pattern> destinations;
};

struct timeouts {
    std::chrono::milliseconds connect{5'000};
    std::chrono::milliseconds client_header{15'000};
    std::chrono::milliseconds upstream_response{10'000};
    std::chrono::milliseconds tunnel_idle{300'000};
    std::chrono::milliseconds shutdown{10'000};
};

struct limits {
    std::size_t max_connections = 4096;
    std::size_t max_header_bytes = 65536;
    /// Request bodies up to this size are buffered so that they can be sent again after a 407;
    /// larger ones are only sent once authenticated. 0 to 64 MiB.
    std::size_t replay_body = 1'048'576;
};

/// What happens when the upstream rejects the stored credentials.
struct lockout_policy {
    /// Rejections (of the same credential) before it is no longer used. 1 to 100.
    unsigned max_rejections = 1;
    /// After the lockout, try again after this long (at least 1s); none: only once the
    /// credential changes in the config, so a wrong password cannot lock the account.
    std::optional<std::chrono::milliseconds> retry_after;
};

enum class log_level { trace, debug, info, warn, error, off };

/// `log.access`: a JSON-lines file with one line per request. Written as a path
/// (`"access": "logs/access.jsonl"`) or an object (`{"file": ..., "query": "keep",
/// "max_bytes": ..., "max_files": ...}`).
struct access_log_settings {
    std::filesystem::path file; ///< absolute (resolved against the config dir)
    /// `"query": "redact"` (default): the query string of a logged path is replaced by `?...`,
    /// since queries can carry tokens; `"keep"` logs it as sent.
    bool redact_query = true;
    std::uint64_t max_bytes = 10 * 1024 * 1024; ///< rotate at this size; 64 KiB to 1 TiB
    unsigned max_files = 5;                     ///< rotated files kept (file.1 ... file.N); 1-100
    friend bool operator==(const access_log_settings&, const access_log_settings&) = default;
};

struct logging {
    log_level level = log_level::info;
    std::optional<std::filesystem::path> file; ///< absolute (resolved against the config dir)
    std::optional<access_log_settings> access; ///< none: `"access": false` (the default)
    bool event_log = true; ///< Windows: events also go to the Event Log (no effect elsewhere)
};

/// The admin endpoint (/healthz, /status, /metrics, POST /reload).
struct admin_settings {
    /// none: `"listen": null`, no admin endpoint. A non-loopback address requires a token.
    std::optional<endpoint> listen = endpoint{"127.0.0.1", 3129};
    /// `admin.token`: where the bearer token comes from; none: no token required.
    std::optional<secret_ref> token_source{};
    /// The token itself: empty after loading, filled by `resolve_credentials`.
    secret_string token{};
};

/// `winhttp`: what `authshim winhttp apply` writes besides the proxy (Windows; loaded and checked
/// everywhere, used nowhere else).
struct winhttp_options {
    /// The bypass list (`;`-separated, netsh syntax): destinations WinHTTP reaches directly.
    std::string bypass = "<local>";
};

/// The whole effective configuration.
struct config {
    std::filesystem::path source;    ///< the file it was loaded from (absolute), if any
    std::vector<endpoint> listen;    ///< default: 127.0.0.1:3128
    std::vector<upstream> upstreams; ///< exactly one for now
    std::map<std::string, credential> credentials; ///< by name; may hold unused entries
    access_policy access;
    struct timeouts timeouts;
    struct limits limits;
    lockout_policy lockout;
    logging log;
    admin_settings admin;
    winhttp_options winhttp;
};

std::string to_string(log_level level);
std::string to_string(upstream_transport transport);
/// `"digest"` or `"basic"`, as written in the config.
std::string to_string(auth_scheme scheme);

} // namespace authshim::config
