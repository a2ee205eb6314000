#pragma once
/// Plain configuration structs for authshim, as described by the key table in
/// shared/docs/ARCHITECTURE.md. Values only: no I/O, no logging. Built by config/loader.hpp.
/// Ownership: plain values, copyable. Thread safety: immutable after loading; share by const ref.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
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

enum class upstream_transport { http, https };

struct upstream {
    std::string name = "upstream";
    upstream_transport transport = upstream_transport::http;
    endpoint address;
};

struct access_policy {
    std::vector<cidr> clients;             ///< default: 127.0.0.0/8 and ::1/128
    bool clients_explicit = false;         ///< true when `access.clients` was present in the file
    std::vector<port_range> connect_ports; ///< default: 443
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
};

enum class log_level { trace, debug, info, warn, error, off };

struct logging {
    log_level level = log_level::info;
    std::optional<std::filesystem::path> file; ///< absolute (resolved against the config dir)
};

/// The whole effective configuration.
struct config {
    std::filesystem::path source;    ///< the file it was loaded from (absolute), if any
    std::vector<endpoint> listen;    ///< default: 127.0.0.1:3128
    std::vector<upstream> upstreams; ///< exactly one for now
    access_policy access;
    struct timeouts timeouts;
    struct limits limits;
    logging log;
};

std::string to_string(log_level level);
std::string to_string(upstream_transport transport);

} // namespace authshim::config
