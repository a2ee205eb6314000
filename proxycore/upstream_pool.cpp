#include "proxycore/upstream_pool.hpp"

#include "proxycore/errors.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <string>

namespace authshim::proxycore {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// True when an idle socket is still open and has nothing unread: a peek says "would block"
/// (the socket is non-blocking from connect() on). EOF (the upstream closed it) or stray bytes
/// make it unusable.
bool idle_socket_usable(tcp::socket& socket) {
    if (!socket.is_open()) return false;
    char byte = 0;
    error_code peek;
    socket.receive(asio::buffer(&byte, 1), tcp::socket::message_peek, peek);
    return peek == asio::error::would_block || peek == asio::error::try_again;
}

/// OpenSSL's reason, plus a hint when the certificate verification is what failed.
std::string describe_tls_error(const error_code& ec) {
    std::string text = ec.message();
    if (ec.category() == asio::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_CERTIFICATE_VERIFY_FAILED)
        text += " (the proxy's certificate is not trusted for this address: check the address "
                "and upstreams[].ca_file)";
    return text;
}

} // namespace

upstream_pool::upstream_pool(asio::any_io_executor ex, config::upstream upstream,
                             std::chrono::milliseconds connect_timeout, counters& stats)
    : executor_(std::move(ex)), upstream_(std::move(upstream)), connect_timeout_(connect_timeout),
      stats_(stats) {
    if (upstream_.transport == config::upstream_transport::https)
        tls_ = make_upstream_tls_context(upstream_.ca_file ? upstream_.ca_file->string() : "");
}

connection_ptr upstream_pool::take_idle() {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex_);
    while (!idle_.empty()) {
        auto c = std::move(idle_.back()); // most recently used: least likely to have timed out
        idle_.pop_back();
        drop(stats_.upstream_connections_idle);
        if (now - c->idle_since > max_idle) continue;
        if (!idle_socket_usable(c->stream.socket())) continue;
        return c;
    }
    return nullptr;
}

asio::awaitable<std::pair<error_code, connection_ptr>> upstream_pool::acquire(bool fresh) {
    if (!fresh) {
        if (auto c = take_idle()) {
            bump(stats_.upstream_reused);
            co_return std::pair{error_code{}, std::move(c)};
        }
    }
    co_return co_await connect();
}

asio::awaitable<std::pair<error_code, connection_ptr>> upstream_pool::connect() {
    auto c = std::make_unique<upstream_connection>(executor_, tls_);
    if (auto ec = co_await establish(*c)) co_return std::pair{ec, connection_ptr{}};
    co_return std::pair{error_code{}, std::move(c)};
}

asio::awaitable<error_code> upstream_pool::establish(upstream_connection& connection) {
    auto* const c = &connection;
    const auto& address = upstream_.address;
    error_code ec;
    const auto literal = asio::ip::make_address(address.host, ec);
    const bool is_literal = !ec;
    if (is_literal) {
        c->stream.expires_after(connect_timeout_);
        auto [cec] =
            co_await c->stream.tcp().async_connect(tcp::endpoint(literal, address.port), use_tuple);
        ec = cec;
    } else {
        tcp::resolver resolver(co_await asio::this_coro::executor);
        auto [rec, results] =
            co_await resolver.async_resolve(address.host, std::to_string(address.port), use_tuple);
        if (rec) {
            bump(stats_.upstream_connect_failures);
            co_return error_code(proxy_errc::resolve_failed);
        }
        c->stream.expires_after(connect_timeout_);
        auto [cec, endpoint] = co_await c->stream.tcp().async_connect(results, use_tuple);
        ec = cec;
    }
    if (ec) {
        bump(stats_.upstream_connect_failures);
        if (ec == boost::beast::error::timeout) ec = proxy_errc::connect_timeout;
        co_return ec;
    }
    c->stream.socket().set_option(tcp::no_delay(true), ec);
    // Asio's own operations do not care; the pool's peek (idle_socket_usable) must not block.
    c->stream.socket().non_blocking(true, ec);
    // Beast reads a head in pieces of the buffer's free capacity (at least 512 bytes): with 4 KB
    // a small response arrives whole in one read.
    c->buffer.reserve(4096);
    if (auto* tls = c->stream.tls()) {
        // The proxy's certificate must be valid for the configured host name or IP address;
        // the handshake shares timeouts.connect with the TCP connect.
        if (!is_literal) SSL_set_tlsext_host_name(tls->native_handle(), address.host.c_str());
        tls->set_verify_callback(asio::ssl::host_name_verification(address.host));
        auto [hec] = co_await tls->async_handshake(asio::ssl::stream_base::client, use_tuple);
        if (hec) {
            bump(stats_.upstream_connect_failures);
            if (hec == boost::beast::error::timeout)
                co_return error_code(proxy_errc::connect_timeout);
            const auto verify = SSL_get_verify_result(tls->native_handle());
            spdlog::warn("TLS handshake with upstream {} failed: {}{}", address.to_string(),
                         describe_tls_error(hec),
                         verify == X509_V_OK
                             ? std::string()
                             : std::string(" [") + X509_verify_cert_error_string(verify) + "]");
            co_return error_code(proxy_errc::tls_handshake_failed);
        }
    }
    c->stream.expires_never();
    bump(stats_.upstream_connects); // connected (and handshaken): failures are counted apart
    c->open.track(stats_.upstream_connections_open);
    co_return error_code{};
}

void upstream_pool::release(connection_ptr connection) {
    if (!connection || connection->buffer.size() != 0 || !connection->stream.socket().is_open())
        return;
    connection->stream.expires_never();
    connection->idle_since = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex_);
    if (closed_) return;
    if (idle_.size() >= max_idle_connections) {
        idle_.pop_front();
        drop(stats_.upstream_connections_idle);
    }
    idle_.push_back(std::move(connection));
    bump(stats_.upstream_connections_idle);
}

bool upstream_pool::claim_spare() {
    std::lock_guard lock(mutex_);
    if (closed_ || opening_spare_ || !idle_.empty()) return false;
    opening_spare_ = true;
    return true;
}

asio::awaitable<void> upstream_pool::open_spare() {
    auto c = std::make_unique<upstream_connection>(executor_, tls_);
    spare_ = c.get();
    const auto ec = co_await establish(*c);
    spare_ = nullptr;
    {
        std::lock_guard lock(mutex_);
        opening_spare_ = false;
    }
    if (!ec) release(std::move(c));
}

void upstream_pool::cancel_spare() {
    if (spare_) spare_->stream.close();
}

void upstream_pool::close_all() {
    std::deque<connection_ptr> doomed;
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
        doomed.swap(idle_);
        drop(stats_.upstream_connections_idle, doomed.size());
    }
    for (auto& c : doomed) {
        c->stream.close();
    }
}

std::size_t upstream_pool::idle_count() const {
    std::lock_guard lock(mutex_);
    return idle_.size();
}

} // namespace authshim::proxycore
