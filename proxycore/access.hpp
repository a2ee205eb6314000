#pragma once
/// The access policy applied to every client: which source addresses may use authshim, which
/// ports CONNECT may reach, which destinations requests may name (`access.destinations`), and
/// refusal of requests aimed at authshim's own listeners (loops).
/// Thread safety: immutable after construction (set_own_endpoints is called before serving).

#include "config/config.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <string_view>
#include <vector>

namespace authshim::proxycore {

class access_rules {
public:
    explicit access_rules(const config::access_policy& policy);

    /// True when `client` lies inside one of `access.clients`.
    bool client_allowed(const boost::asio::ip::address& client) const;

    /// True when CONNECT may reach `port` (`access.connect_ports`).
    bool connect_port_allowed(std::uint16_t port) const;

    /// True when `access.destinations` is not set or one of its patterns matches `host`
    /// (as `target_authority::host` holds it); see proxycore/destinations.hpp.
    bool destination_allowed(std::string_view host) const;

    /// Records the addresses authshim actually listens on (after binding, ports resolved).
    void set_own_endpoints(std::vector<boost::asio::ip::tcp::endpoint> endpoints);

    /// True when `host:port` names one of authshim's own listeners: the same port on a
    /// loopback or wildcard listener reached as `localhost`, a loopback literal, or the
    /// listener's own address.
    bool targets_self(std::string_view host, std::uint16_t port) const;

private:
    config::access_policy policy_;
    std::vector<boost::asio::ip::tcp::endpoint> own_;
};

} // namespace authshim::proxycore
