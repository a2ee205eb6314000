#pragma once
/// Platform glue declared once and implemented per platform (service/posix/*.cpp,
/// service/windows/*.cpp); CMake compiles the set that fits: never #ifdef in shared code.
/// Thread safety: call from the main thread, before the server runs (unless noted).

#include "config/config.hpp"
#include "config/secret_resolver.hpp"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spdlog::sinks {
class sink;
}

namespace authshim::service {

/// Calls `stop` (on an io_context thread) when the process is asked to stop: SIGINT/SIGTERM
/// on POSIX, Ctrl+C / Ctrl+Break / console close on Windows. A second request after the first
/// gets the default action (immediate exit).
void install_stop_handlers(boost::asio::io_context& io, std::function<void()> stop);

/// Calls `reload` (on an io_context thread) when the process is asked to reload its
/// configuration: SIGHUP on POSIX (every time); nothing on Windows, where the service control
/// handler's SERVICE_CONTROL_PARAMCHANGE does it (serve_hooks::on_reload_available). Returns
/// the function that stops listening for it (any thread; a stop must call it, or the pending
/// wait keeps `io` running). Afterwards SIGHUP is ignored.
std::function<void()> install_reload_handler(boost::asio::io_context& io,
                                             std::function<void(std::string trigger)> reload);

/// Until install_reload_handler: a reload request (SIGHUP on POSIX, whose default action ends
/// the process) that arrives while authshim is still starting is ignored; the configuration is
/// being read anyway. Nothing on Windows.
void ignore_early_reload_requests();

/// `authshim reload` for a config without an admin endpoint: Windows sends
/// SERVICE_CONTROL_PARAMCHANGE to the service; POSIX sends SIGHUP to every `authshim run`
/// process serving the same file (found through /proc). Returns the exit code (see
/// reload_command.hpp).
int reload_without_admin(const config::config& cfg, std::ostream& out, std::ostream& err);

/// Waits up to `timeout` until the native socket `socket` (an int on POSIX, a SOCKET on
/// Windows) can be read without blocking: data, the peer's close, or an error (the read that
/// follows tells which). True then, false on timeout. Any thread. poll(), WSAPoll() on Windows:
/// no descriptor-number limit as with select().
bool wait_readable(std::uintptr_t socket, std::chrono::milliseconds timeout);

/// Raises the soft limit on open files (RLIMIT_NOFILE) to the hard limit, so that a busy proxy
/// (two descriptors per connection) is held back by limits.max_connections rather than by a
/// 1024 default, and logs the figures. Returns the limit now in force, or nothing where there is
/// none to raise (Windows: sockets are not bounded that way). Call once at start.
std::optional<std::uint64_t> raise_open_file_limit();

/// Tells the service manager what the process is doing, in systemd's notify protocol: lines
/// such as `READY=1` (serving: the listeners are bound), `RELOADING=1`, `STOPPING=1`,
/// `STATUS=<text for systemctl status>`. POSIX: one datagram to the socket $NOTIFY_SOCKET names
/// (a unit with Type=notify), nothing when the variable is unset; waits at most about a second
/// for a service manager whose queue is full; a failure is logged as a warning and otherwise
/// ignored. Windows: nothing (service_main reports to the SCM). Any thread.
void notify_service_manager(std::string_view state);

/// Undoes install_stop_handlers before `io` goes away (Windows: the console handler forgets `io`
/// and `stop`; POSIX: nothing, the signal set lives and dies with `io`).
void remove_stop_handlers();

/// The secret resolver of this platform: DPAPI and Credential Manager on Windows; elsewhere
/// one that refuses both with a clear message.
std::unique_ptr<config::secret_resolver> make_secret_resolver();

/// The config file used when `--config` is not given: `%ProgramData%\authshim\authshim.json`
/// on Windows; nothing on POSIX (the option is required there).
std::optional<std::filesystem::path> default_config_file();

/// Problems with who may read `cfg`'s file, for `check`: on Windows, a config holding or naming
/// secrets (credentials of any source, or an `admin.token`) whose file ordinary users can read,
/// and a `{"file"}` password or token file they can read. Empty when none.
std::vector<std::string> config_access_problems(const config::config& cfg);

/// Extra log sinks of this platform (the Windows Event Log when `log.event_log` is true).
std::vector<std::shared_ptr<spdlog::sinks::sink>> platform_log_sinks(const config::logging& log);

/// The platform's own commands (Windows: `service`, `winhttp`, `credentials`). Returns the exit
/// code when `args[0]` is one of them (on POSIX: a clear "only on Windows" error, exit 2), or
/// nothing when it is not a platform command.
std::optional<int> run_platform_command(const std::vector<std::string>& args);

/// Replaces the file `file` with `text` atomically: written to a temporary file beside it with
/// the original's protection (Windows: its DACL, then ReplaceFileW, which keeps ACL, owner and
/// attributes; POSIX: its mode and, when permitted, owner and group), flushed to disk, then
/// swapped in. A crash leaves the old or the new file, never half of one. Returns an error text
/// (naming the file, never its content), or nothing. After an error the file is as it was,
/// except in one Windows case the text then spells out: the original was removed and the new
/// content could not be moved in (it stays in the temporary file, never deleted).
std::optional<std::string> replace_file_atomically(const std::filesystem::path& file,
                                                   const std::string& text);

/// Usage lines of the platform commands, appended to `authshim --help` (empty on POSIX).
std::string_view platform_usage();

} // namespace authshim::service
