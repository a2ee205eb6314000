#include "proxycore/client_session.hpp"

#include "proxycore/session_detail.hpp"

#include "proxycore/access_log.hpp"
#include "proxycore/errors.hpp"
#include "proxycore/format.hpp"
#include "proxycore/relay.hpp"
#include "proxycore/tunnel.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <optional>

namespace authshim::proxycore {

using namespace session_detail;
using namespace asio::experimental::awaitable_operators;

namespace {

/// What a spare connection's coroutine keeps alive, released in this order: the pool first
/// (its connections count in the state's gauges), then the state.
struct spare_owners {
    std::shared_ptr<server_state> state;
    std::shared_ptr<upstream_pool> pool;
};

} // namespace

client_session::client_session(tcp::socket socket, std::shared_ptr<server_state> state)
    : client_(std::move(socket)), state_(std::move(state)) {}

void client_session::stop() {
    if (idle_) client_.cancel();
}

void client_session::force_close() {
    error_code ec;
    client_.cancel();
    client_.socket().close(ec);
    if (active_upstream_) {
        active_upstream_->stream.close();
    }
}

void client_session::abort_client() {
    error_code ec;
    client_.cancel();
    client_.socket().set_option(asio::socket_base::linger(true, 0), ec);
    client_.socket().close(ec);
}

std::string client_session::describe_upstream() const {
    const auto& up = rt_->pool->upstream();
    return "\"" + up.name + "\" (" + up.address.to_string() + ")";
}

void client_session::log_access(const exchange& x) const {
    const auto now = clock::now();
    const auto duration = std::chrono::duration_cast<std::chrono::microseconds>(
        x.established.value_or(now) - x.start);
    auto& stats = state_->stats;
    // Metrics count what the client got: an exchange whose body broke off, or whose client went
    // away (499, the access log's word for it), had no complete response.
    stats.count_response(x.body_broken || x.status == 499 ? 0 : x.status, duration);
    bump(stats.bytes_to_client, x.bytes_to_client);
    bump(stats.bytes_from_client, x.bytes_from_client);
    if (const auto& log = rt_->requests_log) {
        access_record r;
        r.time = std::chrono::system_clock::now() -
                 std::chrono::duration_cast<std::chrono::system_clock::duration>(now - x.start);
        r.client = peer_;
        r.method = x.method;
        r.host = x.host;
        r.target = x.request_target;
        r.status = x.status;
        r.bytes_in = x.bytes_from_client;
        r.bytes_out = x.bytes_to_client;
        r.duration = std::chrono::duration_cast<std::chrono::microseconds>(now - x.start);
        if (x.upstream_used) r.upstream = rt_->cfg.upstreams.at(0).name;
        if (x.scheme) r.scheme = x.scheme;
        r.challenges = x.challenges;
        r.error = x.error;
        log->write(r);
    }
    // One line per request at debug only: log.access (JSON lines) is the access log; at info
    // the log holds what an operator acts on, and a flushed line per request costs a write.
    if (!spdlog::should_log(spdlog::level::debug)) return;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - x.start).count();
    spdlog::debug("access client={} method={} host={} status={} bytes={} ms={}", peer_, x.method,
                  x.host, x.status, x.bytes_to_client, ms);
}

asio::awaitable<void> client_session::send_text(exchange& x, http::status status,
                                                std::string_view text, bool keep_alive) {
    auto res = make_text_response(status, text, x.client_version, keep_alive);
    x.status = static_cast<unsigned>(status);
    x.bytes_to_client += res.body().size();
    if (x.status >= 400) x.error = text;
    client_.expires_after(rt_->cfg.timeouts.client_header);
    co_await http::async_write(client_, res, use_tuple);
    client_.expires_never();
}

asio::awaitable<void> client_session::close_gracefully() {
    error_code ec;
    client_.socket().shutdown(tcp::socket::shutdown_send, ec);
    // Drain what the client still sends for a moment, so that closing with unread bytes does
    // not reset the connection and destroy the response just sent.
    char sink[4096];
    client_.expires_after(std::chrono::seconds(1));
    for (int i = 0; i < 256 && !ec; ++i) {
        auto [rec, n] = co_await client_.async_read_some(asio::buffer(sink), use_tuple);
        ec = rec;
    }
    client_.socket().close(ec);
}

