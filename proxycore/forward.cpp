// client_session: forwarding one request to the upstream proxy, with upstream authentication
// (pre-emptive credentials, 407 answered and the request replayed), retry of a stale pooled
// connection, Expect: 100-continue and the upstream's failures turned into 502/504.

#include "proxycore/client_session.hpp"

#include "config/secret.hpp"
#include "proxycore/errors.hpp"
#include "proxycore/format.hpp"
#include "proxycore/relay.hpp"
#include "proxycore/session_detail.hpp"
#include "proxycore/upstream_auth.hpp"

#include <spdlog/spdlog.h>

#include <optional>

namespace authshim::proxycore {

using namespace session_detail;
using namespace asio::experimental::awaitable_operators;

namespace {

/// At most this many 407s are answered for one request (a challenge, then a stale nonce...).
constexpr int max_auth_rounds = 3;

} // namespace

asio::awaitable<bool> client_session::report_upstream_failure(exchange& x, error_code ec,
                                                              bool connecting, bool keep) {
    const auto& timeouts = rt_->cfg.timeouts;
    const bool timed_out = ec == proxy_errc::connect_timeout || ec == beast::error::timeout;
    if (timed_out) bump(state_->stats.upstream_timeouts);
    // Messages are built in named locals: GCC 12 double-destroys temporaries created inside a
    // co_await expression that has a conditional operator.
    std::string text;
    if (connecting) {
        text = "cannot connect to upstream " + describe_upstream() + ": ";
        text += timed_out ? "no connection within timeouts.connect (" +
                                format_duration(timeouts.connect) + ")"
                          : ec.message();
    } else {
        text = "upstream " + describe_upstream() + " ";
        text += timed_out ? "sent no response headers within timeouts.upstream_response (" +
                                format_duration(timeouts.upstream_response) + ")"
                          : "failed before answering: " + ec.message();
    }
    spdlog::warn("{} {} from {}: {}", x.method, x.host, peer_, text);
    state_->stats.upstream_failed(text);
    const auto status = timed_out ? http::status::gateway_timeout : http::status::bad_gateway;
    co_await send_text(x, status, text, keep);
    co_return keep;
}

asio::awaitable<relay_outcome> client_session::read_body(exchange& x, request_parser& parser,
                                                         std::size_t limit, std::string& out,
                                                         bool& too_large) {
    relay_outcome outcome;
    auto& body = parser.get().body();
    constexpr std::size_t step = 64 * 1024;
    while (!parser.is_done()) {
        if (out.size() > limit) {
            too_large = true;
            co_return outcome;
        }
        const auto old = out.size();
        out.resize(old + step);
        body.data = out.data() + old;
        body.size = step;
        client_.expires_after(rt_->cfg.timeouts.client_header);
        auto [ec, n] = co_await http::async_read(client_, buffer_, parser, use_tuple);
        out.resize(old + (step - body.size));
        if (ec == http::error::need_buffer) ec = {};
        if (ec) {
            outcome.failure = relay_failure::read;
            outcome.ec = ec;
            x.bytes_from_client += out.size(); // what arrived before it failed
            co_return outcome;
        }
    }
    client_.expires_never();
    too_large = out.size() > limit;
    outcome.bytes = out.size();
    x.bytes_from_client += out.size();
    co_return outcome;
}

asio::awaitable<bool> client_session::forward(exchange& x, request_parser& parser, bool has_body) {
    auto& req = parser.get();
    const auto& cfg = rt_->cfg;
    const auto& timeouts = cfg.timeouts;
    const auto method = req.method();
    const bool is_connect = method == http::verb::connect;
    // The exchange's credentials; a reload that replaces them while the request is in flight
    // hands it on to their successor (below, at the 407).
    std::shared_ptr<upstream_auth> auth_owner = rt_->auth;
    upstream_auth* auth = auth_owner.get();
    x.upstream_used = true; // routed there: failures to reach it are the upstream's too
    bool expect_continue = has_body && x.client_version == 11 && req.count(http::field::expect) > 0;
    prepare_upstream_request(req, x.target, x.client_version);
    if (parser.chunked()) req.chunked(true); // re-framed: the client's chunking is hop-by-hop

    // With credentials to answer a 407, a body up to limits.replay_body is read whole first so
    // that it can be sent again; a larger one is streamed, which needs an accepted credential.
    // Without credentials, an idempotent request's body of a known length up to that limit is
    // read whole too, so that the request can go again on a new connection when a pooled one
    // turns out closed (a chunked one of unknown length is streamed and not sent again).
    std::string body_copy;
    bool buffered = false;
    const bool buffer_for_retry =
        is_idempotent(method) && parser.content_length().has_value() && !parser.chunked();
    if ((auth || buffer_for_retry) && has_body &&
        parser.content_length().value_or(0) <= cfg.limits.replay_body) {
        if (expect_continue) {
            co_await send_continue();
            req.erase(http::field::expect);
            expect_continue = false;
        }
        bool too_large = false;
        const auto out =
            co_await read_body(x, parser, cfg.limits.replay_body, body_copy, too_large);
        if (out.failure != relay_failure::none) co_return co_await request_body_failed(x, out);
        if (too_large) {
            const std::string text = "the chunked request body is larger than "
                                     "limits.replay_body (" +
                                     std::to_string(cfg.limits.replay_body) +
                                     " bytes): it could not be sent again after a 407";
            co_await send_text(x, http::status::bad_gateway, text, false);
            co_return false;
        }
        buffered = true;
        req.chunked(false);
        req.content_length(body_copy.size());
    }
    const std::string digest_uri(req.target());
    const bool replayable = !has_body || buffered;
    const bool may_retry_stale = (is_idempotent(method) || is_connect) && replayable;

    connection_ptr conn;
    struct upstream_guard { // keeps force_close() pointed at the live upstream connection
        upstream_connection*& slot;
        ~upstream_guard() { slot = nullptr; }
    } guard{active_upstream_};
    std::optional<response_parser> rp;
    std::optional<auth::digest_state> carried_digest; // from a connection that closed
    bool body_sent = !has_body || buffered;           // the client's body is consumed
    bool continue_sent = false;
    int stale_retries = 0;
    int auth_rounds = 0;
    x.auth = auth_owner;
    // An attempt prepare() opened (credentials sent, verdict pending) is abandoned on every way
    // out that brings no verdict (a client body that fails, say): left open, it would keep every
    // later request waiting for its outcome.
    struct open_attempt {
        upstream_auth* auth = nullptr;
        ~open_attempt() {
            if (auth) auth->on_abandoned(true);
        }
    } attempt;

    for (;;) {
        if (!conn) {
            auto [cec, fresh_conn] = co_await rt_->pool->acquire(stale_retries > 0);
            if (cec) co_return co_await report_upstream_failure(x, cec, true, false);
            conn = std::move(fresh_conn);
            if (carried_digest && !conn->digest) conn->digest = std::move(carried_digest);
            carried_digest.reset();
        }
        active_upstream_ = conn.get();
        const bool reused = conn->exchanges > 0 || conn->was_idle();

        upstream_auth::plan plan;
        if (auth) {
            std::optional<std::string_view> body_view;
            if (buffered || !has_body) body_view = std::string_view(body_copy);
            plan = co_await auth->prepare(*conn, req.method_string(), digest_uri, body_view);
            if (plan.carries_credentials) attempt.auth = auth;
            if (plan.what == upstream_auth::plan::kind::paused) {
                rt_->pool->release(std::move(conn));
                const bool keep = x.client_keep_alive && body_sent;
                co_await send_text(x, http::status::bad_gateway, plan.message, keep);
                co_return keep;
            }
            if (!replayable && !plan.carries_credentials) {
                rt_->pool->release(std::move(conn));
                const std::string text =
                    "the request body is larger than limits.replay_body and the upstream has "
                    "not accepted authshim's credentials yet: it could not be sent again after "
                    "a 407. Retry once a small request has gone through";
                co_await send_text(x, http::status::bad_gateway, text, false);
                co_return false;
            }
            if (plan.header.empty())
                req.erase(http::field::proxy_authorization);
            else
                req.set(http::field::proxy_authorization, plan.header);
            if (plan.carries_credentials)
                x.scheme = plan.header.starts_with("Digest") ? "digest" : "basic";
            config::wipe(plan.header); // the copy in `req` is the one sent
        }

        // Request head, then the body unless the client waits for 100 Continue.
        serialize_head(head_, req);
        error_code wec;
        conn->stream.expires_after(timeouts.upstream_response);
        if (!has_body || buffered) {
            const std::array<asio::const_buffer, 2> pieces{asio::buffer(head_),
                                                           asio::buffer(body_copy)};
            auto [e, n] = co_await asio::async_write(conn->stream, pieces, use_tuple);
            wec = e;
        } else if (expect_continue) {
            auto [e, n] = co_await asio::async_write(conn->stream, asio::buffer(head_), use_tuple);
            wec = e;
            if (!wec) {
                const auto first = co_await (wait_readable(conn->stream.socket()) ||
                                             sleep_for(expect_continue_wait));
                if (first.index() == 1) { // the upstream is silent: let the client send
                    const auto out =
                        co_await send_body_after_continue(x, parser, *conn, continue_sent);
                    if (out.failure != relay_failure::none)
                        co_return co_await request_body_failed(x, out);
                    body_sent = true;
                }
            }
        } else {
            auto out = co_await relay_message(parser, client_, buffer_, timeouts.client_header,
                                              head_, request_framing(parser), conn->stream,
                                              timeouts.upstream_response);
            x.bytes_from_client += out.bytes; // what reached the upstream, also on failure
            if (out.failure == relay_failure::read) co_return co_await request_body_failed(x, out);
            wec = out.ec;
            // After a failed write the rest of the client's body is unread: no keep-alive.
            body_sent = out.failure == relay_failure::none;
        }

        // The serialized head held the credentials: not left in the buffer for the next head.
        if (plan.carries_credentials) config::wipe(head_);

        // Response head; interim 1xx responses are consumed here.
        error_code rec = wec;
        while (!rec) {
            rp.emplace();
            rp->header_limit(static_cast<std::uint32_t>(cfg.limits.max_header_bytes));
            rp->body_limit(boost::none);
            if (method == http::verb::head) rp->skip(true);
            conn->stream.expires_after(timeouts.upstream_response);
            auto [e, n] =
                co_await http::async_read_header(conn->stream, conn->buffer, *rp, use_tuple);
            rec = e;
            if (rec || rp->get().result_int() >= 200) break;
            if (rp->get().result() == http::status::switching_protocols) {
                rec = proxy_errc::bad_upstream_response; // Upgrade is never forwarded
                break;
            }
            if (rp->get().result() == http::status::continue_) {
                if (!body_sent) {
                    const auto out =
                        co_await send_body_after_continue(x, parser, *conn, continue_sent);
                    if (out.failure != relay_failure::none)
                        co_return co_await request_body_failed(x, out);
                    body_sent = true;
                }
                continue;
            }
            if (x.client_version == 11) co_await forward_interim(rp->get());
        }
        conn->stream.expires_never();
        if (!rec) state_->stats.upstream_answered();

        attempt.auth = nullptr; // each way on from here gives its verdict itself
        if (rec) {
            if (auth) auth->on_abandoned(plan.carries_credentials);
            if (reused && may_retry_stale && stale_retries == 0 && is_stale_connection_error(rec)) {
                bump(state_->stats.upstream_retries);
                spdlog::debug("pooled connection to upstream {} was closed ({}); retrying {} {} "
                              "on a new connection",
                              describe_upstream(), rec.message(), x.method, x.host);
                ++stale_retries;
                carried_digest = std::move(conn->digest);
                conn.reset();
                continue;
            }
            co_return co_await report_upstream_failure(x, rec, false,
                                                       x.client_keep_alive && body_sent);
        }

        auto& res = rp->get();
        if (res.result() != http::status::proxy_authentication_required) {
            if (auth) auth->on_answer(*conn, res, plan.carries_credentials);
            break;
        }

        // 407: take in the challenge, drain the body so the connection stays usable, and send
        // the request again when that can help. The client never sees the 407 itself.
        bump(state_->stats.upstream_407);
        ++x.challenges;
        upstream_auth::verdict verdict;
        // Credentials that a reload replaced while this request was on its way (a rotated
        // password the upstream may refuse by now) are no verdict on anything in force: the
        // request goes again under the credentials now configured for the same upstream.
        std::shared_ptr<upstream_auth> successor;
        if (auth && plan.carries_credentials && auth->retired()) {
            const auto& now = state_->current;
            if (now->auth && now->auth != auth_owner && now->pool == rt_->pool)
                successor = now->auth;
        }
        if (successor) {
            auth->on_abandoned(true);
            verdict = {upstream_auth::verdict::kind::retry,
                       "refused the credentials this request carried, which a reload replaced "
                       "while it was on its way, and its body could not be sent again"};
        } else if (auth)
            verdict = auth->on_407(*conn, res, plan.carries_credentials);
        else
            verdict.message = "it demands proxy authentication (407) and no credentials are "
                              "configured for it";
        const bool upstream_keep = res.keep_alive();
        const auto drain_ec =
            co_await discard_body(*rp, conn->stream, conn->buffer, timeouts.upstream_response);
        // After a 407 to a request with a body, the upstream may not have read that body
        // (Squid stops reading past 64 KB yet keeps the connection open): never reuse it.
        const bool reusable = !drain_ec && upstream_keep && body_sent && !has_body;
        if (verdict.what == upstream_auth::verdict::kind::retry && replayable &&
            ++auth_rounds <= max_auth_rounds) {
            if (successor) {
                spdlog::debug("{} {} from {}: sent again with the credentials a reload put in "
                              "force",
                              x.method, x.host, peer_);
                auth_owner = std::move(successor);
                auth = auth_owner.get();
                x.auth = auth_owner;
            }
            if (!reusable) { // a closed connection's nonce can move to the next one
                carried_digest = std::move(conn->digest);
                conn.reset();
            } else {
                ++conn->exchanges;
            }
            continue;
        }
        if (reusable) {
            ++conn->exchanges;
            rt_->pool->release(std::move(conn));
        }
        if (!auth)
            spdlog::error("upstream {} {}", describe_upstream(), verdict.message);
        else if (verdict.what != upstream_auth::verdict::kind::rejected)
            spdlog::warn("upstream {}: {}", describe_upstream(), verdict.message);
        const bool keep = x.client_keep_alive && body_sent;
        const std::string text = "upstream " + describe_upstream() + ": " + verdict.message;
        co_await send_text(x, http::status::bad_gateway, text, keep);
        co_return keep;
    }

    auto& res = rp->get();
    if (is_connect && res.result_int() / 100 == 2)
        co_return co_await tunnel(x, std::move(conn), res);
    co_return co_await relay_response(x, std::move(conn), *rp, body_sent);
}

} // namespace authshim::proxycore
