#include "proxycore/upstream_stream.hpp"

#include <boost/asio/ssl/error.hpp>

#include <filesystem>
#include <stdexcept>

namespace authshim::proxycore {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;

std::variant<beast::tcp_stream, upstream_stream::tls_stream> make_stream(asio::any_io_executor ex,
                                                                         asio::ssl::context* tls) {
    if (tls)
        return std::variant<beast::tcp_stream, upstream_stream::tls_stream>(
            std::in_place_type<upstream_stream::tls_stream>, std::move(ex), *tls);
    return std::variant<beast::tcp_stream, upstream_stream::tls_stream>(
        std::in_place_type<beast::tcp_stream>, std::move(ex));
}

} // namespace

upstream_stream::upstream_stream(asio::any_io_executor ex, std::shared_ptr<asio::ssl::context> tls)
    : context_(std::move(tls)), stream_(make_stream(std::move(ex), context_.get())) {}

beast::tcp_stream& upstream_stream::tcp() noexcept {
    if (auto* s = tls()) return s->next_layer();
    return std::get<beast::tcp_stream>(stream_);
}

void upstream_stream::close() {
    boost::system::error_code ec;
    tcp().cancel();
    socket().close(ec);
}

void upstream_stream::shutdown_send() {
    if (tls()) return;
    boost::system::error_code ec;
    socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
}

std::shared_ptr<asio::ssl::context> make_upstream_tls_context(const std::string& ca_file) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    ctx->set_verify_mode(asio::ssl::verify_peer);
    boost::system::error_code ec;
    if (ca_file.empty()) {
        ctx->set_default_verify_paths(ec);
        if (ec)
            throw std::runtime_error("cannot load the system's trusted CA certificates: " +
                                     ec.message());
    } else {
        ctx->load_verify_file(ca_file, ec);
        if (ec)
            throw std::runtime_error("cannot load the CA file " + ca_file +
                                     " (upstreams[].ca_file): " + ec.message());
    }
    return ctx;
}

} // namespace authshim::proxycore
