#pragma once
/// Streams one HTTP message body from a parser to the other side through a bounded buffer, so a
/// body of any size passes with bounded memory (Beast's relay pattern, with deadlines on every
/// read and write), re-chunking it when asked. Used by client_session only.
/// Ownership: borrows everything; the caller keeps streams, parser and head alive.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>

#include "proxycore/wire.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace authshim::proxycore {

enum class relay_failure { none, read, write };

struct relay_outcome {
    relay_failure failure = relay_failure::none;
    boost::system::error_code ec;
    std::uint64_t bytes = 0; ///< body bytes written out
};

inline constexpr std::size_t relay_buffer_size = 64 * 1024;

/// The relay buffer for a body with `remaining` bytes still to come (unknown when chunked or
/// delimited by EOF): no larger than the body, at most relay_buffer_size.
inline std::size_t relay_capacity(boost::optional<std::uint64_t> remaining) {
    if (!remaining || *remaining >= relay_buffer_size) return relay_buffer_size;
    return *remaining == 0 ? 1 : static_cast<std::size_t>(*remaining);
}

/// How the relayed body is framed on the way out: as it arrives (Content-Length, or delimited
/// by the connection's close), or re-chunked.
enum class body_framing { raw, chunked };

/// Writes `head` (serialized; empty when already sent) and the body of `parser`'s message to
/// `out`, the head together with the first body bytes. Each read from `in` must make progress
/// within `in_timeout`, each write within `out_timeout`.
template <bool is_request, class InStream, class OutStream>
boost::asio::awaitable<relay_outcome>
relay_message(boost::beast::http::parser<is_request, boost::beast::http::buffer_body>& parser,
              InStream& in, boost::beast::flat_buffer& in_buffer,
              std::chrono::milliseconds in_timeout, std::string_view head, body_framing framing,
              OutStream& out, std::chrono::milliseconds out_timeout) {
    namespace asio = boost::asio;
    namespace http = boost::beast::http;
    constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
    const bool chunked = framing == body_framing::chunked;
    relay_outcome outcome;
    std::unique_ptr<char[]> storage;
    std::size_t capacity = 0;
    auto& body = parser.get().body();
    for (;;) {
        std::size_t n = 0;
        if (!parser.is_done()) {
            if (!storage) {
                capacity = relay_capacity(parser.content_length_remaining());
                storage = std::make_unique_for_overwrite<char[]>(capacity);
            }
            body.data = storage.get();
            body.size = capacity;
            in.expires_after(in_timeout);
            auto [ec, read] = co_await http::async_read(in, in_buffer, parser, use_tuple);
            if (ec == http::error::need_buffer) ec = {};
            if (ec) {
                outcome.failure = relay_failure::read;
                outcome.ec = ec;
                co_return outcome;
            }
            n = capacity - body.size;
        }
        const bool last = parser.is_done();
        std::array<asio::const_buffer, 5> pieces;
        std::size_t count = 0;
        if (!head.empty()) pieces[count++] = asio::buffer(head);
        const chunk_size_line size_line(n);
        if (n > 0) {
            if (chunked) pieces[count++] = asio::buffer(size_line.text());
            pieces[count++] = asio::buffer(storage.get(), n);
            if (chunked) pieces[count++] = asio::buffer(chunk_end);
        }
        if (last && chunked) pieces[count++] = asio::buffer(last_chunk);
        if (count > 0) {
            out.expires_after(out_timeout);
            auto [wec, written] = co_await asio::async_write(
                out, std::span<const asio::const_buffer>(pieces.data(), count), use_tuple);
            if (wec) {
                outcome.failure = relay_failure::write;
                outcome.ec = wec;
                co_return outcome;
            }
            outcome.bytes += n;
            head = {};
        }
        if (last) break;
    }
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
    const auto capacity = relay_capacity(parser.content_length_remaining());
    auto storage = std::make_unique_for_overwrite<char[]>(capacity);
    auto& body = parser.get().body();
    while (!parser.is_done()) {
        body.data = storage.get();
        body.size = capacity;
        in.expires_after(in_timeout);
        auto [ec, n] = co_await http::async_read(in, in_buffer, parser, use_tuple);
        if (ec && ec != http::error::need_buffer) co_return ec;
    }
    in.expires_never();
    co_return boost::system::error_code{};
}

} // namespace authshim::proxycore
