#include "proxycore/request_rules.hpp"

#include <boost/asio/ip/address_v6.hpp>
#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <vector>

namespace authshim::proxycore {
namespace {

using boost::beast::iequals;
using field = http::field;

constexpr std::string_view via_pseudonym = "authshim";

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

/// Splits a comma-separated field value into trimmed, non-empty elements (RFC 9110 §5.6.1).
std::vector<std::string_view> split_list(std::string_view value) {
    std::vector<std::string_view> out;
    while (!value.empty()) {
        const auto comma = value.find(',');
        const auto element = trim_ows(value.substr(0, comma));
        if (!element.empty()) out.push_back(element);
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    return out;
}

bool is_reg_name_char(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) return true;
    constexpr std::string_view allowed = "-._~%!$&'()*+,;=";
    return allowed.find(c) != std::string_view::npos;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
    if (s.empty() || s.size() > 5) return std::nullopt;
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc{} || end != s.data() + s.size() || value == 0 || value > 65535)
        return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

/// Parses `host[:port]` (`[v6][:port]`); `default_port` 0 means the port is required.
std::optional<target_authority> parse_authority(std::string_view authority,
                                                std::uint16_t default_port) {
    if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
    target_authority out;
    out.authority = std::string(authority);
    std::string_view rest;
    if (authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos || close < 3) return std::nullopt;
        const auto literal = authority.substr(1, close - 1);
        if (literal.find('%') != std::string_view::npos) return std::nullopt; // no zone IDs
        boost::system::error_code ec;
        boost::asio::ip::make_address_v6(std::string(literal), ec);
        if (ec) return std::nullopt;
        out.host = std::string(literal);
        rest = authority.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') return std::nullopt;
    } else {
        const auto colon = authority.find(':');
        const auto host = authority.substr(0, colon);
        if (host.empty() || !std::all_of(host.begin(), host.end(), is_reg_name_char))
            return std::nullopt;
        out.host = std::string(host);
        if (colon != std::string_view::npos) rest = authority.substr(colon);
    }
    if (rest.empty() || rest == ":") {
        if (default_port == 0) return std::nullopt;
        out.port = default_port;
        return out;
    }
    const auto port = parse_port(rest.substr(1));
    if (!port) return std::nullopt;
    out.port = *port;
    return out;
}

bool all_digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

/// True when the authority of an absolute-form (`scheme://user@host/`) or authority-form
/// (`user@host:443`) target carries userinfo. An `@` in the path or query does not count.
bool has_userinfo(std::string_view target) {
    if (const auto scheme_end = target.find("://"); scheme_end != std::string_view::npos)
        target.remove_prefix(scheme_end + 3);
    const auto authority = target.substr(0, target.find_first_of("/?#"));
    return authority.find('@') != std::string_view::npos;
}

verdict reject(http::status status, std::string reason) {
    return {status, std::move(reason)};
}

verdict check_framing(const http::request_header<>& head) {
    std::size_t content_lengths = 0;
    for (const auto& f : head) {
        if (f.name() != field::content_length) continue;
        ++content_lengths;
        const auto value = trim_ows(f.value());
        if (!all_digits(value) || value.size() > 18)
            return reject(http::status::bad_request, "invalid Content-Length");
    }
    if (content_lengths > 1)
        return reject(http::status::bad_request, "more than one Content-Length");

    std::vector<std::string_view> codings;
    bool has_te = false;
    for (const auto& f : head) {
        if (f.name() != field::transfer_encoding) continue;
        has_te = true;
        for (auto c : split_list(f.value()))
            codings.push_back(c);
    }
    if (!has_te) return {};
    if (head.version() < 11)
        return reject(http::status::bad_request, "Transfer-Encoding in an HTTP/1.0 request");
    if (content_lengths > 0)
        return reject(http::status::bad_request, "both Transfer-Encoding and Content-Length");
    if (codings.empty() || !iequals(codings.back(), "chunked"))
        return reject(http::status::bad_request, "Transfer-Encoding does not end in chunked");
    // RFC 9112 §6.1: chunked is applied at most once; twice is not a coding we could skip.
    if (std::any_of(codings.begin(), codings.end() - 1,
                    [](std::string_view c) { return iequals(c, "chunked"); }))
        return reject(http::status::bad_request, "Transfer-Encoding names chunked more than once");
    if (codings.size() > 1)
        return reject(http::status::not_implemented,
                      "transfer codings other than a single chunked are not supported");
    return {};
}

} // namespace

std::optional<target_authority> parse_absolute_http_target(std::string_view target) {
    constexpr std::string_view scheme = "http://";
    if (target.size() <= scheme.size() || !iequals(target.substr(0, scheme.size()), scheme))
        return std::nullopt;
    if (target.find('#') != std::string_view::npos) return std::nullopt;
    const auto rest = target.substr(scheme.size());
    const auto end = rest.find_first_of("/?");
    return parse_authority(rest.substr(0, end), 80);
}

std::optional<target_authority> parse_authority_target(std::string_view target) {
    return parse_authority(target, 0);
}

