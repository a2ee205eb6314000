#include "proxycore/access.hpp"

#include "proxycore/destinations.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/string.hpp>

#include <algorithm>
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
    boost::system::error_code ec;
    auto literal = boost::asio::ip::make_address(std::string(host), ec);
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
