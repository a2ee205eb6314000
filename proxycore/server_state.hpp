#pragma once
/// State shared by the listener and every client session of one running server: the
/// configuration, access rules, upstream pool, counters, the stop flag and the registry of live
/// sessions (for graceful shutdown). Ownership: held by shared_ptr by the server and by each
/// session coroutine, so it outlives them all. Thread safety: config and access rules are
/// immutable while serving; counters and the stop flag are atomic; the registry has a mutex.

#include "config/config.hpp"
#include "proxycore/access.hpp"
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
inline std::unique_ptr<upstream_auth> make_upstream_auth(const config::config& cfg) {
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
    return std::make_unique<upstream_auth>(std::move(s));
}

struct server_state {
    server_state(config::config c, boost::asio::any_io_executor ex)
        : cfg(std::move(c)), access(cfg.access),
          pool(std::move(ex), cfg.upstreams.at(0), cfg.timeouts.connect, stats),
          auth(make_upstream_auth(cfg)) {}

    const config::config cfg;
    access_rules access;
    counters stats;
    upstream_pool pool;
    /// Null when the upstream has no credentials (a 407 from it then becomes a 502).
    const std::unique_ptr<upstream_auth> auth;
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
