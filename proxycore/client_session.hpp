#pragma once
/// One client connection: reads requests with limits and deadlines, validates them, forwards
/// them to the upstream proxy (streaming bodies both ways), and turns CONNECT into a tunnel.
/// Ownership: created by the listener as a shared_ptr; its coroutine keeps it alive.
/// Thread safety: runs on the server's one thread; stop()/force_close() must be posted there.

#include "proxycore/request_rules.hpp"
#include "proxycore/server_state.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace authshim::proxycore {

struct relay_outcome;

class client_session : public std::enable_shared_from_this<client_session> {
public:
    client_session(boost::asio::ip::tcp::socket socket, std::shared_ptr<server_state> state);

    /// Serves the connection until it closes. Never throws for network or input errors.
    boost::asio::awaitable<void> run();

    boost::asio::any_io_executor executor() { return client_.get_executor(); }

    /// Shutdown: closes the connection if it is waiting for a request; otherwise the current
    /// exchange finishes and the connection closes after it. Call on the server's thread.
    void stop();

    /// Forced shutdown: closes both sides now. Call on the server's thread.
    void force_close();

private:
    using request_parser = boost::beast::http::request_parser<boost::beast::http::buffer_body>;
    using response_parser = boost::beast::http::response_parser<boost::beast::http::buffer_body>;
    struct exchange; // per-request bookkeeping, defined in the .cpp

    /// Starts timeouts.client_header for the request head being read (idle_ set): when it
    /// expires, the read is cancelled and ends as beast::error::timeout.
    void arm_head_deadline(std::chrono::milliseconds d);
    boost::asio::awaitable<void> reject_unreadable(const boost::system::error_code& ec);
    boost::asio::awaitable<bool> serve_one(exchange& x, request_parser& parser);
    boost::asio::awaitable<bool> forward(exchange& x, request_parser& parser, bool has_body);
    boost::asio::awaitable<bool> report_upstream_failure(exchange& x, boost::system::error_code ec,
                                                         bool connecting, bool keep);
    boost::asio::awaitable<relay_outcome> read_body(exchange& x, request_parser& parser,
                                                    std::size_t limit, std::string& out,
                                                    bool& too_large);
    boost::asio::awaitable<bool> relay_response(exchange& x, connection_ptr connection,
                                                response_parser& parser, bool body_sent);
    boost::asio::awaitable<bool> tunnel(exchange& x, connection_ptr connection,
                                        boost::beast::http::response_header<>& head);
    /// The client's request body could not be relayed: answers 400/408/502 when the client can
    /// still take an answer, and returns false (close).
    boost::asio::awaitable<bool> request_body_failed(exchange& x, const relay_outcome& outcome);
    boost::asio::awaitable<void> send_text(exchange& x, boost::beast::http::status status,
                                           std::string_view text, bool keep_alive);
    boost::asio::awaitable<relay_outcome> send_body_after_continue(exchange& x,
                                                                   request_parser& parser,
                                                                   upstream_connection& conn,
                                                                   bool& continue_sent);
    boost::asio::awaitable<void> send_continue();
    boost::asio::awaitable<void> forward_interim(boost::beast::http::response_header<>& head);
    boost::asio::awaitable<void> close_gracefully();
    /// Closes the client connection with a reset (RST), the one signal left when a response
    /// delimited by the close, or a tunnel, broke off on the upstream's side: a plain close
    /// would tell the client it got everything.
    void abort_client();
    std::string describe_upstream() const;
    void log_access(const exchange& x) const;

    boost::beast::tcp_stream client_;
    boost::beast::flat_buffer buffer_;
    std::shared_ptr<server_state> state_;
    /// The configuration this connection's current exchange runs with: taken from
    /// state_->current when the connection opens and before each request, so a reload applies
    /// from the next request on and never changes an exchange in flight.
    std::shared_ptr<const runtime> rt_;
    std::string peer_;
    std::string head_; // the head being written (upstream request, then client response)
    bool idle_ = false;
    upstream_connection* active_upstream_ = nullptr; // for force_close; owned elsewhere
    /// The request head's deadline. Not the stream's own: Beast closes the socket when that
    /// expires, so the 408 could never be sent. A generation tells a stale expiry from the
    /// current one.
    boost::asio::steady_timer head_deadline_{client_.get_executor()};
    std::uint64_t head_generation_ = 0;
    bool head_timed_out_ = false;
};

} // namespace authshim::proxycore
