#pragma once
/// The byte stream to an upstream proxy: plain TCP, or TLS to the proxy itself
/// (`https://` upstreams), behind one interface so that HTTP relaying, tunnels and the pool do
/// not care which. Deadlines (`expires_after`) apply to the TCP layer under either.
/// Ownership: owns the socket (and the TLS state). Thread safety: like a Beast stream: one
/// reader and one writer at a time, on the server's thread.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <variant>

namespace authshim::proxycore {

class upstream_stream {
public:
    using executor_type = boost::beast::tcp_stream::executor_type;
    using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

    /// Plain TCP when `tls` is null; otherwise TLS with that context (shared, thread-safe).
    upstream_stream(boost::asio::any_io_executor ex,
                    std::shared_ptr<boost::asio::ssl::context> tls);

    executor_type get_executor() noexcept { return tcp().get_executor(); }

    boost::beast::tcp_stream& tcp() noexcept;
    boost::asio::ip::tcp::socket& socket() noexcept { return tcp().socket(); }
    /// The TLS layer, or null for plain TCP.
    tls_stream* tls() noexcept { return std::get_if<tls_stream>(&stream_); }

    void expires_after(std::chrono::milliseconds d) { tcp().expires_after(d); }
    void expires_never() { tcp().expires_never(); }
    void cancel() { tcp().cancel(); }
    /// Closes the socket at once (no TLS close_notify).
    void close();
    /// Ends the sending direction: a TCP half-close; nothing for TLS, whose close_notify would
    /// end the whole session for most proxies.
    void shutdown_send();

    template <class Buffers, class Token>
    auto async_read_some(const Buffers& buffers, Token&& token) {
        if (auto* s = tls()) return s->async_read_some(buffers, std::forward<Token>(token));
        return std::get<boost::beast::tcp_stream>(stream_).async_read_some(
            buffers, std::forward<Token>(token));
    }

    template <class Buffers, class Token>
    auto async_write_some(const Buffers& buffers, Token&& token) {
        if (auto* s = tls()) return s->async_write_some(buffers, std::forward<Token>(token));
        return std::get<boost::beast::tcp_stream>(stream_).async_write_some(
            buffers, std::forward<Token>(token));
    }

private:
    std::shared_ptr<boost::asio::ssl::context> context_; // keeps the SSL_CTX alive
    std::variant<boost::beast::tcp_stream, tls_stream> stream_;
};

/// A client TLS context for an `https://` upstream: TLS 1.2 or later, the peer certificate
/// verified against `ca_file` (a PEM bundle) or, when empty, the system's trust store.
/// Throws std::runtime_error with a message that names the file and the reason.
std::shared_ptr<boost::asio::ssl::context> make_upstream_tls_context(const std::string& ca_file);

} // namespace authshim::proxycore
