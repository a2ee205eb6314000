#include "auth/lockout.hpp"

#include <algorithm>

namespace authshim::auth {

lockout_guard::lockout_guard(unsigned max_rejections,
                             std::optional<std::chrono::milliseconds> retry_after,
                             random_source random)
    : max_rejections_(std::max(1u, max_rejections)), retry_after_(retry_after),
      random_(std::move(random)) {}

lockout_guard::verdict lockout_guard::begin_attempt(clock::time_point now) {
    if (state_ == state::paused) {
        if (!paused_until_ || now < *paused_until_) return verdict::paused;
        // The timed pause is over: allow one probe, single-flight like any unverified credential.
        state_ = state::unverified;
        paused_until_.reset();
    }
    if (state_ == state::verified) return verdict::go;
    if (in_flight_) return verdict::wait;
    in_flight_ = true;
    return verdict::go;
}

void lockout_guard::on_accepted() {
    state_ = state::verified;
    rejections_ = 0;
    in_flight_ = false;
    paused_until_.reset();
}

bool lockout_guard::on_rejected(clock::time_point now) {
    in_flight_ = false;
    if (state_ == state::paused) return false; // answers to requests sent before the pause
    ++rejections_;
    if (rejections_ < max_rejections_) {
        state_ = state::unverified;
        return false;
    }
    state_ = state::paused;
    if (retry_after_) {
        const double fraction = random_ ? std::clamp(random_(), 0.0, 0.999) : 0.0;
        const auto jitter = std::chrono::milliseconds(static_cast<std::int64_t>(
            static_cast<double>(retry_after_->count()) * 0.25 * fraction));
        paused_until_ = now + *retry_after_ + jitter;
    } else {
        paused_until_.reset();
    }
    return true;
}

void lockout_guard::on_abandoned() {
    in_flight_ = false;
}

} // namespace authshim::auth
