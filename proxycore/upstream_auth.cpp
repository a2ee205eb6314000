#include "proxycore/upstream_auth.hpp"

#include "proxycore/events.hpp"

#include "auth/basic.hpp"
#include "auth/challenge.hpp"
#include "auth/errors.hpp"
#include "auth/scheme_choice.hpp"
#include "proxycore/format.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <random>

namespace authshim::proxycore {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using clock = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

auth::lockout_guard::random_source make_random() {
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    // Called only under upstream_auth's mutex.
    return [engine] { return std::uniform_real_distribution<double>(0.0, 1.0)(*engine); };
}

} // namespace

struct upstream_auth::waiter {
    asio::any_io_executor executor;
    std::shared_ptr<asio::steady_timer> timer;
};

upstream_auth::upstream_auth(settings s, counters& stats)
    : settings_(std::move(s)), stats_(stats),
      basic_header_(auth::basic_authorization(settings_.username, settings_.password.expose())),
      guard_(settings_.max_rejections, settings_.retry_after, make_random()) {
    std::lock_guard lock(mutex_);
    publish();
}

void upstream_auth::retire() {
    std::lock_guard lock(mutex_);
    retired_ = true;
}

bool upstream_auth::retired() const {
    std::lock_guard lock(mutex_);
    return retired_;
}

void upstream_auth::publish() {
    if (retired_) return;
    stats_.auth_scheme.store(scheme_ ? static_cast<int>(*scheme_) : -1, std::memory_order_relaxed);
    const auto state = guard_.current();
    stats_.auth_state.store(static_cast<int>(state), std::memory_order_relaxed);
    std::int64_t until_ms = 0;
    if (const auto until = guard_.paused_until();
        until && state == auth::lockout_guard::state::paused)
        until_ms =
            unix_ms_now() +
            std::chrono::duration_cast<std::chrono::milliseconds>(*until - clock::now()).count();
    stats_.auth_paused_until_ms.store(until_ms, std::memory_order_relaxed);
}

std::string upstream_auth::paused_message() const {
    std::string text = "the upstream rejected the credentials \"" + settings_.credential_name +
                       "\" (user " + settings_.username +
                       "); authshim stopped sending them so the account does not get locked "
                       "out. Correct the password in the configuration and reload authshim "
                       "(authshim reload, SIGHUP, or a restart)";
    if (const auto until = guard_.paused_until()) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(*until - clock::now());
        text += " (or wait: lockout.retry_after tries once more in " +
                format_duration(std::max(left, std::chrono::milliseconds(0))) + ")";
    }
    return text;
}

void upstream_auth::wake_waiters() {
    for (auto& w : waiters_)
        asio::post(w->executor, [timer = w->timer] { timer->cancel(); });
    waiters_.clear();
}

asio::awaitable<upstream_auth::plan> upstream_auth::prepare(upstream_connection& connection,
                                                            std::string_view method,
                                                            std::string_view digest_uri,
                                                            std::optional<std::string_view> body) {
    for (;;) {
        std::shared_ptr<waiter> w;
        auth::scheme scheme = auth::scheme::basic;
        {
            std::lock_guard lock(mutex_);
            // A connection without a nonce of its own takes over one that another connection
            // gave up (its last use has been answered, so nc stays in order at the upstream).
            if (scheme_ == auth::scheme::digest && !connection.digest && !spare_nonces_.empty()) {
                connection.digest = std::move(spare_nonces_.back());
                spare_nonces_.pop_back();
            }
            // First contact, or a Digest upstream and a connection without a nonce: send
            // nothing; the 407 brings the challenge. That is not a credential check.
            if (!scheme_ || (*scheme_ == auth::scheme::digest && !connection.digest))
                co_return plan{};
            scheme = *scheme_;
            const auto attempt = guard_.begin_attempt(clock::now());
            publish(); // a timed retry may have ended the pause
            switch (attempt) {
            case auth::lockout_guard::verdict::paused:
                bump(stats_.auth_paused_refusals);
                co_return plan{plan::kind::paused, {}, false, paused_message()};
            case auth::lockout_guard::verdict::go:
                break;
            case auth::lockout_guard::verdict::wait:
                w = std::make_shared<waiter>();
                w->executor = co_await asio::this_coro::executor;
                w->timer = std::make_shared<asio::steady_timer>(w->executor);
                w->timer->expires_after(settings_.wait_limit);
                waiters_.push_back(w);
                break;
            }
        }
        if (w) {
            // Another request is trying the unverified credential: wait for its outcome.
            co_await w->timer->async_wait(use_tuple);
            continue;
        }
        // The answer is computed outside the lock: the Digest state belongs to this connection.
        plan p;
        p.carries_credentials = true;
        if (scheme == auth::scheme::basic) {
            p.header = std::string(basic_header_.expose());
            co_return p;
        }
        const auto ec = connection.digest->authorize(method, digest_uri, settings_.username,
                                                     settings_.password.expose(), body, p.header);
        if (!ec) co_return p;
        on_abandoned(true);
        co_return plan{plan::kind::paused,
                       {},
                       false,
                       "cannot answer the upstream's Digest challenge: " + ec.message()};
    }
}

