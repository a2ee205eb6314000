#pragma once
/// The exchange behind `authshim probe`: one request through the configured upstream, first
/// without credentials (so the report shows what the upstream offers), then answering its 407
/// with the scheme the proxy would choose (auth/'s choice, downgrade protection included),
/// over the proxy's own upstream connection code (plain TCP or TLS, timeouts.connect). A
/// credential the upstream rejects is never sent again; a Digest `stale=true` gets exactly one
/// more try with the new nonce. Each step is printed as it happens; nothing secret is.
/// Thread safety: runs its own io_context on the calling thread.

#include "config/config.hpp"

#include <iosfwd>
#include <string>

namespace authshim::service {

/// What the probe asks the upstream for.
struct probe_request {
    std::string method; ///< `GET` or `CONNECT`
    std::string target; ///< the request-target: an absolute `http://` URL, or `host:port`
    std::string host;   ///< the Host field: the target's authority
    /// The target's host alone (IPv6 without brackets), checked against access.destinations:
    /// the probe asks the upstream either way, and says when clients would get 403 for it.
    std::string target_host;
};

/// Sends `request` through `cfg.upstreams[0]` (whose credentials must be resolved), printing
/// the report to `out`. Returns a `probe_exit` code (service/probe.hpp).
int run_probe(const config::config& cfg, const probe_request& request, std::ostream& out);

} // namespace authshim::service
