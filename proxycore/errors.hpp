#pragma once
/// authshim's own error conditions in the proxy core, as an error_code category, so that
/// expected failures travel as values (never exceptions) and can be counted and logged.
/// Thread safety: the category is a stateless singleton.

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace authshim::proxycore {

enum class proxy_errc {
    connect_timeout = 1,   ///< no TCP connection to the upstream within timeouts.connect
    resolve_failed,        ///< the upstream's name did not resolve
    response_timeout,      ///< no response head within timeouts.upstream_response
    bad_upstream_response, ///< the upstream sent something that is not valid HTTP framing
    upstream_closed,       ///< the upstream closed the connection before a response head
    shutting_down,         ///< authshim is stopping
    tls_handshake_failed,  ///< TLS to an https:// upstream failed (the reason is logged)
};

const boost::system::error_category& proxy_category() noexcept;

inline boost::system::error_code make_error_code(proxy_errc e) noexcept {
    return {static_cast<int>(e), proxy_category()};
}

} // namespace authshim::proxycore

template <>
struct boost::system::is_error_code_enum<authshim::proxycore::proxy_errc> : std::true_type {};