asio::awaitable<void> client_session::run() {
    auto self = shared_from_this();
    rt_ = state_->current;
    error_code ec;
    const auto remote = client_.socket().remote_endpoint(ec);
    if (ec) co_return;
    peer_ = format_endpoint(remote);
    client_.socket().set_option(tcp::no_delay(true), ec);

    if (!rt_->access.client_allowed(remote.address())) {
        bump(state_->stats.denied_client);
        spdlog::warn("denied client {}: its address is not in access.clients", peer_);
        exchange x;
        co_await send_text(x, http::status::forbidden,
                           "this client address is not allowed by access.clients", false);
        log_access(x);
        co_await close_gracefully();
        co_return;
    }

    for (;;) {
        // A reload applies from the next request on: the runtime in force when its head has
        // arrived (the wait for it, up to timeouts.client_header, may span a reload).
        if (rt_ != state_->current) rt_ = state_->current;
        request_parser parser;
        parser.header_limit(static_cast<std::uint32_t>(rt_->cfg.limits.max_header_bytes));
        parser.body_limit(boost::none);
        idle_ = true;
        if (state_->stopping) break;
        client_.expires_never(); // no deadline left over from the last exchange: ours instead
        arm_head_deadline(rt_->cfg.timeouts.client_header);
        auto [rec, n] = co_await http::async_read_header(client_, buffer_, parser, use_tuple);
        idle_ = false;
        head_deadline_.cancel();
        if (rec == asio::error::operation_aborted && head_timed_out_) rec = beast::error::timeout;
        if (rec) {
            co_await reject_unreadable(rec);
            break;
        }
        if (rt_ != state_->current) rt_ = state_->current;
        exchange x;
        const bool keep_alive = co_await serve_one(x, parser);
        log_access(x);
        if (!keep_alive) break;
    }
    co_await close_gracefully();
}

void client_session::arm_head_deadline(std::chrono::milliseconds d) {
    head_timed_out_ = false;
    head_deadline_.expires_after(d);
    head_deadline_.async_wait(
        [weak = weak_from_this(), generation = ++head_generation_](const error_code& ec) {
            const auto self = weak.lock();
            if (ec || !self || !self->idle_ || self->head_generation_ != generation) return;
            // Cancel, not close: the socket stays open for the 408 (reject_unreadable).
            self->head_timed_out_ = true;
            self->client_.cancel();
        });
}

asio::awaitable<void> client_session::reject_unreadable(const error_code& ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset)
        co_return;
    exchange x;
    http::status status = http::status::bad_request;
    std::string reason;
    if (ec == beast::error::timeout) {
        if (buffer_.size() == 0) co_return; // an idle keep-alive connection: close quietly
        status = http::status::request_timeout;
        reason = "the request head did not arrive within timeouts.client_header (" +
                 format_duration(rt_->cfg.timeouts.client_header) + ")";
    } else if (ec == http::error::header_limit) {
        const auto data = beast::buffers_to_string(buffer_.data());
        if (data.find('\n') == std::string::npos) {
            status = http::status::uri_too_long;
            reason = "the request line is longer than limits.max_header_bytes";
        } else {
            status = http::status::request_header_fields_too_large;
            reason = "the request head is larger than limits.max_header_bytes";
        }
    } else {
        reason = "malformed request: " + ec.message();
    }
    bump(state_->stats.bad_requests);
    spdlog::info("rejected request from {}: {} ({})", peer_, static_cast<unsigned>(status), reason);
    co_await send_text(x, status, reason, false);
    log_access(x);
}

asio::awaitable<bool> client_session::serve_one(exchange& x, request_parser& parser) {
    auto& req = parser.get();
    bump(state_->stats.requests);
    x.method = std::string(req.method_string());
    if (rt_->requests_log) x.request_target = std::string(req.target());
    x.client_version = req.version();
    x.client_keep_alive = req.keep_alive();

    const auto v = validate_request(req, x.target);
    if (!v.ok()) {
        bump(state_->stats.bad_requests);
        spdlog::info("rejected request from {}: {} ({})", peer_, static_cast<unsigned>(v.status),
                     v.reason);
        co_await send_text(x, v.status, v.reason, false);
        co_return false;
    }
    x.host = x.target.authority;
    const bool has_body = parser.chunked() || parser.content_length().value_or(0) > 0;
    // A refused request's body is not read, so the connection can only stay open without one.
    const bool keep_after_refusal = x.client_keep_alive && !has_body;

    if (via_has_authshim(req) || rt_->access.targets_self(x.target.host, x.target.port)) {
        bump(state_->stats.denied_loop);
        spdlog::warn("refused {} {} from {}: it would loop back into authshim", x.method, x.host,
                     peer_);
        co_await send_text(x, http::status::loop_detected,
                           "refused: the request is aimed at authshim itself", keep_after_refusal);
        co_return keep_after_refusal;
    }
    if (req.method() == http::verb::connect && !rt_->access.connect_port_allowed(x.target.port)) {
        bump(state_->stats.denied_port);
        spdlog::warn("refused CONNECT {} from {}: port {} is not in access.connect_ports", x.host,
                     peer_, x.target.port);
        const std::string text = "CONNECT to port " + std::to_string(x.target.port) +
                                 " is not allowed by access.connect_ports";
        co_await send_text(x, http::status::forbidden, text, keep_after_refusal);
        co_return keep_after_refusal;
    }
    if (!rt_->access.destination_allowed(x.target.host)) {
        bump(state_->stats.denied_destination);
        // info, not warn: with an allow-list in place, refusals are its everyday work (the
        // access log and the counters have each one).
        spdlog::info("refused {} {} from {}: the host is not in access.destinations", x.method,
                     x.host, peer_);
        co_await send_text(x, http::status::forbidden,
                           "the destination " + x.target.host + " is not in access.destinations",
                           keep_after_refusal);
        co_return keep_after_refusal;
    }
    co_return co_await forward(x, parser, has_body);
}

