#pragma once
/// Process-wide proxy counters (requests by status class, bytes, failures, denials), updated
/// with relaxed atomics on the hot path and read without blocking by the status endpoint.
/// Ownership: one instance owned by the server. Thread safety: every member is atomic.

#include <atomic>
#include <cstdint>

namespace authshim::proxycore {

struct counters {
    using counter = std::atomic<std::uint64_t>;
    counter connections_accepted{0};
    counter connections_active{0};
    counter connections_rejected_limit{0};
    counter requests{0};
    counter responses_1xx{0}, responses_2xx{0}, responses_3xx{0}, responses_4xx{0},
        responses_5xx{0};
    counter tunnels{0};
    counter denied_client{0};
    counter denied_port{0};
    counter denied_loop{0};
    counter bad_requests{0};
    counter upstream_connects{0};
    counter upstream_connect_failures{0};
    counter upstream_timeouts{0};
    counter upstream_reused{0};
    counter upstream_retries{0};
    counter upstream_407{0};
    counter bytes_from_client{0};
    counter bytes_to_client{0};

    void count_status(unsigned status) {
        switch (status / 100) {
        case 1:
            responses_1xx.fetch_add(1, std::memory_order_relaxed);
            break;
        case 2:
            responses_2xx.fetch_add(1, std::memory_order_relaxed);
            break;
        case 3:
            responses_3xx.fetch_add(1, std::memory_order_relaxed);
            break;
        case 4:
            responses_4xx.fetch_add(1, std::memory_order_relaxed);
            break;
        default:
            responses_5xx.fetch_add(1, std::memory_order_relaxed);
            break;
        }
    }
};

inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
    c.fetch_add(n, std::memory_order_relaxed);
}

} // namespace authshim::proxycore
