#pragma once
// Private to client_session*.cpp: per-exchange bookkeeping and small I/O helpers.

#include "proxycore/client_session.hpp"
#include "proxycore/relay.hpp"
#include "proxycore/upstream_auth.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace authshim::proxycore {
namespace session_detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;
using boost::system::error_code;
using clock = std::chrono::steady_clock;
using response_parser = http::response_parser<http::buffer_body>;
inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// How long authshim waits for the upstream's `100 Continue` before sending the body anyway
/// (the figure curl uses).
inline constexpr std::chrono::seconds expect_continue_wait{1};

/// Errors that mean a reused upstream connection had been closed before our request reached it.
inline bool is_stale_connection_error(const error_code& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == asio::error::connection_aborted;
}

inline asio::awaitable<void> wait_readable(tcp::socket& socket) {
    co_await socket.async_wait(tcp::socket::wait_read, use_tuple);
}

inline asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer timer(co_await asio::this_coro::executor, d);
    co_await timer.async_wait(use_tuple);
}

/// The framing of a request body relayed upstream: re-chunked when the client chunked it.
inline body_framing request_framing(const http::request_parser<http::buffer_body>& parser) {
    return parser.get().chunked() ? body_framing::chunked : body_framing::raw;
}

} // namespace session_detail

struct client_session::exchange {
    session_detail::clock::time_point start = session_detail::clock::now();
    /// For a tunnel: when it was established (its duration in the histogram ends there).
    std::optional<session_detail::clock::time_point> established;
    std::string method = "-";
    std::string host = "-";
    std::string request_target; ///< as sent (for the access log only)
    unsigned status = 0;
    /// Message body and tunnel bytes; heads and chunk framing are not counted.
    std::uint64_t bytes_to_client = 0;
    std::uint64_t bytes_from_client = 0;
    bool upstream_used = false;   ///< the request was routed to the upstream
    const char* scheme = nullptr; ///< the scheme of the last credentials sent, if any
    unsigned challenges = 0;      ///< 407s received for this request
    std::string error;            ///< the text of an error answer, or why the exchange broke off
    bool body_broken = false;     ///< the response body broke off after the head was sent
    /// The credentials the request went with (the runtime's, or their successor after a reload
    /// replaced them while it was on its way); null without credentials.
    std::shared_ptr<upstream_auth> auth;
    unsigned client_version = 11;
    bool client_keep_alive = false;
    target_authority target;
};

} // namespace authshim::proxycore