asio::awaitable<bool> client_session::relay_response(exchange& x, connection_ptr conn,
                                                     response_parser& rp, bool body_sent) {
    auto& res = rp.get();
    const auto& timeouts = rt_->cfg.timeouts;
    const bool upstream_keep = res.keep_alive();
    x.status = res.result_int();
    prepare_client_response(res, res.version());
    res.version(x.client_version);
    // Without the client's whole body read, the client connection cannot carry another request.
    bool keep = x.client_keep_alive && body_sent && !state_->stopping;
    const bool body_follows = !rp.is_done();
    auto framing = body_framing::raw;
    if (body_follows && !rp.content_length()) {
        // Chunked or EOF-delimited upstream body: re-chunk for HTTP/1.1, close for HTTP/1.0.
        if (x.client_version == 11) {
            res.chunked(true);
            framing = body_framing::chunked;
        } else {
            keep = false;
        }
    }
    res.keep_alive(keep);

    serialize_head(head_, res);
    // The client learns where the body ends from the connection's close (HTTP/1.0, no length).
    const bool delimited_by_close = body_follows && !res.has_content_length() && !res.chunked();
    auto out = co_await relay_message(rp, conn->stream, conn->buffer, timeouts.upstream_response,
                                      head_, framing, client_, timeouts.client_header);
    x.bytes_to_client += out.bytes;
    if (out.failure != relay_failure::none) {
        // Part of the response has reached the client already: the only honest signal left is
        // to close the connection, so the client cannot take a truncated body for a whole one:
        // a Content-Length or chunked body is then visibly short; one delimited by the close
        // would look complete after a plain close, so that connection is reset instead.
        x.body_broken = true;
        x.error = "the response body broke off on the " +
                  std::string(out.failure == relay_failure::read ? "upstream" : "client") +
                  " side after " + std::to_string(out.bytes) + " bytes: " + out.ec.message();
        spdlog::warn("{} {} from {}: {}", x.method, x.host, peer_, x.error);
        if (delimited_by_close && out.failure == relay_failure::read) abort_client();
        co_return false;
    }
    if (upstream_keep && body_sent && out.complete) {
        ++conn->exchanges;
        rt_->pool->release(std::move(conn));
    } else if (x.auth) {
        // The upstream closes this connection (e.g. Apache after 100 requests): its Digest
        // nonce, whose last use has been answered, serves the next connection.
        x.auth->release_nonce(*conn);
    }
    co_return keep;
}

asio::awaitable<bool> client_session::request_body_failed(exchange& x, const relay_outcome& out) {
    // The request body failed: the client has no response yet, so it gets one if it can.
    http::status status = http::status::bad_gateway;
    std::string text;
    if (out.failure == relay_failure::write) {
        text = "upstream " + describe_upstream() +
               " failed while receiving the request body: " + out.ec.message();
    } else if (out.ec == beast::error::timeout) {
        status = http::status::request_timeout;
        text = "the request body stalled for timeouts.client_header (" +
               format_duration(rt_->cfg.timeouts.client_header) + ")";
    } else if (out.ec != http::error::partial_message &&
               out.ec.category() == make_error_code(http::error::bad_chunk).category()) {
        // (partial_message: the client closed before its body was complete, below.)
        bump(state_->stats.bad_requests);
        status = http::status::bad_request;
        text = "malformed request body: " + out.ec.message();
    } else {
        spdlog::info("{} {} from {}: the client went away during its request body: {}", x.method,
                     x.host, peer_, out.ec.message());
        x.status = 499; // nginx's "client closed request", for the access log only
        co_return false;
    }
    spdlog::warn("{} {} from {}: {}", x.method, x.host, peer_, text);
    co_await send_text(x, status, text, false);
    co_return false;
}

