#include "proxycore/tunnel.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <memory>

namespace authshim::proxycore {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using clock = std::chrono::steady_clock;
using namespace asio::experimental::awaitable_operators;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t pump_buffer_size = 64 * 1024;

void half_close(tcp::socket& socket) {
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);
}

void half_close(upstream_stream& stream) {
    stream.shutdown_send();
}

/// Cancels what is pending on both sockets: a failed direction ends the other one too.
struct tunnel_breaker {
    tcp::socket& client;
    upstream_stream& upstream;
    void operator()() const {
        boost::system::error_code ignored;
        client.cancel(ignored);
        upstream.cancel();
    }
};

/// Moves bytes from `from` to `to`. EOF half-closes `to`; any other failure (reading: marks
/// `from_failed`, writing: `to_failed`) breaks the whole tunnel. A read or write cancelled
/// because the other direction broke marks nothing.
template <class From, class To>
asio::awaitable<void> pump(From& from, To& to, std::uint64_t& moved,
                           clock::time_point& last_activity, bool& from_failed, bool& to_failed,
                           tunnel_breaker breaker) {
    const auto buffer = std::make_unique_for_overwrite<char[]>(pump_buffer_size);
    for (;;) {
        auto [ec, n] =
            co_await from.async_read_some(asio::buffer(buffer.get(), pump_buffer_size), use_tuple);
        if (n > 0) {
            last_activity = clock::now();
            auto [wec, written] =
                co_await asio::async_write(to, asio::buffer(buffer.get(), n), use_tuple);
            moved += written;
            last_activity = clock::now();
            if (wec) {
                if (wec != asio::error::operation_aborted) {
                    to_failed = true;
                    breaker();
                }
                co_return;
            }
        }
        if (ec) {
            // A TLS upstream that closes without close_notify ends like one that sends EOF.
            if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
                half_close(to);
            } else if (ec != asio::error::operation_aborted) {
                from_failed = true;
                breaker();
            }
            co_return;
        }
    }
}

/// Completes once nothing has moved for `idle`; sets `fired`.
asio::awaitable<void> watchdog(const clock::time_point& last_activity,
                               std::chrono::milliseconds idle, bool& fired) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        timer.expires_at(last_activity + idle);
        auto [ec] = co_await timer.async_wait(use_tuple);
        if (ec) co_return; // cancelled: the tunnel ended on its own
        if (clock::now() >= last_activity + idle) {
            fired = true;
            co_return;
        }
    }
}

} // namespace

asio::awaitable<tunnel_result> splice(tcp::socket& client, upstream_stream& upstream,
                                      std::chrono::milliseconds idle) {
    tunnel_result result;
    auto last_activity = clock::now();
    const tunnel_breaker breaker{client, upstream};
    co_await ((pump(client, upstream, result.bytes_to_upstream, last_activity, result.client_failed,
                    result.upstream_failed, breaker) &&
               pump(upstream, client, result.bytes_to_client, last_activity, result.upstream_failed,
                    result.client_failed, breaker)) ||
              watchdog(last_activity, idle, result.idle_timeout));
    co_return result;
}

} // namespace authshim::proxycore
