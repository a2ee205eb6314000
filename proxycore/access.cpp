#include "proxycore/access.hpp"

#include "proxycore/destinations.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>
#include <string>

namespace authshim::proxycore {
namespace {

std::vector<std::uint8_t> to_bytes(const boost::asio::ip::address& a) {
    if (a.is_v4()) {
        const auto b = a.to_v4().to_bytes();
        return {b.begin(), b.end()};
    }
    const auto b = a.to_v6().to_bytes();
    return {b.begin(), b.end()};
}

/// `host` read as inet_aton() and so most resolvers and clients read it: 1 to 4 parts, each
/// decimal, octal (`0` prefix) or hex (`0x`), the last filling the remaining bytes (`127.1`,
/// `2130706433`, `0x7f.0.0.1`, `0177.0.0.1`, `0`). Spellings of an address that the strict
/// parser refuses but that still reach it.
std::optional<boost::asio::ip::address_v4> numeric_ipv4(std::string_view host) {
    std::array<std::uint64_t, 4> parts{};
    std::size_t count = 0;
    for (;;) {
        const auto dot = host.find('.');
        auto part = host.substr(0, dot);
        if (part.empty() || count == parts.size()) return std::nullopt;
        int base = 10;
        if (part.size() > 1 && part[0] == '0' && (part[1] == 'x' || part[1] == 'X')) {
            base = 16;
            part.remove_prefix(2);
        } else if (part.size() > 1 && part[0] == '0') {
            base = 8;
            part.remove_prefix(1);
        }
        std::uint64_t value = 0;
        if (!part.empty()) {
            const auto [end, ec] =
                std::from_chars(part.data(), part.data() + part.size(), value, base);
            if (ec != std::errc{} || end != part.data() + part.size() || value > 0xffffffffu)
                return std::nullopt;
        }
        parts[count++] = value;
        if (dot == std::string_view::npos) break;
        host.remove_prefix(dot + 1);
    }
    std::uint64_t address = 0;
    for (std::size_t i = 0; i + 1 < count; ++i) {
        if (parts[i] > 0xff) return std::nullopt;
        address |= parts[i] << (8 * (3 - i));
    }
    const auto last_bits = 8 * (5 - count); // 32, 24, 16 or 8 bits for the last part
    if (parts[count - 1] >= (std::uint64_t{1} << last_bits)) return std::nullopt;
    address |= parts[count - 1];
    return boost::asio::ip::address_v4(static_cast<std::uint32_t>(address));
}

} // namespace

access_rules::access_rules(const config::access_policy& policy) : policy_(policy) {}

bool access_rules::client_allowed(const boost::asio::ip::address& client) const {
    const auto bytes = to_bytes(client);
    return std::any_of(policy_.clients.begin(), policy_.clients.end(),
                       [&](const config::cidr& block) { return block.contains(bytes); });
}

bool access_rules::connect_port_allowed(std::uint16_t port) const {
    return std::any_of(policy_.connect_ports.begin(), policy_.connect_ports.end(),
                       [&](const config::port_range& r) { return r.contains(port); });
}

bool access_rules::destination_allowed(std::string_view host) const {
    return proxycore::destination_allowed(policy_.destinations, host);
}

void access_rules::set_own_endpoints(std::vector<boost::asio::ip::tcp::endpoint> endpoints) {
    own_ = std::move(endpoints);
}

bool access_rules::targets_self(std::string_view host, std::uint16_t port) const {
    // `localhost.` is `localhost` (a fully qualified name), `127.0.0.1.` the same address.
    if (host.size() > 1 && host.back() == '.') host.remove_suffix(1);
    boost::system::error_code ec;
    auto literal = boost::asio::ip::make_address(std::string(host), ec);
    if (ec) {
        if (const auto loose = numeric_ipv4(host)) {
            literal = *loose;
            ec = {};
        }
    }
    // ::ffff:127.0.0.1 reaches the 127.0.0.1 listener: compare in IPv4 form.
    if (!ec && literal.is_v6() && literal.to_v6().is_v4_mapped())
        literal = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, literal.to_v6());
    const bool is_localhost_name =
        boost::beast::iequals(host, "localhost") ||
        (host.size() > 10 && boost::beast::iequals(host.substr(host.size() - 10), ".localhost"));
    for (const auto& own : own_) {
        if (own.port() != port) continue;
        const auto listen = own.address();
        if (!ec && literal == listen) return true;
        const bool listen_local = listen.is_loopback() || listen.is_unspecified();
        if (listen_local &&
            (is_localhost_name || (!ec && (literal.is_loopback() || literal.is_unspecified()))))
            return true;
    }
    return false;
}

} // namespace authshim::proxycore
