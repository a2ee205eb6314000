#pragma once
/// Text forms of network values for logs and messages. Thread safety: pure functions.

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <string>

namespace authshim::proxycore {

/// `a.b.c.d:port` or `[v6]:port`.
inline std::string format_endpoint(const boost::asio::ip::tcp::endpoint& ep) {
    const auto address = ep.address().to_string();
    if (ep.address().is_v6()) return "[" + address + "]:" + std::to_string(ep.port());
    return address + ":" + std::to_string(ep.port());
}

/// `15s` for whole seconds, else `250ms`: the way durations are written in the config.
inline std::string format_duration(std::chrono::milliseconds d) {
    if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
    return std::to_string(d.count()) + "ms";
}

} // namespace authshim::proxycore
