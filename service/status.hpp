#pragma once
/// What the admin endpoint shows: the /status JSON, the /metrics Prometheus text (exposition
/// format 0.0.4) and the /healthz verdict, computed from the proxy's counters (atomics, read
/// without blocking the proxy) and the facts the service keeps about itself. No secret is ever
/// part of the input, so none can be part of the output.
/// Thread safety: pure functions of their arguments.

#include "proxycore/counters.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace authshim::service {

/// What the service knows about itself (copied under the service's lock, never secret).
struct status_facts {
    std::string version;
    std::int64_t started_ms = 0; ///< wall clock, ms since the epoch
    std::string config_path;
    std::string config_hash; ///< `sha256:` of the effective config with secrets masked
    std::int64_t config_loaded_ms = 0;
    std::vector<std::string> listeners; ///< bound `host:port`
    std::optional<std::string> admin;   ///< bound admin `host:port`
    std::string upstream_name;
    std::string upstream_address;
    std::string upstream_transport;         ///< `http` or `https`
    std::optional<std::string> credentials; ///< the credential entry's name (not the user)
    bool stopping = false;
    struct reload_note {
        std::int64_t unix_ms = 0; ///< 0: no reload yet
        bool ok = true;
        std::string trigger;
        std::vector<std::string> errors;
    } last_reload;
};

/// The upstream's state as the counters tell it.
enum class upstream_state {
    unknown, ///< no answer and no failure yet
    ok,      ///< the last exchange got an answer
    failing, ///< the last attempt failed (connect, timeout, reset) after the last answer
    paused,  ///< the credentials are paused by the lockout guard
};
upstream_state classify(const proxycore::counters& c);
const char* to_string(upstream_state s);

std::string render_status_json(const status_facts& facts, const proxycore::counters& c,
                               std::int64_t now_ms);
std::string render_metrics(const status_facts& facts, const proxycore::counters& c);

} // namespace authshim::service
