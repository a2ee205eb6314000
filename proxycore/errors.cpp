#include "proxycore/errors.hpp"

#include <string>

namespace authshim::proxycore {
namespace {

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "authshim.proxy"; }
    std::string message(int value) const override {
        switch (static_cast<proxy_errc>(value)) {
        case proxy_errc::connect_timeout:
            return "connect timed out";
        case proxy_errc::resolve_failed:
            return "name resolution failed";
        case proxy_errc::response_timeout:
            return "no response headers in time";
        case proxy_errc::bad_upstream_response:
            return "invalid response from upstream";
        case proxy_errc::upstream_closed:
            return "upstream closed the connection";
        case proxy_errc::tls_handshake_failed:
            return "TLS handshake with the upstream proxy failed (the log says why)";
        case proxy_errc::shutting_down:
            return "authshim is shutting down";
        }
        return "unknown proxy error";
    }
};

} // namespace

const boost::system::error_category& proxy_category() noexcept {
    static const category instance;
    return instance;
}

} // namespace authshim::proxycore
