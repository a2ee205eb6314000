#pragma once
/// Running as the Windows service under the service control manager (SCM): `authshim service
/// run`, what the installed service's command line starts. Windows only. Thread safety: call
/// from the main thread, once per process.

#include <windows.h>

#include <string>
#include <vector>

namespace authshim::service::windows {

/// Service-specific exit codes reported to the SCM with ERROR_SERVICE_SPECIFIC_ERROR (`sc query`
/// shows them; `authshim service start|status` explain them).
inline constexpr DWORD exit_config_invalid = 1; ///< the configuration could not be loaded
inline constexpr DWORD exit_start_failed = 2;   ///< could not listen, or failed unexpectedly

/// `service run [--config FILE]` (args[0] == "service", args[1] == "run"): serves as the service
/// until the SCM stops it, reporting start and stop progress. Started from a console instead of
/// by the SCM, it behaves like `authshim run`. Returns the process exit code.
int service_run(std::vector<std::string> args);

} // namespace authshim::service::windows