verdict validate_request(const http::request_header<>& head, target_authority& target) {
    if (head.version() != 10 && head.version() != 11)
        return reject(http::status::http_version_not_supported, "only HTTP/1.0 and 1.1 are spoken");

    switch (head.method()) {
    case http::verb::get:
    case http::verb::head:
    case http::verb::post:
    case http::verb::put:
    case http::verb::delete_:
    case http::verb::options:
    case http::verb::patch:
    case http::verb::connect:
        break;
    default:
        return reject(http::status::not_implemented, "method not supported by authshim");
    }

    if (auto v = check_framing(head); !v.ok()) return v;

    std::size_t hosts = 0;
    for (const auto& f : head)
        if (f.name() == field::host) ++hosts;
    if (hosts > 1) return reject(http::status::bad_request, "more than one Host header");
    if (hosts == 0 && head.version() == 11)
        return reject(http::status::bad_request, "HTTP/1.1 request without a Host header");
    // RFC 9112 §3.2: an invalid Host value is a 400 (e.g. one with a folded line appended).
    if (const auto host = trim_ows(head[field::host]); !host.empty() && !parse_authority(host, 80))
        return reject(http::status::bad_request, "invalid Host header (not a host[:port])");

    std::size_t expects = 0;
    for (const auto& f : head) {
        if (f.name() != field::expect) continue;
        if (++expects > 1 || !iequals(trim_ows(f.value()), "100-continue"))
            return reject(http::status::expectation_failed,
                          "only Expect: 100-continue is supported");
    }

    const auto raw_target = head.target();
    if (has_userinfo(raw_target))
        return reject(http::status::bad_request,
                      "the request-target carries userinfo (name:password@), which HTTP "
                      "forbids (RFC 9110 §4.2.4)");
    if (head.method() == http::verb::connect) {
        auto parsed = parse_authority_target(raw_target);
        if (!parsed) return reject(http::status::bad_request, "CONNECT needs a host:port target");
        target = std::move(*parsed);
        return {};
    }
    if (!raw_target.empty() && (raw_target.front() == '/' || raw_target == "*"))
        return reject(http::status::bad_request,
                      "authshim is a forward proxy: send requests in absolute form "
                      "(GET http://host/path) by configuring it as the HTTP proxy");
    auto parsed = parse_absolute_http_target(raw_target);
    if (!parsed)
        return reject(http::status::bad_request,
                      "the request-target must be an http:// URL (use CONNECT for https)");
    target = std::move(*parsed);
    return {};
}

void strip_hop_by_hop(http::fields& fields) {
    std::vector<std::string> named;
    for (const auto& f : fields) {
        if (f.name() != field::connection && f.name() != field::proxy_connection) continue;
        for (auto token : split_list(f.value()))
            named.emplace_back(token);
    }
    for (const auto& name : named) {
        const auto known = http::string_to_field(name);
        // Framing and routing fields are ours to manage; a client must not make us drop them.
        if (known == field::content_length || known == field::host) continue;
        fields.erase(name);
    }
    static constexpr std::array fixed{field::connection,
                                      field::proxy_connection,
                                      field::keep_alive,
                                      field::te,
                                      field::trailer,
                                      field::transfer_encoding,
                                      field::upgrade,
                                      field::proxy_authorization,
                                      field::proxy_authenticate,
                                      field::proxy_authentication_info};
    for (auto f : fixed)
        fields.erase(f);
}

void append_via(http::fields& fields, unsigned received_version) {
    std::string value = received_version == 10 ? "1.0 " : "1.1 ";
    value += via_pseudonym;
    fields.insert(field::via, value);
}

bool via_has_authshim(const http::fields& fields) {
    for (const auto& f : fields) {
        if (f.name() != field::via) continue;
        for (auto element : split_list(f.value())) {
            // element: received-protocol RWS received-by [ RWS comment ]
            const auto space = element.find_first_of(" \t");
            if (space == std::string_view::npos) continue;
            auto by = trim_ows(element.substr(space + 1));
            by = by.substr(0, by.find_first_of(" \t"));
            if (iequals(by, via_pseudonym)) return true;
        }
    }
    return false;
}

void prepare_upstream_request(http::request_header<>& head, const target_authority& target,
                              unsigned received_version) {
    strip_hop_by_hop(head);
    head.set(field::host, target.authority);
    head.version(11);
    append_via(head, received_version);
}

void prepare_client_response(http::response_header<>& head, unsigned received_version) {
    strip_hop_by_hop(head);
    append_via(head, received_version);
}

bool is_idempotent(http::verb method) {
    switch (method) {
    case http::verb::get:
    case http::verb::head:
    case http::verb::options:
    case http::verb::put:
    case http::verb::delete_:
        return true;
    default:
        return false;
    }
}

http::response<http::string_body> make_text_response(http::status status, std::string_view text,
                                                     unsigned version, bool keep_alive) {
    http::response<http::string_body> res{status, version == 10 ? 10u : 11u};
    res.set(field::content_type, "text/plain; charset=utf-8");
    res.set(field::cache_control, "no-store");
    res.body() = "authshim: ";
    res.body().append(text);
    res.body().push_back('\n');
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
}

} // namespace authshim::proxycore
