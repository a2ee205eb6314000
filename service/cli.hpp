#pragma once
/// authshim's command line and the pieces platform commands share: loading a config with the
/// platform's secret resolver, and serving it until a stop is requested. The process entry points
/// (service/posix/entry.cpp `main`, service/windows/entry.cpp `wmain`) call `cli_main`.
/// Thread safety: call from the main thread; `serve`'s `request_stop` may be called from any.

#include "config/config.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace authshim::service {

/// Runs the command line `args` (without the program name; UTF-8). Returns the exit code:
/// 0 success, 1 failure, 2 usage error.
int cli_main(const std::vector<std::string>& args);

/// Loads and validates `file` and (unless `resolve_secrets` is false) resolves its secrets with
/// the platform's resolver and checks CA files. Prints every warning and error (never a secret)
/// to `err`. Nothing when the config is not usable.
std::optional<config::config> load_config(const std::filesystem::path& file, std::ostream& err,
                                          bool resolve_secrets = true);

/// The config file named by `--config FILE` / `--config=FILE` / `-c FILE` in `args` (at most
/// once), which is removed from `args`; else the platform's default (default_config_file), else
/// nothing. `error` is set when the option has no value or is given twice.
std::optional<std::filesystem::path> take_config_option(std::vector<std::string>& args,
                                                        std::string& error);

/// The whole of `file` as bytes; nothing (and `error` says why, naming the file) when it cannot
/// be opened or read.
std::optional<std::string> read_text_file(const std::filesystem::path& file, std::string& error);

/// What the Windows service (or any supervisor) hears from `serve`.
struct serve_hooks {
    /// After the listeners are bound, before serving. `request_stop` asks for a graceful stop and
    /// may be called from any thread, any number of times.
    std::function<void(std::function<void()> request_stop)> on_running;
    /// When a stop has been requested, with the longest the stop may take (timeouts.shutdown).
    std::function<void(std::chrono::milliseconds)> on_stopping;
    /// Once serving: `request_reload(trigger)` queues a configuration reload (returns at once;
    /// any thread), e.g. for SERVICE_CONTROL_PARAMCHANGE. Not to be called after on_stopped.
    std::function<void(std::function<void(std::string trigger)> request_reload)>
        on_reload_available;
    /// After serving ended, before the server is destroyed: `request_stop` must not be called
    /// from here on.
    std::function<void()> on_stopped;
};

/// Sets up logging from `cfg.log` (`default_log_file` when `log.file` is not set; stderr when
/// neither is), binds, serves until a stop is requested, and logs the start and stop events.
/// Returns 0 after a clean stop, 1 when it could not start (the reason is logged).
int serve(config::config cfg, const serve_hooks& hooks,
          const std::optional<std::filesystem::path>& default_log_file = std::nullopt);

} // namespace authshim::service
