#pragma once
/// Streams one HTTP message body from a parser to a serializer through a fixed buffer, so a
/// body of any size passes with bounded memory (Beast's relay pattern, with deadlines on every
/// read and write). Used by client_session only.
/// Ownership: borrows everything; the caller keeps streams, parser and serializer alive.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include <chrono>
#include <cstdint>
#include <memory>

namespace authshim::proxycore {

enum class relay_failure { none, read, write };

struct relay_outcome {
    relay_failure failure = relay_failure::none;
    boost::system::error_code ec;
    std::uint64_t bytes = 0; ///< body bytes written out
};

inline constexpr std::size_t relay_buffer_size = 64 * 1024;

/// Writes the (already modified) head and the body of `parser`'s message to `out`.
/// Each read from `in` must make progress within `in_timeout`, each write within
/// `out_timeout`.
template <bool is_request, class InStream, class OutStream>
boost::asio::awaitable<relay_outcome>
relay_message(boost::beast::http::parser<is_request, boost::beast::http::buffer_body>& parser,
              InStream& in, boost::beast::flat_buffer& in_buffer,
              std::chrono::milliseconds in_timeout,
              boost::beast::http::serializer<is_request, boost::beast::http::buffer_body>& sr,
              OutStream& out, std::chrono::milliseconds out_timeout) {
    namespace http = boost::beast::http;
    constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
    relay_outcome outcome;
    std::unique_ptr<char[]> storage;
    auto& body = parser.get().body();
    do {
        if (!parser.is_done()) {
            if (!storage) storage = std::make_unique<char[]>(relay_buffer_size);
            body.data = storage.get();
            body.size = relay_buffer_size;
            in.expires_after(in_timeout);
            auto [ec, n] = co_await http::async_read(in, in_buffer, parser, use_tuple);
            if (ec == http::error::need_buffer) ec = {};
            if (ec) {
                outcome.failure = relay_failure::read;
                outcome.ec = ec;
                co_return outcome;
            }
            body.size = relay_buffer_size - body.size;
            body.data = storage.get();
            body.more = !parser.is_done();
        } else {
            body.data = nullptr;
            body.size = 0;
            body.more = false;
        }
        const auto chunk = body.size;
        out.expires_after(out_timeout);
        auto [wec, written] = co_await http::async_write(out, sr, use_tuple);
        if (wec == http::error::need_buffer) wec = {};
        if (wec) {
            outcome.failure = relay_failure::write;
            outcome.ec = wec;
            co_return outcome;
        }
        outcome.bytes += chunk;
    } while (!sr.is_done());
    in.expires_never();
    out.expires_never();
    co_return outcome;
}

/// Reads and discards the rest of `parser`'s body (a 407's, before the connection is reused).
template <bool is_request, class InStream>
boost::asio::awaitable<boost::system::error_code>
discard_body(boost::beast::http::parser<is_request, boost::beast::http::buffer_body>& parser,
             InStream& in, boost::beast::flat_buffer& in_buffer,
             std::chrono::milliseconds in_timeout) {
    namespace http = boost::beast::http;
    constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
    auto storage = std::make_unique<char[]>(relay_buffer_size);
    auto& body = parser.get().body();
    while (!parser.is_done()) {
        body.data = storage.get();
        body.size = relay_buffer_size;
        in.expires_after(in_timeout);
        auto [ec, n] = co_await http::async_read(in, in_buffer, parser, use_tuple);
        if (ec && ec != http::error::need_buffer) co_return ec;
    }
    in.expires_never();
    co_return boost::system::error_code{};
}

} // namespace authshim::proxycore
