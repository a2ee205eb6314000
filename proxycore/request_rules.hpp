#pragma once
/// HTTP message rules of a forwarding proxy, as pure functions on Beast headers (no I/O):
/// request-target parsing, request validation (framing that enables smuggling, Host, methods),
/// hop-by-hop stripping, `Via`, and the short text responses authshim itself sends.
/// Thread safety: stateless free functions.

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace authshim::proxycore {

namespace http = boost::beast::http;

/// Where a request goes: `host` without brackets, `port`, and the authority exactly as written.
struct target_authority {
    std::string host;
    std::uint16_t port = 0;
    std::string authority; ///< as written in the request-target, e.g. `example.com:8080`
};

/// Parses an absolute-form `http://authority/path?query` target. Rejects other schemes,
/// userinfo, empty hosts, bad ports and fragments.
std::optional<target_authority> parse_absolute_http_target(std::string_view target);

/// Parses an authority-form `host:port` (CONNECT) target; the port is required.
std::optional<target_authority> parse_authority_target(std::string_view target);

/// The outcome of validating a request head: `ok()` or a status with a reason for the client.
struct verdict {
    http::status status = http::status::ok;
    std::string reason;
    bool ok() const { return status == http::status::ok; }
};

/// Checks a request head read from a client: version, method, request-target form, `Host`,
/// message framing (`Content-Length` / `Transfer-Encoding` rules of RFC 9112 §6, stricter than
/// Beast 1.81) and `Expect`. On success `target` receives the destination.
verdict validate_request(const http::request_header<>& head, target_authority& target);

/// Removes hop-by-hop fields (those named in `Connection` plus the fixed list in
/// PROTOCOL-NOTES) and any `Proxy-Authorization`/`Proxy-Authenticate`. Never removes framing
/// fields named in `Connection` (`Content-Length`) nor `Host`.
void strip_hop_by_hop(http::fields& fields);

/// Rewrites a validated request head for the upstream proxy: hop-by-hop fields stripped,
/// `Host` set from the target, HTTP/1.1, `Via` appended for the received protocol version.
void prepare_upstream_request(http::request_header<>& head, const target_authority& target,
                              unsigned received_version);

/// Rewrites an upstream response head for the client: hop-by-hop fields stripped and `Via`
/// appended for the upstream's protocol version.
void prepare_client_response(http::response_header<>& head, unsigned received_version);

/// Appends `<version> authshim` to `Via`, e.g. `1.1 authshim`.
void append_via(http::fields& fields, unsigned received_version);

/// True when `Via` already carries authshim's pseudonym (a forwarding loop).
bool via_has_authshim(const http::fields& fields);

/// True for methods whose request can be retried safely when a reused connection failed.
bool is_idempotent(http::verb method);

/// A short `text/plain` response from authshim itself (errors, denials).
http::response<http::string_body> make_text_response(http::status status, std::string_view text,
                                                     unsigned version, bool keep_alive);

} // namespace authshim::proxycore
