#pragma once
/// Sets up authshim's process-wide spdlog logger from the `log` configuration section: to a
/// file (created with its folder) or to stderr. Thread safety: call once from main, before any
/// other thread logs.

#include "config/config.hpp"

#include <optional>
#include <string>

namespace authshim::service {

/// Returns an error message when the log destination cannot be opened.
std::optional<std::string> setup_logging(const config::logging& log);

} // namespace authshim::service
