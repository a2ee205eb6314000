#pragma once
/// Splices bytes both ways between a client and an upstream socket (an established CONNECT
/// tunnel) until both directions have ended, either side fails, or nothing moved for `idle`.
/// A direction that reaches EOF half-closes the other side's send direction; a read or write
/// that fails (a reset, say) ends both directions at once, so a client whose upstream died is
/// not left waiting for `idle`.
/// Ownership: the caller owns both sockets and keeps them alive until the awaitable completes.
/// Thread safety: both sockets must only be used by this operation meanwhile.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proxycore/upstream_stream.hpp"

#include <chrono>
#include <cstdint>

namespace authshim::proxycore {

struct tunnel_result {
    std::uint64_t bytes_to_upstream = 0;
    std::uint64_t bytes_to_client = 0;
    bool idle_timeout = false;
    bool upstream_failed = false; ///< a read from or write to the upstream failed (not EOF)
    bool client_failed = false;   ///< a read from or write to the client failed (not EOF)
};

boost::asio::awaitable<tunnel_result> splice(boost::asio::ip::tcp::socket& client,
                                             upstream_stream& upstream,
                                             std::chrono::milliseconds idle);

} // namespace authshim::proxycore
