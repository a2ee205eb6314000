#pragma once
/// Keep-alive connections to one upstream proxy, shared by every client session: hands out an
/// idle connection that is still open (checked without blocking) or connects a new one within
/// `timeouts.connect`, and takes connections back after a complete exchange.
/// Ownership: the pool owns idle connections; a caller owns a connection it acquired until it
/// releases it (or drops it, which closes it). Thread safety: acquire/release/close_all may be
/// called from any thread (a mutex guards the idle list); one connection is used by one session
/// at a time.

#include "auth/digest.hpp"
#include "config/config.hpp"
#include "proxycore/counters.hpp"
#include "proxycore/upstream_stream.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

namespace authshim::proxycore {

/// Counts a live object in a gauge for as long as it exists.
class gauge_token {
public:
    gauge_token() = default;
    gauge_token(const gauge_token&) = delete;
    gauge_token& operator=(const gauge_token&) = delete;
    ~gauge_token() {
        if (gauge_) drop(*gauge_);
    }
    void track(std::atomic<std::uint64_t>& gauge) {
        if (gauge_) return;
        gauge_ = &gauge;
        bump(gauge);
    }

private:
    std::atomic<std::uint64_t>* gauge_ = nullptr;
};

/// One TCP connection to the upstream and the bytes read from it but not yet parsed.
struct upstream_connection {
    upstream_connection(boost::asio::any_io_executor ex,
                        std::shared_ptr<boost::asio::ssl::context> tls)
        : stream(std::move(ex), std::move(tls)) {}
    upstream_stream stream;
    boost::beast::flat_buffer buffer;
    std::uint64_t exchanges = 0; ///< completed request/response exchanges on this connection
    /// This connection's own Digest nonce and nc (a nonce is used on one connection at a time,
    /// so the upstream sees its nc values in order). Touched only by the session holding it.
    std::optional<auth::digest_state> digest;
    /// When it last went into the pool; never set for a connection used straight after connect.
    std::chrono::steady_clock::time_point idle_since{};
    /// True once the connection waited in the pool: the upstream may have closed it meanwhile.
    bool was_idle() const { return idle_since != std::chrono::steady_clock::time_point{}; }
    gauge_token open; ///< counts in counters::upstream_connections_open once connected
};

using connection_ptr = std::unique_ptr<upstream_connection>;

class upstream_pool {
public:
    /// Idle connections older than this are closed instead of reused.
    static constexpr std::chrono::seconds max_idle{30};
    /// At most this many idle connections are kept.
    static constexpr std::size_t max_idle_connections = 256;

    /// For an `https://` upstream the TLS context is built here (throws std::runtime_error
    /// when its CA file cannot be loaded).
    upstream_pool(boost::asio::any_io_executor ex, config::upstream upstream,
                  std::chrono::milliseconds connect_timeout, counters& stats);

    /// An open connection: a checked idle one unless `fresh` is set, else a new one.
    /// Errors: proxy_errc::connect_timeout, proxy_errc::resolve_failed,
    /// proxy_errc::tls_handshake_failed (with the reason logged), or the socket error.
    boost::asio::awaitable<std::pair<boost::system::error_code, connection_ptr>>
    acquire(bool fresh);

    /// Takes back a connection after a complete exchange; it is closed instead when it holds
    /// unread bytes, is not open, or the pool is full or closed.
    void release(connection_ptr connection);

    /// A tunnel keeps its connection to the end, so after one the pool may be empty and the
    /// next CONNECT would wait for a TCP (and TLS) handshake with the upstream. claim_spare()
    /// says whether the caller should open a replacement now: true when no idle connection is
    /// left, none is being opened and the pool is open. The caller then awaits open_spare(),
    /// which connects one and puts it in the pool (a failure is only counted: the next request
    /// connects and reports it).
    bool claim_spare();
    boost::asio::awaitable<void> open_spare();
    /// Shutdown: ends a spare's connect at once. Call on the server's thread.
    void cancel_spare();

    /// Closes every idle connection and refuses further releases (shutdown).
    void close_all();

    const config::upstream& upstream() const { return upstream_; }
    std::size_t idle_count() const;

private:
    connection_ptr take_idle();
    boost::asio::awaitable<std::pair<boost::system::error_code, connection_ptr>> connect();
    /// Connects `c` (TCP, then TLS for an https upstream) within the connect timeout.
    boost::asio::awaitable<boost::system::error_code> establish(upstream_connection& c);

    boost::asio::any_io_executor executor_;
    config::upstream upstream_;
    std::shared_ptr<boost::asio::ssl::context> tls_; // null for plain TCP upstreams
    std::chrono::milliseconds connect_timeout_;
    counters& stats_;
    mutable std::mutex mutex_;
    std::deque<connection_ptr> idle_;      // guarded by mutex_; newest at the back
    bool closed_ = false;                  // guarded by mutex_
    bool opening_spare_ = false;           // guarded by mutex_
    upstream_connection* spare_ = nullptr; // the spare being connected; server thread only
};

} // namespace authshim::proxycore
