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

#include <algorithm>
#include <exception>
#include <future>
#include <utility>

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

namespace {

bool same_route(const config::config& a, const config::config& b) {
    const auto& x = a.upstreams.at(0);
    const auto& y = b.upstreams.at(0);
    return x.name == y.name && x.address == y.address && x.transport == y.transport &&
           x.ca_file == y.ca_file && a.timeouts.connect == b.timeouts.connect;
}

/// True when the authentication state built for `a` is valid for `b`: same credential (name,
/// user, password), schemes, lockout policy and wait limit.
bool same_auth(const config::config& a, const config::config& b) {
    const auto& x = a.upstreams.at(0);
    const auto& y = b.upstreams.at(0);
    if (x.credentials != y.credentials || x.schemes != y.schemes) return false;
    if (a.lockout.max_rejections != b.lockout.max_rejections ||
        a.lockout.retry_after != b.lockout.retry_after)
        return false;
    if (a.timeouts.connect + a.timeouts.upstream_response !=
        b.timeouts.connect + b.timeouts.upstream_response)
        return false;
    if (!x.credentials) return true;
    const auto& c = a.credentials.at(*x.credentials);
    const auto& d = b.credentials.at(*y.credentials);
    return c.username == d.username && c.password == d.password;
}

} // namespace

server::server(config::config cfg, std::shared_ptr<access_log> requests_log)
    : state_(std::make_shared<server_state>()) {
    auto rt = std::make_shared<runtime>(
        runtime{std::move(cfg), access_rules({}), nullptr, nullptr, std::move(requests_log)});
    rt->access = access_rules(rt->cfg.access);
    rt->pool = std::make_shared<upstream_pool>(io_.get_executor(), rt->cfg.upstreams.at(0),
                                               rt->cfg.timeouts.connect, state_->stats);
    rt->auth = make_upstream_auth(rt->cfg, state_->stats);
    state_->current = std::move(rt);
}

server::~server() {
    state_->current->pool->close_all();
    if (state_->current->requests_log) state_->current->requests_log->flush();
}

const counters& server::stats() const {
    return state_->stats;
}

server::listener server::open_listener(const config::endpoint& listen,
                                       std::vector<std::string>& errors) {
    error_code ec;
    const auto address = asio::ip::make_address(listen.host, ec);
    if (ec) {
        errors.push_back("cannot listen on " + listen.to_string() + ": not an IP address");
        return {};
    }
    const tcp::endpoint endpoint(address, listen.port);
    auto acceptor = std::make_shared<tcp::acceptor>(io_);
    const auto fail = [&](const char* step) {
        errors.push_back("cannot listen on " + listen.to_string() + " (" + step +
                         "): " + ec.message());
        return listener{};
    };
    if (acceptor->open(endpoint.protocol(), ec); ec) return fail("socket");
    if (address.is_v6()) acceptor->set_option(asio::ip::v6_only(true), ec);
    acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    if (acceptor->bind(endpoint, ec); ec) return fail("bind");
    if (acceptor->listen(tcp::socket::max_listen_connections, ec); ec) return fail("listen");
    auto bound = acceptor->local_endpoint(ec);
    return {listen, std::move(acceptor), bound};
}

void server::publish_endpoints() {
    std::vector<tcp::endpoint> endpoints;
    for (const auto& l : listeners_)
        endpoints.push_back(l.bound);
    std::lock_guard lock(endpoints_mutex_);
    endpoints_ = std::move(endpoints);
}

std::vector<std::string> server::bind() {
    std::vector<std::string> errors;
    for (const auto& listen : state_->current->cfg.listen) {
        auto l = open_listener(listen, errors);
        if (l.acceptor) listeners_.push_back(std::move(l));
    }
    if (!errors.empty()) listeners_.clear();
    publish_endpoints();
    // Before serving: nobody reads the runtime yet.
    auto rt = std::const_pointer_cast<runtime>(state_->current);
    rt->access.set_own_endpoints(own_endpoints());
    return errors;
}

void server::set_admin_endpoints(std::vector<tcp::endpoint> endpoints) {
    admin_endpoints_ = std::move(endpoints);
    // Before serving: nobody reads the runtime yet.
    auto rt = std::const_pointer_cast<runtime>(state_->current);
    rt->access.set_own_endpoints(own_endpoints());
}

std::vector<tcp::endpoint> server::own_endpoints() const {
    auto out = local_endpoints();
    out.insert(out.end(), admin_endpoints_.begin(), admin_endpoints_.end());
    return out;
}

std::vector<tcp::endpoint> server::local_endpoints() const {
    std::lock_guard lock(endpoints_mutex_);
    return endpoints_;
}

