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
    bool complete = false;   ///< the whole message was relayed
};

inline constexpr std::size_t relay_buffer_size = 64 * 1024;
/// Reads that go through the parser (chunked or EOF-delimited bodies) take at most this much
/// into the connection's buffer at a time; Content-Length bodies bypass it.
inline constexpr std::size_t parsed_read_size = 4 * 1024;
/// Input the parser may leave unconsumed (a chunk-size line, for one) before the body is
/// refused as malformed.
inline constexpr std::size_t max_unparsed = 64 * 1024;

/// The relay buffer for a body with `remaining` bytes still to come (unknown when chunked or
/// delimited by EOF): no larger than the body, at most relay_buffer_size.
inline std::size_t relay_capacity(boost::optional<std::uint64_t> remaining) {
    if (!remaining || *remaining >= relay_buffer_size) return relay_buffer_size;
    return *remaining == 0 ? 1 : static_cast<std::size_t>(*remaining);
}

/// Bytes the stream's socket holds unread (0 when it cannot tell).
template <class Stream> std::size_t pending_bytes(Stream& stream) {
    boost::system::error_code ec;
    const auto n = stream.socket().available(ec);
    return ec ? 0 : n;
}

/// How the relayed body is framed on the way out: as it arrives (Content-Length, or delimited
/// by the connection's close), or re-chunked.
enum class body_framing { raw, chunked };

/// Writes `head` (serialized; empty when already sent) and the body of `parser`'s message to
/// `out`, the head together with the first body bytes. Each read from `in` must make progress
/// within `in_timeout`, each write within `out_timeout`.
///
/// The parser takes what `in_buffer` already holds. A Content-Length body's remaining bytes are
/// then read straight into the relay buffer (one read per buffer, no copy through `in_buffer`,
/// and `in_buffer` keeps whatever follows the body); chunked and EOF-delimited bodies go on
/// through the parser. The parser is therefore not told about the end of a Content-Length
/// body: callers look at `relay_outcome::complete`, not at the parser.
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
    const auto fail = [&outcome](relay_failure where, boost::system::error_code ec) {
        outcome.failure = where;
        outcome.ec = ec;
        return outcome;
    };
    std::unique_ptr<char[]> storage;
    std::size_t capacity = 0;
    if (!parser.is_done()) {
        capacity = relay_capacity(parser.content_length_remaining());
        storage = std::make_unique_for_overwrite<char[]>(capacity);
    }
    parser.eager(true);
    auto& body = parser.get().body();
    // Set once the parser has handed over everything it holds of a Content-Length body.
    boost::optional<std::uint64_t> direct;
    for (;;) {
        std::size_t n = 0;
        bool last = parser.is_done() || (direct && *direct == 0);
        if (!direct && !last) {
            body.data = storage.get();
            body.size = capacity;
            bool need_input = in_buffer.size() == 0;
            while (!parser.is_done() && body.size > 0) {
                if (need_input) {
                    if (!parser.chunked() && parser.content_length_remaining() &&
                        in_buffer.size() == 0) {
                        direct = parser.content_length_remaining();
                        break;
                    }
                    if (body.size < capacity) break;      // write what there is before waiting
                    if (in_buffer.size() >= max_unparsed) // an endless chunk header line
                        co_return fail(relay_failure::read, http::error::buffer_overflow);
                    in.expires_after(in_timeout);
                    auto [ec, got] =
                        co_await in.async_read_some(in_buffer.prepare(parsed_read_size), use_tuple);
                    in_buffer.commit(got);
                    if (ec == asio::error::eof) {
                        parser.put_eof(ec); // the end of an EOF-delimited body, else an error
                        if (ec) co_return fail(relay_failure::read, ec);
                        break;
                    }
                    if (ec) co_return fail(relay_failure::read, ec);
                }
                boost::system::error_code ec;
                const auto used = parser.put(in_buffer.data(), ec);
                in_buffer.consume(used);
                if (ec == http::error::need_buffer) break;
                if (ec == http::error::need_more) {
                    need_input = true;
                    continue;
                }
                if (ec) co_return fail(relay_failure::read, ec);
                need_input = used == 0 || in_buffer.size() == 0;
            }
            n = capacity - body.size;
            last = parser.is_done();
        }
        // Straight from the socket, never past the body's end; what is already queued is taken
        // too, so that a body that arrives in pieces leaves in fewer, larger writes.
        while (direct && *direct > 0 && n < capacity && (n == 0 || pending_bytes(in) > 0)) {
            const auto want =
                static_cast<std::size_t>(std::min<std::uint64_t>(*direct, capacity - n));
            in.expires_after(in_timeout);
            auto [ec, got] =
                co_await in.async_read_some(asio::buffer(storage.get() + n, want), use_tuple);
            if (ec)
                co_return fail(relay_failure::read,
                               ec == asio::error::eof ? http::error::partial_message : ec);
            n += got;
            *direct -= got;
            last = *direct == 0;
        }
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
            if (wec) co_return fail(relay_failure::write, wec);
            outcome.bytes += n;
            head = {};
        }
        if (last) break;
    }
    in.expires_never();
    out.expires_never();
    outcome.complete = true;
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
