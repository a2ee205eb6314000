#include "auth/lockout.hpp"

#include <catch2/catch.hpp>

using authshim::auth::lockout_guard;
using namespace std::chrono_literals;
using verdict = lockout_guard::verdict;
using state = lockout_guard::state;

namespace {
const auto t0 = lockout_guard::clock::time_point{} + 1h;
lockout_guard::random_source fixed(double v) {
    return [v] { return v; };
}
} // namespace

TEST_CASE("lockout: an unverified credential is single-flight") {
    lockout_guard g(1, std::nullopt, fixed(0));
    CHECK(g.begin_attempt(t0) == verdict::go);
    CHECK(g.begin_attempt(t0) == verdict::wait);
    CHECK(g.begin_attempt(t0) == verdict::wait);
    g.on_accepted();
    CHECK(g.current() == state::verified);
    // Verified: every request may carry it at once.
    CHECK(g.begin_attempt(t0) == verdict::go);
    CHECK(g.begin_attempt(t0) == verdict::go);
}

TEST_CASE("lockout: one rejection pauses for good by default") {
    lockout_guard g(1, std::nullopt, fixed(0));
    REQUIRE(g.begin_attempt(t0) == verdict::go);
    CHECK(g.on_rejected(t0));
    CHECK(g.current() == state::paused);
    CHECK_FALSE(g.paused_until().has_value());
    for (int i = 0; i < 100; ++i)
        CHECK(g.begin_attempt(t0 + std::chrono::hours(i)) == verdict::paused);
    // Late answers to requests sent before the pause neither count nor re-pause.
    CHECK_FALSE(g.on_rejected(t0));
    CHECK(g.rejections() == 1);
}

TEST_CASE("lockout: max_rejections counts rejections, each attempt single-flight") {
    lockout_guard g(3, std::nullopt, fixed(0));
    for (int i = 1; i <= 2; ++i) {
        REQUIRE(g.begin_attempt(t0) == verdict::go);
        CHECK(g.begin_attempt(t0) == verdict::wait);
        CHECK_FALSE(g.on_rejected(t0));
        CHECK(g.rejections() == static_cast<unsigned>(i));
        CHECK(g.current() == state::unverified);
    }
    REQUIRE(g.begin_attempt(t0) == verdict::go);
    CHECK(g.on_rejected(t0));
    CHECK(g.begin_attempt(t0) == verdict::paused);
}

TEST_CASE("lockout: acceptance resets the count") {
    lockout_guard g(2, std::nullopt, fixed(0));
    REQUIRE(g.begin_attempt(t0) == verdict::go);
    CHECK_FALSE(g.on_rejected(t0));
    REQUIRE(g.begin_attempt(t0) == verdict::go);
    g.on_accepted();
    CHECK(g.rejections() == 0);
    REQUIRE(g.begin_attempt(t0) == verdict::go);
    CHECK_FALSE(g.on_rejected(t0)); // one rejection of a verified credential: not paused yet
    CHECK(g.current() == state::unverified);
}

TEST_CASE("lockout: a timed retry allows exactly one probe after the pause, with jitter") {
    lockout_guard g(1, 2000ms, fixed(0.5));
    REQUIRE(g.begin_attempt(t0) == verdict::go);
    REQUIRE(g.on_rejected(t0));
    REQUIRE(g.paused_until().has_value());
    CHECK(*g.paused_until() == t0 + 2000ms + 250ms); // 25 % of 2 s, times 0.5
    CHECK(g.begin_attempt(t0 + 2249ms) == verdict::paused);
    CHECK(g.begin_attempt(t0 + 2250ms) == verdict::go);
    CHECK(g.begin_attempt(t0 + 2250ms) == verdict::wait);
    CHECK(g.on_rejected(t0 + 2300ms)); // paused again
    CHECK(g.begin_attempt(t0 + 2300ms) == verdict::paused);
    CHECK(*g.paused_until() == t0 + 2300ms + 2250ms);
}

TEST_CASE("lockout: an abandoned attempt lets the next one go") {
    lockout_guard g(1, std::nullopt, fixed(0));
    REQUIRE(g.begin_attempt(t0) == verdict::go);
    CHECK(g.begin_attempt(t0) == verdict::wait);
    g.on_abandoned();
    CHECK(g.begin_attempt(t0) == verdict::go);
    CHECK(g.current() == state::unverified);
}