void server::start_accepting(const listener& l) {
    spdlog::info("listening on {}", format_endpoint(l.bound));
    asio::co_spawn(io_, accept_loop(l.acceptor), log_escaped("the accept loop"));
}

void server::run() {
    asio::post(io_, [this] {
        running_ = true;
        if (state_->stopping) return;
        for (const auto& l : listeners_)
            start_accepting(l);
    });
    io_.run();
    state_->current->pool->close_all();
    if (state_->current->requests_log) state_->current->requests_log->flush();
}

server::reload_outcome server::reload(config::config cfg, std::shared_ptr<access_log> requests_log,
                                      std::vector<tcp::endpoint> admin_endpoints) {
    auto done = std::make_shared<std::promise<reload_outcome>>();
    auto result = done->get_future();
    asio::post(io_, [this, done, cfg = std::move(cfg), log = std::move(requests_log),
                     admin = std::move(admin_endpoints)]() mutable {
        try {
            done->set_value(apply(std::move(cfg), std::move(log), std::move(admin)));
        } catch (const std::exception& e) {
            done->set_value(
                {{std::string("the new configuration could not be applied: ") + e.what()}, {}});
        }
    });
    // The server may stop before it gets to the reload: do not wait for it forever.
    while (result.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
        if (state_->stopping || io_.stopped()) return {{"authshim is stopping"}, {}};
    }
    return result.get();
}

server::reload_outcome server::apply(config::config cfg, std::shared_ptr<access_log> requests_log,
                                     std::vector<tcp::endpoint> admin_endpoints) {
    reload_outcome out;
    if (state_->stopping) {
        out.errors.push_back("authshim is stopping");
        return out;
    }
    const auto old = state_->current;

    // Listeners first: the only step that can fail. Addresses kept keep their sockets (and the
    // connections waiting in their backlog).
    std::vector<listener> kept, added;
    for (const auto& listen : cfg.listen) {
        auto it = std::find_if(listeners_.begin(), listeners_.end(),
                               [&](const listener& l) { return l.configured == listen; });
        if (it != listeners_.end()) {
            kept.push_back(*it);
            continue;
        }
        auto l = open_listener(listen, out.errors);
        if (l.acceptor) added.push_back(std::move(l));
    }
    if (!out.errors.empty()) {
        for (auto& l : added) {
            error_code ec;
            l.acceptor->close(ec);
        }
        return out;
    }
    for (auto& l : listeners_) {
        const bool stays = std::any_of(kept.begin(), kept.end(),
                                       [&](const listener& k) { return k.acceptor == l.acceptor; });
        if (stays) continue;
        error_code ec;
        l.acceptor->close(ec);
        out.changes.push_back("stopped listening on " + format_endpoint(l.bound));
    }
    listeners_ = std::move(kept);
    for (auto& l : added) {
        out.changes.push_back("listening on " + format_endpoint(l.bound));
        if (running_) start_accepting(l);
        listeners_.push_back(std::move(l));
    }
    publish_endpoints();

    auto rt = std::make_shared<runtime>(
        runtime{std::move(cfg), access_rules({}), nullptr, nullptr, std::move(requests_log)});
    rt->access = access_rules(rt->cfg.access);
    admin_endpoints_ = std::move(admin_endpoints);
    rt->access.set_own_endpoints(own_endpoints());
    if (same_route(old->cfg, rt->cfg)) {
        rt->pool = old->pool;
    } else {
        rt->pool = std::make_shared<upstream_pool>(io_.get_executor(), rt->cfg.upstreams.at(0),
                                                   rt->cfg.timeouts.connect, state_->stats);
        old->pool->close_all(); // idle connections go; busy ones finish with their exchange
        old->pool->cancel_spare();
        // What the old upstream did says nothing about the new one (/healthz, /status state).
        state_->stats.upstream_last_ok_ms.store(0, std::memory_order_relaxed);
        state_->stats.upstream_last_failure_ms.store(0, std::memory_order_relaxed);
        out.changes.push_back("upstream is now \"" + rt->cfg.upstreams.at(0).name + "\" (" +
                              rt->cfg.upstreams.at(0).address.to_string() +
                              "); pooled connections to the old address closed");
    }
    if (rt->pool == old->pool && same_auth(old->cfg, rt->cfg)) {
        rt->auth = old->auth;
    } else {
        if (old->auth) old->auth->retire();
        rt->auth = make_upstream_auth(rt->cfg, state_->stats);
        if (!rt->auth) {
            state_->stats.auth_scheme.store(-1, std::memory_order_relaxed);
            state_->stats.auth_state.store(0, std::memory_order_relaxed);
            state_->stats.auth_paused_until_ms.store(0, std::memory_order_relaxed);
        }
        out.changes.push_back(
            rt->auth ? "authentication state cleared (credentials, schemes or lockout settings "
                       "changed): a paused credential is tried again"
                     : "the upstream is used without credentials");
    }
    if (old->cfg.access.destinations != rt->cfg.access.destinations) {
        const auto n = rt->cfg.access.destinations.size();
        out.changes.push_back(n == 0 ? std::string("access.destinations removed: every destination "
                                                   "is allowed")
                                     : "access.destinations now has " + std::to_string(n) +
                                           (n == 1 ? " pattern" : " patterns") +
                                           "; requests to other hosts get 403 (open tunnels "
                                           "stay open)");
    }
    if (old->requests_log && old->requests_log != rt->requests_log) old->requests_log->flush();
    state_->current = std::move(rt);
    bump(state_->stats.reloads);
    return out;
}

