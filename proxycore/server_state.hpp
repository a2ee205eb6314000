#pragma once
/// State shared by the listener and every client session of one running server: the current
/// `runtime` (configuration and what is built from it, replaced as a whole by a reload),
/// counters, the stop flag and the registry of live sessions (for graceful shutdown).
/// Ownership: held by shared_ptr by the server and by each session coroutine, so it outlives
/// them all; a session also holds the runtime its exchange started with, so a reload never
/// pulls the configuration, pool or credentials from under an in-flight request or tunnel.
/// Thread safety: `current` is read and replaced on the server's thread only; a runtime is
/// immutable once published; counters and the stop flag are atomic; the registry has a mutex.

#include "config/config.hpp"
#include "proxycore/access.hpp"
#include "proxycore/access_log.hpp"
#include "proxycore/counters.hpp"
#include "proxycore/upstream_auth.hpp"
#include "proxycore/upstream_pool.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace authshim::proxycore {

class client_session;

/// The authentication state for the configured upstream, or null when it has no credentials.
/// Expects resolved credentials (config::resolve_credentials).
inline std::unique_ptr<upstream_auth> make_upstream_auth(const config::config& cfg,
                                                         counters& stats) {
    const auto& up = cfg.upstreams.at(0);
    if (!up.credentials) return nullptr;
    const auto& credential = cfg.credentials.at(*up.credentials);
    upstream_auth::settings s;
    s.credential_name = *up.credentials;
    s.username = credential.username;
    s.password = credential.password;
    for (const auto scheme : up.schemes)
        s.schemes.push_back(scheme == config::auth_scheme::digest ? auth::scheme::digest
                                                                  : auth::scheme::basic);
    s.max_rejections = cfg.lockout.max_rejections;
    s.retry_after = cfg.lockout.retry_after;
    s.wait_limit = cfg.timeouts.connect + cfg.timeouts.upstream_response;
    return std::make_unique<upstream_auth>(std::move(s), stats);
}

/// One configuration in force and what is built from it. Immutable once published.
struct runtime {
    config::config cfg;
    access_rules access;
    std::shared_ptr<upstream_pool> pool;
    /// Null when the upstream has no credentials (a 407 from it then becomes a 502).
    std::shared_ptr<upstream_auth> auth;
    /// Null when `log.access` is false.
    std::shared_ptr<access_log> requests_log;
};

struct server_state {
    counters stats;
    /// The runtime new exchanges use. Server thread only.
    std::shared_ptr<const runtime> current;
    std::atomic<bool> stopping{false};

    std::uint64_t add_session(const std::shared_ptr<client_session>& s) {
        std::lock_guard lock(sessions_mutex_);
        const auto id = ++next_session_id_;
        sessions_.emplace(id, s);
        return id;
    }
    void remove_session(std::uint64_t id) {
        std::lock_guard lock(sessions_mutex_);
        sessions_.erase(id);
    }
    std::vector<std::shared_ptr<client_session>> live_sessions() const {
        std::lock_guard lock(sessions_mutex_);
        std::vector<std::shared_ptr<client_session>> out;
        out.reserve(sessions_.size());
        for (const auto& [id, weak] : sessions_)
            if (auto s = weak.lock()) out.push_back(std::move(s));
        return out;
    }
    std::size_t session_count() const {
        std::lock_guard lock(sessions_mutex_);
        return sessions_.size();
    }

private:
    mutable std::mutex sessions_mutex_;
    std::unordered_map<std::uint64_t, std::weak_ptr<client_session>> sessions_;
    std::uint64_t next_session_id_ = 0;
};

} // namespace authshim::proxycore
