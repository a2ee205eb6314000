#pragma once
/// `authshim probe`: one request through the configured upstream, showing the authentication
/// exchange step by step (schemes offered, scheme chosen, each round trip with its status and
/// time, the outcome) without ever sending a rejected credential twice.
/// Thread safety: runs on the calling thread only.

#include <iosfwd>
#include <string>
#include <vector>

namespace authshim::service {

/// Exit codes of `authshim probe`.
enum probe_exit : int {
    probe_ok = 0,          ///< the request went through (any status below 400)
    probe_error = 1,       ///< invalid config or another failure before any round trip
    probe_usage = 2,       ///< bad command line
    probe_unreachable = 3, ///< the upstream could not be reached (DNS, refused, TLS)
    probe_rejected =
        4, ///< the upstream rejected the credential (or demands one and none is configured)
    probe_no_scheme = 5,  ///< no scheme the upstream offers is in the upstream's `schemes`
    probe_timeout = 6,    ///< no answer within the configured timeouts
    probe_http_error = 7, ///< authenticated, but the final answer is an error status (>= 400)
};

/// Runs `probe` with the arguments after the command name. Prints to `out`, errors to `err`.
int probe_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

} // namespace authshim::service
