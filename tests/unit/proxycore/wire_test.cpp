#include "proxycore/wire.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/write.hpp> // operator<< for heads: the reference

#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>

namespace http = boost::beast::http;
using authshim::proxycore::chunk_size_line;
using authshim::proxycore::serialize_head;

namespace {

template <bool is_request> http::header<is_request> parse_head(std::string_view text) {
    http::parser<is_request, http::empty_body> parser;
    parser.eager(false);
    boost::system::error_code ec;
    parser.put(boost::asio::buffer(text.data(), text.size()), ec);
    REQUIRE_FALSE(ec);
    REQUIRE(parser.is_header_done());
    return parser.release().base();
}

/// What Beast's own serializer writes for the same head.
template <bool is_request> std::string beast_head(const http::header<is_request>& head) {
    std::ostringstream out;
    out << head;
    return out.str();
}

} // namespace

TEST_CASE("serialize_head writes a request head byte for byte like Beast") {
    for (const std::string_view text :
         {std::string_view("GET http://a.example/x?y=1 HTTP/1.1\r\nHost: a.example\r\n"
                           "X-Dup: 1\r\nx-dup: 2\r\nProxy-Authorization: Basic QQ==\r\n\r\n"),
          std::string_view("PURGE /z HTTP/1.0\r\nHost: b\r\nContent-Length: 0\r\n\r\n"),
          std::string_view("CONNECT host.example:443 HTTP/1.1\r\nHost: host.example:443\r\n\r\n"),
          std::string_view("OPTIONS * HTTP/1.1\r\nEmpty:\r\n\r\n")}) {
        const auto head = parse_head<true>(text);
        std::string out = "left over from the previous head";
        serialize_head(out, head);
        CHECK(out == beast_head(head));
        CHECK(out.back() == '\n');
    }
}

TEST_CASE("serialize_head writes a response head byte for byte like Beast") {
    for (const std::string_view text :
         {std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\n"
                           "Set-Cookie: b=2\r\n\r\n"),
          std::string_view("HTTP/1.0 404 Not Here At All\r\nServer: nginx\r\n\r\n"),
          std::string_view("HTTP/1.1 599 \r\nX: y\r\n\r\n"),
          std::string_view("HTTP/1.1 302 Found\r\nLocation: /\r\n\r\n")}) {
        const auto head = parse_head<false>(text);
        std::string out;
        serialize_head(out, head);
        CHECK(out == beast_head(head));
    }
}

TEST_CASE("serialize_head uses the standard reason phrase for a built response") {
    http::response_header<> head;
    head.result(http::status::bad_gateway);
    head.version(11);
    head.set(http::field::content_length, "0");
    std::string out;
    serialize_head(out, head);
    CHECK(out == "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
    CHECK(out == beast_head(head));
}

TEST_CASE("chunk_size_line is the size in lower-case hex and CRLF") {
    CHECK(chunk_size_line(1).text() == "1\r\n");
    CHECK(chunk_size_line(15).text() == "f\r\n");
    CHECK(chunk_size_line(16).text() == "10\r\n");
    CHECK(chunk_size_line(0x1a2b).text() == "1a2b\r\n");
    CHECK(chunk_size_line(65536).text() == "10000\r\n");
    CHECK(chunk_size_line(std::numeric_limits<std::size_t>::max()).text() ==
          std::string(2 * sizeof(std::size_t), 'f') + "\r\n");
}
