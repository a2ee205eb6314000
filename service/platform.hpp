#pragma once
/// Platform glue declared once and implemented per platform (service/posix/*.cpp here,
/// service/windows/*.cpp for Windows): never #ifdef in shared code.
/// Thread safety: call from main before the server runs.

#include <boost/asio/io_context.hpp>

#include <functional>

namespace authshim::service {

/// Calls `stop` (on an io_context thread) when the process is asked to stop: SIGINT/SIGTERM
/// on POSIX. A second signal after the first gets the default action (immediate exit).
void install_stop_handlers(boost::asio::io_context& io, std::function<void()> stop);

} // namespace authshim::service
