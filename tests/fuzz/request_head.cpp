// libFuzzer target: a client's request head as client_session reads and checks it (Beast 1.81's
// request parser with the session's settings, then proxycore/request_rules.hpp), and what
// forward() writes upstream from it; an input starting with `HTTP/` is instead an upstream's
// response head as relay_response() reads, rewrites and writes it to the client.
//
// Input: the raw bytes a client (or the upstream) sends. They are fed to the parser the way
// http::async_read_header does (put() on what is buffered, keep the rest, read more), once in a
// single piece and once in three: both must be refused, or both accepted as the same head.
// Checked beyond "no crash, no leak, no UB", for every head validate_request() accepts:
// - the method, target and every field name and value hold no CR, LF, NUL or other control
//   character but HTAB (nothing that could split a head downstream);
// - at most one Content-Length, Transfer-Encoding only as a single `chunked` and never with a
//   Content-Length, HTTP/1.0 or 1.1, a host and a non-zero port; CONNECT only to host:port;
// - the head forward() serialises for the upstream parses back (Beast, as an upstream would) to
//   exactly one complete head of the same length (no second request hidden in it) with the same
//   method, target and body framing, one Host (the target's authority), no hop-by-hop field,
//   and passes validate_request() again with the same destination.
// For responses: the head written to the client parses back complete, with the framing the relay
// uses for the body (the upstream's Content-Length, else re-chunked), no hop-by-hop field.
#include "proxycore/access.hpp"
#include "proxycore/request_rules.hpp"
#include "proxycore/wire.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/none.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace pc = authshim::proxycore;
namespace http = boost::beast::http;
namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// limits.max_header_bytes may be 1024 to 16 MiB (default 64 KiB); a small value lets inputs
// of libFuzzer's default length reach the limit too.
constexpr std::uint32_t header_limit = 8192;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_request_head: invariant broken: %s\n", what);
    std::abort();
}

void check(bool condition, const char* what) {
    if (!condition) fail(what);
}

bool clean(std::string_view text) {
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && u != '\t') || u == 0x7f) return false;
    }
    return true;
}

template <bool isRequest> void check_clean_fields(const http::header<isRequest>& head) {
    for (const auto& f : head) {
        check(!f.name_string().empty() && clean(f.name_string()), "control byte in a name");
        check(clean(f.value()), "control byte in a field value");
    }
}

/// The outcome of reading one head as http::async_read_header does.
template <bool isRequest> struct read_result {
    error_code ec;
    std::size_t consumed = 0; ///< bytes the parser took (the head, when complete)
    http::message<isRequest, http::empty_body> head; ///< the head only (chunked(), keep_alive())
    bool chunked = false;
    std::optional<std::uint64_t> content_length;
    bool done = false; ///< parser.is_done() right after the head (no body follows)
};

template <bool isRequest>
read_result<isRequest> read_head(std::string_view bytes, std::size_t piece,
                                 bool head_request = false) {
    http::parser<isRequest, http::buffer_body> parser;
    parser.header_limit(header_limit);
    parser.body_limit(boost::none);
    if constexpr (!isRequest) parser.skip(head_request);
    read_result<isRequest> out;
    std::string buffered; // what a flat_buffer holds between reads
    std::size_t offset = 0;
    for (;;) {
        if (!buffered.empty()) {
            const std::size_t used =
                parser.put(asio::buffer(buffered.data(), buffered.size()), out.ec);
            buffered.erase(0, used);
            out.consumed += used;
            if (out.ec == http::error::need_more) {
                out.ec = {};
            } else if (out.ec || parser.is_header_done()) {
                break;
            }
        }
        if (offset == bytes.size()) { // the peer closed
            if (parser.got_some())
                parser.put_eof(out.ec);
            else
                out.ec = http::error::end_of_stream;
            if (!out.ec && !parser.is_header_done()) out.ec = http::error::partial_message;
            break;
        }
        const std::size_t n = std::min(piece, bytes.size() - offset);
        buffered.append(bytes.substr(offset, n));
        offset += n;
    }
    if (!out.ec) {
        out.head.base() = parser.get().base();
        out.chunked = parser.chunked();
        if (const auto length = parser.content_length()) out.content_length = *length;
        out.done = parser.is_done();
    }
    return out;
}

std::string serialize(const http::request_header<>& head) {
    std::string out;
    pc::serialize_head(out, head);
    return out;
}

std::string serialize(const http::response_header<>& head) {
    std::string out;
    pc::serialize_head(out, head);
    return out;
}

template <bool isRequest>
void check_same(const read_result<isRequest>& a, const read_result<isRequest>& b) {
    // Beast parses a first piece optimistically and later ones only once the blank line is
    // there, so the error named may differ (`bad version` against `partial message` for a head
    // without CRLFs); whether the head is refused, and what is accepted, may not.
    if (!a.ec != !b.ec) {
        std::fprintf(stderr, "in one piece: %s; in three: %s\n", a.ec.message().c_str(),
                     b.ec.message().c_str());
        fail("the outcome depends on how the bytes arrive");
    }
    if (a.ec) return;
    check(a.consumed == b.consumed && serialize(a.head) == serialize(b.head) &&
              a.chunked == b.chunked && a.content_length == b.content_length,
          "the head depends on how the bytes arrive");
}

