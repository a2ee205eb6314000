#include "config/config.hpp"

#include "config/detail_ip.hpp"

#include <algorithm>

namespace authshim::config {

std::string endpoint::to_string() const {
    const std::string port_text = std::to_string(port);
    if (host.find(':') != std::string::npos) return '[' + host + "]:" + port_text;
    return host + ':' + port_text;
}

std::string cidr::to_string() const {
    return detail::format_ip(address) + '/' + std::to_string(prefix_length);
}

std::string destination_pattern::to_string() const {
    switch (type) {
    case kind::host:
        return name;
    case kind::subdomains:
        return "*." + name;
    case kind::address:
        return block.to_string();
    }
    return "?";
}

bool cidr::contains(const std::vector<std::uint8_t>& addr) const {
    if (address.size() != 4 && address.size() != 16) return false;

    // Bring `addr` to the block's family: an IPv4-mapped IPv6 address is the IPv4 address it
    // carries, and an IPv4 address is its mapped form when compared with an IPv6 block.
    std::vector<std::uint8_t> candidate;
    if (addr.size() == address.size()) {
        candidate = addr;
    } else if (address.size() == 4 && addr.size() == 16) {
        static constexpr std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!std::equal(addr.begin(), addr.begin() + 12, mapped)) return false;
        candidate.assign(addr.begin() + 12, addr.end());
    } else if (address.size() == 16 && addr.size() == 4) {
        candidate.assign(10, 0);
        candidate.push_back(0xff);
        candidate.push_back(0xff);
        candidate.insert(candidate.end(), addr.begin(), addr.end());
    } else {
        return false;
    }

    const unsigned bits =
        std::min<unsigned>(prefix_length, static_cast<unsigned>(address.size() * 8));
    const std::size_t whole = bits / 8;
    if (!std::equal(address.begin(), address.begin() + static_cast<std::ptrdiff_t>(whole),
                    candidate.begin()))
        return false;
    const unsigned rest = bits % 8;
    if (rest == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xffu << (8 - rest));
    return (address[whole] & mask) == (candidate[whole] & mask);
}

std::string to_string(log_level level) {
    switch (level) {
    case log_level::trace:
        return "trace";
    case log_level::debug:
        return "debug";
    case log_level::info:
        return "info";
    case log_level::warn:
        return "warn";
    case log_level::error:
        return "error";
    case log_level::off:
        return "off";
    }
    return "unknown";
}

std::string to_string(upstream_transport transport) {
    switch (transport) {
    case upstream_transport::http:
        return "http";
    case upstream_transport::https:
        return "https";
    }
    return "unknown";
}

std::string to_string(auth_scheme scheme) {
    switch (scheme) {
    case auth_scheme::digest:
        return "digest";
    case auth_scheme::basic:
        return "basic";
    }
    return "unknown";
}

} // namespace authshim::config
