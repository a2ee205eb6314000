#pragma once
/// Sets up authshim's process-wide spdlog logger from the `log` configuration section: to a
/// rotating file (created with its folder) or to stderr, plus the platform's extra sinks (the
/// Windows Event Log). Thread safety: any thread; a later call (a reload) changes the sinks and
/// level of the same logger in place, while other threads go on logging.

#include "config/config.hpp"

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace spdlog::sinks {
class sink;
}

namespace authshim::service {

/// The log file rotates at this size, keeping this many older files (authshim.1.log ...).
inline constexpr std::size_t log_rotate_bytes = 10 * 1024 * 1024;
inline constexpr std::size_t log_rotate_files = 5;

/// Returns an error message when the log destination cannot be opened.
std::optional<std::string>
setup_logging(const config::logging& log,
              std::vector<std::shared_ptr<spdlog::sinks::sink>> extra = {});

} // namespace authshim::service