bool no_hop_by_hop(const http::fields& f) {
    using http::field;
    for (auto name : {field::connection, field::proxy_connection, field::keep_alive, field::te,
                      field::trailer, field::upgrade, field::proxy_authorization,
                      field::proxy_authenticate, field::proxy_authentication_info}) {
        if (f.count(name) != 0) return false;
    }
    return true;
}

const pc::access_rules& access() {
    static const pc::access_rules rules = [] {
        pc::access_rules r{authshim::config::access_policy{}};
        r.set_own_endpoints(
            {{asio::ip::make_address("127.0.0.1"), 3128}, {asio::ip::make_address("::"), 3129}});
        return r;
    }();
    return rules;
}

void request(std::string_view bytes) {
    const auto whole = read_head<true>(bytes, bytes.size() + 1);
    check_same(whole, read_head<true>(bytes, bytes.size() / 3 + 1));
    if (whole.ec) return;
    auto head = whole.head;
    pc::target_authority target;
    const auto v = pc::validate_request(head, target);
    if (!v.ok()) {
        check(!v.reason.empty() && clean(v.reason), "rejection without a clean reason");
        return;
    }

    check(clean(head.method_string()) && clean(head.target()), "control byte in the start line");
    check_clean_fields(head);
    check(head.version() == 10 || head.version() == 11, "accepted HTTP version");
    check(head.count(http::field::content_length) <= 1, "accepted two Content-Lengths");
    if (head.count(http::field::transfer_encoding) != 0) {
        check(whole.chunked && head.count(http::field::content_length) == 0,
              "accepted Transfer-Encoding that is not chunked alone");
    }
    check(!target.host.empty() && target.port != 0, "accepted an empty destination");
    if (head.method() == http::verb::connect)
        check(target.authority == head.target(), "CONNECT target is not the authority");
    (void)pc::via_has_authshim(head);
    (void)access().targets_self(target.host, target.port);
    (void)access().connect_port_allowed(target.port);
    (void)pc::is_idempotent(head.method());

    // What forward() sends upstream (without credentials; a Proxy-Authorization value is ours).
    pc::prepare_upstream_request(head, target, whole.head.version());
    if (whole.chunked) head.chunked(true);
    const std::string upstream = serialize(head);
    const auto again = read_head<true>(upstream, upstream.size() + 1);
    check(!again.ec, "the upstream request head does not parse");
    check(again.consumed == upstream.size(), "the upstream request head has bytes after it");
    check(again.head.method() == whole.head.method() &&
              again.head.method_string() == whole.head.method_string() &&
              again.head.target() == whole.head.target(),
          "the upstream request line differs");
    check(again.chunked == whole.chunked && again.content_length == whole.content_length,
          "the upstream request framing differs");
    check(again.head.count(http::field::host) == 1 &&
              again.head[http::field::host] == target.authority,
          "the upstream Host is not the target");
    check(no_hop_by_hop(again.head), "a hop-by-hop field reaches the upstream");
    pc::target_authority again_target;
    const auto again_verdict = pc::validate_request(again.head, again_target);
    check(again_verdict.ok(), "the upstream request head fails validation");
    check(again_target.host == target.host && again_target.port == target.port &&
              again_target.authority == target.authority,
          "the upstream request goes elsewhere");
}

void response(std::string_view bytes) {
    const auto whole = read_head<false>(bytes, bytes.size() + 1);
    check_same(whole, read_head<false>(bytes, bytes.size() / 3 + 1));
    if (whole.ec) return;
    check_clean_fields(whole.head);

    // relay_response() for an HTTP/1.1 client that keeps the connection.
    auto head = whole.head;
    pc::prepare_client_response(head, head.version());
    head.version(11);
    const bool body_follows = !whole.done;
    const bool rechunk = body_follows && !whole.content_length;
    if (rechunk) head.chunked(true);
    head.keep_alive(true);
    const std::string client = serialize(head);
    const auto again = read_head<false>(client, client.size() + 1);
    check(!again.ec, "the client response head does not parse");
    check(again.consumed == client.size(), "the client response head has bytes after it");
    check(again.head.result_int() == whole.head.result_int(), "the status differs");
    check(no_hop_by_hop(again.head), "a hop-by-hop field reaches the client");
    if (body_follows) {
        check(again.chunked == rechunk, "the client response framing differs");
        if (!rechunk)
            check(again.content_length == whole.content_length,
                  "the client response length differs");
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    if (bytes.starts_with("HTTP/"))
        response(bytes);
    else
        request(bytes);
    return 0;
}
