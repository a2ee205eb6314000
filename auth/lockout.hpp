#pragma once
/// The lockout guard for one credential at one upstream: single-flight while the credential is
/// unverified (one request carries it at a time; the others wait for the outcome), a pause
/// after `max_rejections` rejections so a wrong password cannot lock the account, and an
/// optional timed retry with jitter. Pure: the caller passes the time and a random source.
/// Thread safety: none; the owner serialises calls (proxycore holds it under a mutex).

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

namespace authshim::auth {

class lockout_guard {
public:
    using clock = std::chrono::steady_clock;
    /// Returns a number in [0, 1): the jitter fraction of a timed retry.
    using random_source = std::function<double()>;

    enum class state { unverified, verified, paused };
    enum class verdict {
        go,     ///< send the credential
        wait,   ///< another attempt with this unverified credential is in flight: wait for it
        paused, ///< the credential is paused: do not send it
    };

    /// `retry_after`: none = paused until the credential changes (a new guard). A timed retry
    /// waits `retry_after` plus up to 25 % jitter.
    lockout_guard(unsigned max_rejections, std::optional<std::chrono::milliseconds> retry_after,
                  random_source random);

    /// Asks to send the credential now. `go` on an unverified credential marks an attempt in
    /// flight: the caller must report its outcome with exactly one of the on_* calls.
    verdict begin_attempt(clock::time_point now);

    /// The upstream accepted the credential.
    void on_accepted();
    /// The upstream rejected it. Returns true when this rejection paused the credential (log
    /// it once).
    bool on_rejected(clock::time_point now);
    /// The attempt ended without an answer about the credential (network error, timeout).
    void on_abandoned();

    state current() const noexcept { return state_; }
    unsigned rejections() const noexcept { return rejections_; }
    /// When a paused credential may be tried again; empty while paused for good or not paused.
    std::optional<clock::time_point> paused_until() const noexcept { return paused_until_; }

private:
    unsigned max_rejections_;
    std::optional<std::chrono::milliseconds> retry_after_;
    random_source random_;
    state state_ = state::unverified;
    unsigned rejections_ = 0;
    bool in_flight_ = false;
    std::optional<clock::time_point> paused_until_;
};

} // namespace authshim::auth
