#pragma once
/// Operator events: the log lines an admin must see outside the log file too (Windows Event Log,
/// with a message ID per kind). Code that reports one logs it through `log_event`, which tags the
/// line for the duration of the (synchronous) spdlog call; an event-log sink reads the tag with
/// `current_event()`. Lines logged with plain spdlog calls carry `event_id::none`.
/// Thread safety: the tag is thread-local; any thread may log events.

#include <spdlog/spdlog.h>

#include <cstdint>
#include <utility>

namespace authshim::proxycore {

/// Values are the message IDs of service/windows/messages.mc: never renumber.
enum class event_id : std::uint16_t {
    none = 0,
    started = 1,              ///< info: listening, with the upstream named
    stopped = 2,              ///< info: stopped
    config_invalid = 3,       ///< error: the configuration could not be loaded; not started
    start_failed = 4,         ///< error: started but could not listen (or other startup failure)
    credentials_rejected = 5, ///< warn/error: the upstream refused the stored credentials
    credentials_paused = 6,   ///< error: credentials paused (lockout protection)
    config_reloaded = 7,      ///< info: a reload applied a new configuration
    config_reload_failed = 8, ///< error: a reload was refused; the previous config stays
};

/// The event being logged by this thread right now (none outside a `log_event` call).
event_id current_event() noexcept;

namespace detail {
void set_current_event(event_id id) noexcept;
}

/// Logs `fmt, args...` at `level` through the default logger, tagged with `id`.
template <typename... Args>
void log_event(event_id id, spdlog::level::level_enum level, spdlog::format_string_t<Args...> fmt,
               Args&&... args) {
    detail::set_current_event(id);
    struct reset {
        ~reset() { detail::set_current_event(event_id::none); }
    } guard;
    spdlog::default_logger_raw()->log(level, fmt, std::forward<Args>(args)...);
}

} // namespace authshim::proxycore