upstream_auth::verdict upstream_auth::on_407(upstream_connection& connection,
                                             const http::fields& head, bool sent) {
    std::vector<std::string_view> values;
    for (const auto& f : head)
        if (f.name() == http::field::proxy_authenticate) values.push_back(f.value());
    std::vector<auth::challenge> challenges;
    std::string detail;
    const auto parse_error = auth::parse_challenges(values, challenges, detail);

    std::lock_guard lock(mutex_);
    auto fail = [&](std::string message) {
        if (sent) {
            guard_.on_abandoned();
            wake_waiters();
        }
        bump(stats_.auth_failures);
        stats_.note_error(message);
        return verdict{verdict::kind::failed, std::move(message)};
    };
    if (parse_error)
        return fail("the upstream's Proxy-Authenticate could not be parsed (" + detail + ")");
    const auto choice = auth::choose_scheme(challenges, settings_.schemes, digest_offered_before_);
    digest_offered_before_ = digest_offered_before_ || choice.usable_digest_offered;

    if (sent) {
        // A stale nonce is not a verdict on the password: take the new nonce and answer again.
        if (!choice.error && choice.chosen == auth::scheme::digest && choice.digest->stale &&
            connection.digest) {
            connection.digest->reset(*choice.digest);
            guard_.on_abandoned();
            wake_waiters();
            bump(stats_.auth_stale_nonces);
            bump(stats_.auth_challenges_answered);
            return {verdict::kind::retry, "stale nonce"};
        }
        // Counted like any rejection (otherwise the next request would send the refused answer
        // again), but a switch to Basic-only is named for what it is.
        const bool downgrade =
            choice.error == auth::make_error_code(auth::auth_errc::downgrade_refused);
        if (downgrade)
            spdlog::warn("upstream refused the Digest answer and now offers only Basic: not "
                         "answered (downgrade protection): {}",
                         choice.message);
        const bool paused_now = guard_.on_rejected(clock::now());
        wake_waiters();
        bump(stats_.auth_rejections);
        publish();
        stats_.note_error("the upstream rejected the credentials \"" + settings_.credential_name +
                          "\" (user " + settings_.username + ")");
        if (downgrade) {
            if (paused_now)
                log_event(event_id::credentials_paused, spdlog::level::err, "{}", paused_message());
            std::string text = "the upstream refused the Digest answer and now offers only "
                               "Basic, which authshim does not send after Digest was offered "
                               "(downgrade protection; set schemes to [\"basic\"] if Basic is "
                               "intended)";
            if (guard_.current() == auth::lockout_guard::state::paused)
                text += ". " + paused_message();
            return {verdict::kind::rejected, std::move(text)};
        }
        if (paused_now) {
            log_event(event_id::credentials_paused, spdlog::level::err, "{}", paused_message());
            return {verdict::kind::rejected, paused_message()};
        }
        if (guard_.current() == auth::lockout_guard::state::paused)
            return {verdict::kind::rejected, paused_message()};
        std::string text = "the upstream rejected the credentials \"" + settings_.credential_name +
                           "\" (user " + settings_.username + "; rejection " +
                           std::to_string(guard_.rejections()) + " of at most " +
                           std::to_string(settings_.max_rejections) + " before they are paused)";
        log_event(event_id::credentials_rejected, spdlog::level::warn, "{}", text);
        return {verdict::kind::rejected, std::move(text)};
    }
    if (choice.error) {
        if (choice.error == auth::make_error_code(auth::auth_errc::downgrade_refused))
            spdlog::warn("upstream offered only Basic after having offered Digest: not "
                         "answered (downgrade protection): {}",
                         choice.message);
        return fail("no usable authentication scheme: " + choice.message);
    }
    if (!scheme_ || *scheme_ != choice.chosen)
        spdlog::info("upstream asks for {} authentication; answering with credentials \"{}\"",
                     auth::scheme_name(choice.chosen), settings_.credential_name);
    scheme_ = choice.chosen;
    bump(stats_.auth_challenges_answered);
    publish();
    if (choice.chosen == auth::scheme::digest) {
        if (connection.digest)
            connection.digest->reset(*choice.digest);
        else
            connection.digest.emplace(*choice.digest);
    } else {
        connection.digest.reset();
    }
    return {verdict::kind::retry, "challenge"};
}

void upstream_auth::on_answer(upstream_connection& connection, const http::fields& head,
                              bool sent) {
    if (sent) {
        std::lock_guard lock(mutex_);
        if (guard_.current() != auth::lockout_guard::state::verified)
            spdlog::info("upstream accepted the credentials \"{}\"", settings_.credential_name);
        guard_.on_accepted();
        wake_waiters();
        publish();
    }
    if (!connection.digest) return;
    const auto info = head.find(http::field::proxy_authentication_info);
    if (info != head.end()) {
        if (const auto ec = connection.digest->on_authentication_info(info->value()))
            spdlog::warn("ignored a malformed Proxy-Authentication-Info: {}", ec.message());
    }
}

void upstream_auth::release_nonce(upstream_connection& connection) {
    if (!connection.digest) return;
    std::lock_guard lock(mutex_);
    if (spare_nonces_.size() < max_spare_nonces)
        spare_nonces_.push_back(std::move(*connection.digest));
    connection.digest.reset();
}

void upstream_auth::on_abandoned(bool sent) {
    if (!sent) return;
    std::lock_guard lock(mutex_);
    guard_.on_abandoned();
    wake_waiters();
}

} // namespace authshim::proxycore