asio::awaitable<void> server::accept_loop(std::shared_ptr<tcp::acceptor> acceptor) {
    using clock = std::chrono::steady_clock;
    asio::steady_timer backoff(acceptor->get_executor());
    error_code local_ec;
    const auto where = format_endpoint(acceptor->local_endpoint(local_ec));
    // A failure episode (e.g. out of descriptors: EMFILE) logs one line when it begins and one
    // with its count when accepts work again, not one per 100 ms attempt.
    std::uint64_t failures = 0;
    clock::time_point failing_since;
    std::string first_failure;
    for (;;) {
        auto [ec, socket] = co_await acceptor->async_accept(use_tuple);
        if (state_->stopping || ec == asio::error::operation_aborted || !acceptor->is_open())
            co_return;
        if (ec) {
            // Out of descriptors (or a transient accept failure): back off instead of spinning.
            if (failures++ == 0) {
                failing_since = clock::now();
                first_failure = ec.message();
                spdlog::warn("accept failed on {}: {}; pausing accepts, retrying every {} ms "
                             "(one more line when accepts work again)",
                             where, first_failure, accept_backoff.count());
            }
            backoff.expires_after(accept_backoff);
            co_await backoff.async_wait(use_tuple);
            continue;
        }
        if (failures > 0) {
            const auto ms =
                std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - failing_since);
            spdlog::warn("accepting on {} again after {} failed accept attempt(s) over {} ms "
                         "(first: {})",
                         where, failures, ms.count(), first_failure);
            failures = 0;
        }
        bump(state_->stats.connections_accepted);
        const auto max_connections = state_->current->cfg.limits.max_connections;
        if (state_->stats.connections_active.load(std::memory_order_relaxed) >= max_connections) {
            bump(state_->stats.connections_rejected_limit);
            note_busy_rejection(max_connections);
            auto ex = socket.get_executor();
            asio::co_spawn(ex, reject_busy(std::move(socket)), log_escaped("a 503 answer"));
            continue;
        }
        spawn_session(std::move(socket));
    }
}

void server::note_busy_rejection(std::size_t max_connections) {
    if (busy_.episode) {
        ++busy_.unreported;
        return;
    }
    // A flood past the limit must not flood the log: the first 503 of an episode is logged at
    // once, the rest are summed up in one line per busy_summary_interval while they go on.
    busy_.episode = true;
    spdlog::warn("connection limit reached (limits.max_connections = {}): answering 503 to new "
                 "connections (a count follows every {} s while it lasts)",
                 max_connections, busy_summary_interval.count());
    asio::co_spawn(io_, summarize_busy(max_connections), log_escaped("the 503 summary"));
}

asio::awaitable<void> server::summarize_busy(std::size_t max_connections) {
    for (;;) {
        busy_timer_.expires_after(busy_summary_interval);
        co_await busy_timer_.async_wait(use_tuple); // cancelled by request_stop(): last count
        const auto count = std::exchange(busy_.unreported, 0);
        if (count > 0)
            spdlog::warn("connection limit (limits.max_connections = {}): answered 503 to {} more "
                         "connection(s) in the last {} s",
                         max_connections, count, busy_summary_interval.count());
        if (count == 0 || state_->stopping) {
            busy_.episode = false;
            co_return;
        }
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
    asio::post(io_, [this] {
        spdlog::info("stopping: no new connections; in-flight requests get up to {} ms",
                     state_->current->cfg.timeouts.shutdown.count());
        for (auto& l : listeners_) {
            error_code ec;
            l.acceptor->close(ec);
        }
        busy_timer_.cancel();
        for (auto& session : state_->live_sessions())
            session->stop();
        state_->current->pool->close_all();
        state_->current->pool->cancel_spare();
        asio::co_spawn(io_, supervise_shutdown(), log_escaped("the shutdown supervisor"));
    });
}

asio::awaitable<void> server::supervise_shutdown() {
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + state_->current->cfg.timeouts.shutdown;
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
