#pragma once
/// The admin endpoint (cpp-httplib): GET /healthz (no token), GET /status, GET /metrics and
/// POST /reload (bearer token when one is configured), on its own threads so that it never
/// runs on, or waits for, the proxy's thread. What each endpoint answers comes from handlers
/// given by the caller; this class owns the HTTP side: binding, routing, methods (405 with
/// Allow), the token check (constant time; 401 with WWW-Authenticate: Bearer), limits on
/// request size and time, and a clean stop.
/// Ownership: owns its listening socket and threads; stop() or destruction joins them.
/// Thread safety: start/stop from one owner thread; set_token() from any thread; handlers are
/// called on the admin threads (possibly two at once).

#include "config/config.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace authshim::service {

struct admin_response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

struct admin_handlers {
    std::function<admin_response()> healthz;
    std::function<admin_response()> status;
    std::function<admin_response()> metrics;
    std::function<admin_response()> reload;
};

class admin_server {
public:
    explicit admin_server(admin_handlers handlers);
    ~admin_server();
    admin_server(const admin_server&) = delete;
    admin_server& operator=(const admin_server&) = delete;

    /// Binds `listen` (an IP literal; port 0 picks a free port) and starts serving. Returns an
    /// error message (naming the address) when it cannot bind; nothing is left running then.
    std::optional<std::string> start(const config::endpoint& listen, config::secret_string token);

    /// Stops serving and joins the threads; in-flight handler calls finish first. Idempotent.
    void stop();

    /// The bound `host:port` (ephemeral port resolved), after a successful start().
    config::endpoint local_endpoint() const;

    /// Replaces the token (empty: none required). Takes effect for the next request.
    void set_token(config::secret_string token);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace authshim::service