asio::awaitable<relay_outcome> client_session::send_body_after_continue(exchange& x,
                                                                        request_parser& parser,
                                                                        upstream_connection& conn,
                                                                        bool& continue_sent) {
    if (!continue_sent) co_await send_continue();
    continue_sent = true;
    const auto& timeouts = rt_->cfg.timeouts;
    auto out =
        co_await relay_message(parser, client_, buffer_, timeouts.client_header, {},
                               request_framing(parser), conn.stream, timeouts.upstream_response);
    x.bytes_from_client += out.bytes;
    co_return out;
}

asio::awaitable<void> client_session::send_continue() {
    http::response<http::empty_body> interim{http::status::continue_, 11};
    client_.expires_after(rt_->cfg.timeouts.client_header);
    co_await http::async_write(client_, interim, use_tuple);
}

asio::awaitable<void> client_session::forward_interim(http::response_header<>& head) {
    http::response<http::empty_body> interim{std::move(head)};
    prepare_client_response(interim, interim.version());
    interim.version(11);
    client_.expires_after(rt_->cfg.timeouts.client_header);
    co_await http::async_write(client_, interim, use_tuple);
}

asio::awaitable<bool> client_session::tunnel(exchange& x, connection_ptr conn,
                                             http::response_header<>& head) {
    const auto& timeouts = rt_->cfg.timeouts;
    bump(state_->stats.tunnels);
    if (x.auth) x.auth->release_nonce(*conn);
    if (!state_->stopping && rt_->pool->claim_spare()) {
        // The next CONNECT finds a connection ready. The state stays alive while the spare
        // connects; request_stop() cancels it.
        asio::co_spawn(
            client_.get_executor(),
            [keep = spare_owners{state_, rt_->pool}]() -> asio::awaitable<void> {
                co_await keep.pool->open_spare();
            },
            [](std::exception_ptr e) {
                if (e) spdlog::error("opening a spare upstream connection failed unexpectedly");
            });
    }
    x.status = head.result_int();
    http::response<http::empty_body> established{std::move(head)};
    prepare_client_response(established, established.version());
    // A 2xx answer to CONNECT has no body: its framing fields mean nothing (RFC 9110 §9.3.6).
    established.erase(http::field::content_length);
    established.version(11);
    client_.expires_after(timeouts.client_header);
    auto [wec, wn] = co_await http::async_write(client_, established, use_tuple);
    if (wec) co_return false;

    // Bytes that arrived behind the heads belong to the tunnel already.
    if (conn->buffer.size() > 0) {
        auto [e, n] = co_await asio::async_write(client_.socket(), conn->buffer.data(), use_tuple);
        if (e) co_return false;
        x.bytes_to_client += n;
        conn->buffer.consume(n);
    }
    if (buffer_.size() > 0) {
        auto [e, n] = co_await asio::async_write(conn->stream, buffer_.data(), use_tuple);
        if (e) co_return false;
        x.bytes_from_client += n;
        buffer_.consume(n);
    }
    client_.expires_never();
    conn->stream.expires_never();
    x.established = clock::now();
    bump(state_->stats.tunnels_active);
    spdlog::debug("tunnel {} <-> {} open", peer_, x.host);
    const auto result = co_await splice(client_.socket(), conn->stream, timeouts.tunnel_idle);
    x.bytes_to_client += result.bytes_to_client;
    x.bytes_from_client += result.bytes_to_upstream;
    drop(state_->stats.tunnels_active);
    if (result.idle_timeout)
        spdlog::info("tunnel {} <-> {} closed after timeouts.tunnel_idle ({}) without traffic",
                     peer_, x.host, format_duration(timeouts.tunnel_idle));
    conn->stream.close();
    if (result.upstream_failed) {
        // The upstream reset the tunnel (or stopped taking bytes): the client hears of it at
        // once, as a reset too, instead of waiting for timeouts.tunnel_idle.
        x.error = "the upstream broke the tunnel off";
        spdlog::info("tunnel {} <-> {}: the upstream broke it off", peer_, x.host);
        abort_client();
    }
    co_return false;
}

} // namespace authshim::proxycore
