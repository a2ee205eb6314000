#pragma once
/// The bytes of an HTTP/1.x head (start line, fields, blank line) and of body chunk framing, so
/// that a head and the first body bytes leave in one gather write instead of through Beast's
/// serializer (whose buffer-sequence layers cost more than the rest of a request; bench/).
/// Thread safety: pure functions.

#include <boost/beast/http/message.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace authshim::proxycore {

namespace http = boost::beast::http;

/// Replaces `out` with the request line, the fields in their order, and the blank line.
void serialize_head(std::string& out, const http::request_header<>& head);

/// Replaces `out` with the status line (the reason phrase as received, else the standard one),
/// the fields in their order, and the blank line.
void serialize_head(std::string& out, const http::response_header<>& head);

/// A chunk-size line (`1a2b\r\n`) for a chunk of `size` (> 0) bytes.
struct chunk_size_line {
    explicit chunk_size_line(std::size_t size) noexcept;
    std::string_view text() const noexcept { return {buffer_ + start_, sizeof buffer_ - start_}; }

private:
    char buffer_[2 * sizeof(std::size_t) + 2];
    std::size_t start_ = sizeof buffer_;
};

inline constexpr std::string_view chunk_end = "\r\n";
inline constexpr std::string_view last_chunk = "0\r\n\r\n";

} // namespace authshim::proxycore
