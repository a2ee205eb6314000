#pragma once
/// authshim in the Windows Event Log: an spdlog sink for operator events, warnings and errors
/// (owns its event source handle), and the source's registration at install. Windows only.
/// Thread safety: the sink is thread safe (a mutex); the registry functions keep no state.

#include "proxycore/events.hpp"

#include <spdlog/common.h>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace authshim::service::windows {

/// Message IDs of messages.mc for lines that are not operator events (proxycore::event_id has
/// the others).
inline constexpr unsigned long generic_info_message = 100;
inline constexpr unsigned long generic_warning_message = 101;
inline constexpr unsigned long generic_error_message = 102;

/// What the sink writes for one line: the message ID and the event type (EVENTLOG_*_TYPE).
struct event_log_entry {
    unsigned long id;
    unsigned short type;
};

/// The entry for a line logged at `level` while `event` is the thread's tag (rules below);
/// nothing when the sink does not write the line.
std::optional<event_log_entry> event_log_entry_for(spdlog::level::level_enum level,
                                                   proxycore::event_id event) noexcept;

/// How many untagged warnings and errors the sink writes: at most `per_minute` in a minute
/// (the window starts at the first line after the previous one ended). Not thread-safe: the
/// sink calls it under its own mutex.
class event_log_rate_limit {
public:
    explicit event_log_rate_limit(std::size_t per_minute) noexcept : per_minute_(per_minute) {}
    /// Whether the line logged at `now` may be written; when it may, `left_out` is how many
    /// lines were refused since the last one written.
    bool admit(spdlog::log_clock::time_point now, std::size_t& left_out) noexcept;

private:
    std::size_t per_minute_;
    spdlog::log_clock::time_point window_start_{};
    std::size_t in_window_ = 0;
    std::size_t suppressed_ = 0;
};

/// An spdlog sink writing to the Windows Event Log (source "authshim", Application log) through
/// RegisterEventSourceW/ReportEventW: every line tagged with an operator event
/// (proxycore::current_event() != none) under that event's ID, and untagged lines at warn or
/// above under 101/102, at most 10 of those a minute (they can come once per request; the next
/// one written says how many were left out); untagged lines below warn are not written (the file
/// log has them). The
/// event type follows the level (info and below: information, warn: warning, error/critical:
/// error); the formatted line (trailing line break removed, UTF-16) is the %1 insertion string.
/// Never throws from logging; a failed ReportEventW (or an unregistered source) is ignored: the
/// file log still has the line.
std::shared_ptr<spdlog::sinks::sink> make_event_log_sink();

/// Registers the source at install: the key
/// HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\authshim with EventMessageFile
/// (REG_EXPAND_SZ) = `exe` (made absolute; authshim.exe carries the message table) and
/// TypesSupported (REG_DWORD) = 7.
/// Overwrites an existing registration. Needs an elevated administrator. Error text or nothing.
std::optional<std::string> register_event_source(const std::filesystem::path& exe);

/// Deletes that key at uninstall; a source that is not registered is fine. Error text or nothing.
std::optional<std::string> unregister_event_source();

} // namespace authshim::service::windows
