#pragma once
/// Text forms of network values and durations for logs and messages. Thread safety: pure functions.

#include <boost/asio/ip/tcp.hpp>

#include <string>

#include "config/loader.hpp"

namespace authshim::proxycore {

using config::format_duration;

/// `a.b.c.d:port` or `[v6]:port`.
inline std::string format_endpoint(const boost::asio::ip::tcp::endpoint& ep) {
    const auto address = ep.address().to_string();
    if (ep.address().is_v6()) return "[" + address + "]:" + std::to_string(ep.port());
    return address + ":" + std::to_string(ep.port());
}

} // namespace authshim::proxycore
