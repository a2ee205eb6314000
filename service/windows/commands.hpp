#pragma once
/// The Windows-only command groups of authshim.exe (`service`, `winhttp`, `credentials`), each
/// taking the whole argument list (args[0] is the group) and returning the process exit code:
/// 0 success, 1 failure, 2 usage error. Messages go to stdout/stderr. Thread safety: call from
/// the main thread.

#include <iosfwd>
#include <string>
#include <vector>

namespace authshim::service::windows {

/// The Windows service's name, also the Event Log source and the `NT SERVICE\` account name.
inline constexpr wchar_t service_name[] = L"authshim";

/// `service install [--config FILE] [--start auto|demand] [--now]`, `service uninstall
/// [--remove-logs]`, `service start|stop|status`, and `service run [--config FILE]` (what the SCM
/// starts; from a console it behaves like `authshim run`). scm.cpp.
int service_command(const std::vector<std::string>& args);

/// `winhttp apply [--bypass LIST] [--config FILE] [--reapply]`, `winhttp show [--config FILE]`,
/// `winhttp revert [--force]`. winhttp.cpp.
int winhttp_command(const std::vector<std::string>& args);

/// For `service uninstall`: if authshim applied a WinHTTP setting, revert it (messages to
/// out/err). Returns false when a revert was needed and failed. winhttp.cpp.
bool revert_winhttp_if_applied(std::ostream& out, std::ostream& err);

/// `credentials set NAME --username USER [--config FILE]`. credentials.cpp.
int credentials_command(const std::vector<std::string>& args);

} // namespace authshim::service::windows
