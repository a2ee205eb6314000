#pragma once
/// Asking the installed Windows service to do something from another process, beyond the
/// `service` commands (commands.hpp). Windows only. Thread safety: call from the main thread.

#include <filesystem>
#include <iosfwd>

namespace authshim::service::windows {

/// `authshim reload` for a config without an admin endpoint: sends SERVICE_CONTROL_PARAMCHANGE
/// to the running authshim service, which reloads its configuration file on its own (the
/// outcome goes to its log and the Event Log, not back here). `config_file`: the file the
/// caller means; a warning on `err` when the service's command line names another. Returns 0
/// sent, 1 failed (not installed, access denied: not elevated, the service does not take the
/// control), 3 the service is not running (or is starting or stopping).
int request_service_reload(const std::filesystem::path& config_file, std::ostream& out,
                           std::ostream& err);

} // namespace authshim::service::windows
