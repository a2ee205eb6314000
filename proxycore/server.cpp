#include "proxycore/server.hpp"

#include "proxycore/client_session.hpp"
#include "proxycore/format.hpp"
#include "proxycore/request_rules.hpp"
#include "proxycore/server_state.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include <exception>

namespace authshim::proxycore {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;
using boost::system::error_code;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// Completion handler for co_spawn: an escaped exception is a bug; log it, never lose it.
auto log_escaped(std::string what) {
    return [what = std::move(what)](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            spdlog::error("{} ended with an unexpected exception: {}", what, ex.what());
        } catch (...) {
            spdlog::error("{} ended with an unexpected exception", what);
        }
    };
}

/// Answers a connection over `limits.max_connections` with 503 and closes it.
asio::awaitable<void> reject_busy(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    auto res =
        make_text_response(http::status::service_unavailable,
                           "too many connections (limits.max_connections); retry later", 11, false);
    stream.expires_after(std::chrono::seconds(2));
    co_await http::async_write(stream, res, use_tuple);
    error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
}

} // namespace

server::server(config::config cfg)
    : state_(std::make_shared<server_state>(std::move(cfg), io_.get_executor())) {}

server::~server() {
    state_->pool.close_all();
}

const counters& server::stats() const {
    return state_->stats;
}

std::vector<std::string> server::bind() {
    std::vector<std::string> errors;
    for (const auto& listen : state_->cfg.listen) {
        error_code ec;
        const auto address = asio::ip::make_address(listen.host, ec);
        if (ec) {
            errors.push_back("cannot listen on " + listen.to_string() + ": not an IP address");
            continue;
        }
        const tcp::endpoint endpoint(address, listen.port);
        auto acceptor = std::make_unique<tcp::acceptor>(io_);
        const auto fail = [&](const char* step) {
            errors.push_back("cannot listen on " + listen.to_string() + " (" + step +
                             "): " + ec.message());
        };
        if (acceptor->open(endpoint.protocol(), ec); ec) {
            fail("socket");
            continue;
        }
        if (address.is_v6()) acceptor->set_option(asio::ip::v6_only(true), ec);
        acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
        if (acceptor->bind(endpoint, ec); ec) {
            fail("bind");
            continue;
        }
        if (acceptor->listen(tcp::socket::max_listen_connections, ec); ec) {
            fail("listen");
            continue;
        }
        endpoints_.push_back(acceptor->local_endpoint(ec));
        acceptors_.push_back(std::move(acceptor));
    }
    if (!errors.empty()) {
        acceptors_.clear();
        endpoints_.clear();
    }
    state_->access.set_own_endpoints(endpoints_);
    return errors;
}

std::vector<tcp::endpoint> server::local_endpoints() const {
    return endpoints_;
}

void server::run() {
    for (auto& acceptor : acceptors_) {
        spdlog::info("listening on {}", format_endpoint(acceptor->local_endpoint()));
        asio::co_spawn(acceptor->get_executor(), accept_loop(*acceptor),
                       log_escaped("the accept loop"));
    }
    io_.run();
    state_->pool.close_all();
}

asio::awaitable<void> server::accept_loop(tcp::acceptor& acceptor) {
    const auto max_connections = state_->cfg.limits.max_connections;
    asio::steady_timer backoff(acceptor.get_executor());
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
        if (state_->stopping || ec == asio::error::operation_aborted || !acceptor.is_open())
            co_return;
        if (ec) {
            // Out of descriptors (or a transient accept failure): back off instead of spinning.
            spdlog::warn("accept failed: {}; pausing accepts for 100ms", ec.message());
            backoff.expires_after(std::chrono::milliseconds(100));
            co_await backoff.async_wait(use_tuple);
            continue;
        }
        bump(state_->stats.connections_accepted);
        if (state_->stats.connections_active.load(std::memory_order_relaxed) >= max_connections) {
            bump(state_->stats.connections_rejected_limit);
            spdlog::warn("connection limit reached (limits.max_connections = {}): answering 503",
                         max_connections);
            auto ex = socket.get_executor();
            asio::co_spawn(ex, reject_busy(std::move(socket)), log_escaped("a 503 answer"));
            continue;
        }
        spawn_session(std::move(socket));
    }
}

void server::spawn_session(tcp::socket socket) {
    auto session = std::make_shared<client_session>(std::move(socket), state_);
    const auto id = state_->add_session(session);
    bump(state_->stats.connections_active);
    auto state = state_;
    asio::co_spawn(session->executor(), session->run(),
                   [state, id, log = log_escaped("a client session")](std::exception_ptr e) {
                       log(e);
                       state->remove_session(id);
                       state->stats.connections_active.fetch_sub(1, std::memory_order_relaxed);
                   });
}

void server::request_stop() {
    if (state_->stopping.exchange(true)) return;
    spdlog::info("stopping: no new connections; in-flight requests get up to {} ms",
                 state_->cfg.timeouts.shutdown.count());
    for (auto& acceptor : acceptors_) {
        asio::post(acceptor->get_executor(), [a = acceptor.get()] {
            error_code ec;
            a->close(ec);
        });
    }
    for (auto& session : state_->live_sessions())
        asio::post(session->executor(), [session] { session->stop(); });
    state_->pool.close_all();
    asio::post(io_, [state = state_] { state->pool.cancel_spare(); });
    asio::co_spawn(io_, supervise_shutdown(), log_escaped("the shutdown supervisor"));
}

asio::awaitable<void> server::supervise_shutdown() {
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + state_->cfg.timeouts.shutdown;
    asio::steady_timer timer(io_);
    while (state_->session_count() > 0 && clock::now() < deadline) {
        timer.expires_after(std::chrono::milliseconds(20));
        co_await timer.async_wait(use_tuple);
    }
    const auto left = state_->live_sessions();
    if (left.empty()) {
        spdlog::info("stopped: every connection finished");
        co_return;
    }
    spdlog::warn("stopping: {} connection(s) still busy after timeouts.shutdown; closing them",
                 left.size());
    for (auto& session : left)
        asio::post(session->executor(), [session] { session->force_close(); });
    const auto hard_deadline = clock::now() + std::chrono::seconds(2);
    while (state_->session_count() > 0 && clock::now() < hard_deadline) {
        timer.expires_after(std::chrono::milliseconds(20));
        co_await timer.async_wait(use_tuple);
    }
    io_.stop();
}

} // namespace authshim::proxycore
