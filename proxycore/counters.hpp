#pragma once
/// Process-wide proxy counters and gauges (requests by status code, request durations, bytes,
/// connections, upstream and authentication events, the published authentication state and
/// the last upstream error), updated with relaxed atomics on the proxy's thread and read by
/// the admin endpoint without ever blocking the proxy. The one lock, around the last error's
/// text, is taken only when an error happens and for a copy by the reader.
/// Ownership: one instance owned by the server (server_state). Thread safety: every member is
/// atomic or guarded; any thread may read.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace authshim::proxycore {

/// Milliseconds since the Unix epoch (wall clock), for timestamps an admin reads.
inline std::int64_t unix_ms_now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

struct counters {
    using counter = std::atomic<std::uint64_t>;

    // Client side.
    counter connections_accepted{0};
    counter connections_active{0}; ///< gauge
    counter connections_rejected_limit{0};
    counter requests{0}; ///< request heads read (a rejected request counts too)
    /// Responses sent to clients by status code (100-599); [0]: the exchange ended without a
    /// response (the client went away, or a body failed after the head was sent).
    std::array<counter, 600> responses_by_code{};
    counter tunnels{0};        ///< CONNECT tunnels established
    counter tunnels_active{0}; ///< gauge
    counter denied_client{0};
    counter denied_port{0};
    counter denied_loop{0};
    counter denied_destination{0}; ///< target host not in access.destinations
    counter bad_requests{0};
    counter bytes_from_client{0}; ///< everything read from clients: heads, bodies, tunnel bytes
    counter bytes_to_client{0};   ///< everything written to clients: heads, bodies, tunnel bytes

    /// Upper bounds (seconds) of the request duration histogram; a last, implicit +Inf bucket
    /// follows. A tunnel counts the time until it was established, not its lifetime.
    static constexpr std::array<double, 13> duration_bounds{
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0};
    std::array<counter, duration_bounds.size() + 1> duration_buckets{}; ///< not cumulative
    counter duration_sum_us{0};

    // Upstream side.
    counter upstream_connects{0}; ///< connections established (TCP, and TLS for https://)
    counter upstream_connect_failures{0};
    counter upstream_timeouts{0};
    counter upstream_reused{0};
    counter upstream_retries{0};
    counter upstream_connections_open{0}; ///< gauge: open connections to the upstream
    counter upstream_connections_idle{0}; ///< gauge: of which waiting in the pool
    counter upstream_407{0};              ///< 407 answers received from the upstream
    counter auth_challenges_answered{0};  ///< 407s answered by sending the request again
    counter auth_stale_nonces{0};         ///< of which Digest `stale=true`
    counter auth_rejections{0};           ///< the upstream refused the stored credentials
    counter auth_failures{0};             ///< unusable challenges (no common scheme, malformed)
    counter auth_paused_refusals{0};      ///< requests refused (502) while credentials are paused
    /// Wall-clock ms of the last answer read from the upstream and of the last failure to get
    /// one (connect failure, timeout, reset); 0: never.
    std::atomic<std::int64_t> upstream_last_ok_ms{0};
    std::atomic<std::int64_t> upstream_last_failure_ms{0};

    // Published authentication state (written by upstream_auth, under its own lock).
    /// -1: none chosen yet (or no credentials); 0: digest; 1: basic (auth::scheme order).
    std::atomic<int> auth_scheme{-1};
    /// 0 unverified, 1 verified, 2 paused (auth::lockout_guard::state order).
    std::atomic<int> auth_state{0};
    /// While paused: wall-clock ms of the timed retry; 0: paused until the credential changes.
    std::atomic<std::int64_t> auth_paused_until_ms{0};

    counter reloads{0};
    counter reload_failures{0};

    void count_response(unsigned status, std::chrono::microseconds duration) {
        responses_by_code[status < responses_by_code.size() ? status : 0].fetch_add(
            1, std::memory_order_relaxed);
        const double seconds = static_cast<double>(duration.count()) / 1e6;
        std::size_t bucket = 0;
        while (bucket < duration_bounds.size() && seconds > duration_bounds[bucket])
            ++bucket;
        duration_buckets[bucket].fetch_add(1, std::memory_order_relaxed);
        duration_sum_us.fetch_add(static_cast<std::uint64_t>(duration.count()),
                                  std::memory_order_relaxed);
    }

    /// The upstream failed to answer (`text`: why, never secret).
    void upstream_failed(std::string text) {
        upstream_last_failure_ms.store(unix_ms_now(), std::memory_order_relaxed);
        std::lock_guard lock(error_mutex_);
        last_error_ = std::move(text);
        last_error_ms_ = unix_ms_now();
    }
    void upstream_answered() {
        upstream_last_ok_ms.store(unix_ms_now(), std::memory_order_relaxed);
    }

    struct error_note {
        std::string text; ///< empty: none yet
        std::int64_t unix_ms = 0;
    };
    error_note last_error() const {
        std::lock_guard lock(error_mutex_);
        return {last_error_, last_error_ms_};
    }
    /// Records an error that is not an upstream failure (e.g. a rejected credential).
    void note_error(std::string text) {
        std::lock_guard lock(error_mutex_);
        last_error_ = std::move(text);
        last_error_ms_ = unix_ms_now();
    }

private:
    mutable std::mutex error_mutex_;
    std::string last_error_;         // guarded by error_mutex_
    std::int64_t last_error_ms_ = 0; // guarded by error_mutex_
};

inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
    c.fetch_add(n, std::memory_order_relaxed);
}

inline void drop(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
    c.fetch_sub(n, std::memory_order_relaxed);
}

} // namespace authshim::proxycore
