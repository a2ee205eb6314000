// The Windows Event Log sink and the registration of its source.
#include "service/windows/event_log.hpp"

#include "proxycore/events.hpp"
#include "service/windows/win32.hpp"

#include <spdlog/sinks/base_sink.h>

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace authshim::service::windows {
namespace {

constexpr const wchar_t* source_name = L"authshim";
constexpr const wchar_t* source_key =
    L"SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\authshim";
constexpr std::string_view source_key_text =
    "HKLM\\SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\authshim";

/// An insertion string may hold at most 31,839 characters; longer ones make ReportEventW fail.
constexpr std::size_t max_insertion_chars = 31'000;
/// Warnings and errors that are not operator events: at most this many a minute.
constexpr std::size_t untagged_per_minute = 10;

class event_log_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    event_log_sink() : source_(RegisterEventSourceW(nullptr, source_name)) {}
    ~event_log_sink() override {
        if (source_) DeregisterEventSource(source_);
    }
    event_log_sink(const event_log_sink&) = delete;
    event_log_sink& operator=(const event_log_sink&) = delete;

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        try {
            write(msg);
        } catch (...) {
            // Formatting or conversion ran out of memory: the file log still has the line.
        }
    }

    void flush_() override {}

private:
    void write(const spdlog::details::log_msg& msg) {
        if (!source_) return;
        const auto event = proxycore::current_event();
        const auto entry = event_log_entry_for(msg.level, event);
        if (!entry) return;
        // Events always get through. Other warnings and errors can come once per request (an
        // upstream that is down fails every fetch): at most `untagged_per_minute` of them a
        // minute reach the Event Log, the next one says how many were left out.
        std::size_t left_out = 0;
        if (event == proxycore::event_id::none && !limit_.admit(msg.time, left_out)) return;

        spdlog::memory_buf_t formatted;
        formatter_->format(msg, formatted);
        std::string_view line(formatted.data(), formatted.size());
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
            line.remove_suffix(1);
        std::wstring text = win32::widen(line);
        if (left_out > 0)
            text += L"\r\n(" + std::to_wstring(left_out) +
                    L" earlier warning(s) or error(s) were not written to the Event Log: at most " +
                    std::to_wstring(untagged_per_minute) +
                    L" a minute are; the log file has them all)";
        if (text.size() > max_insertion_chars) {
            text.resize(max_insertion_chars);
            // Do not leave half of a surrogate pair at the end.
            if (text.back() >= 0xD800 && text.back() <= 0xDBFF) text.pop_back();
            text += L" [...]";
        }
        const wchar_t* strings[] = {text.c_str()};
        // A failure is ignored on purpose: there is nowhere better to report it, and the file
        // log has the line.
        ReportEventW(source_, entry->type, 0, entry->id, nullptr, 1, 0, strings, nullptr);
    }

    HANDLE source_;
    event_log_rate_limit limit_{untagged_per_minute};
};

std::string registry_error(std::string_view what, LSTATUS status) {
    return std::string(what) + " " + std::string(source_key_text) + ": " +
           win32::error_text(static_cast<DWORD>(status));
}

} // namespace

std::optional<event_log_entry> event_log_entry_for(spdlog::level::level_enum level,
                                                   proxycore::event_id event) noexcept {
    if (level == spdlog::level::off) return std::nullopt;
    const bool tagged = event != proxycore::event_id::none;
    if (!tagged && level < spdlog::level::warn) return std::nullopt; // the file log has it

    WORD type = EVENTLOG_INFORMATION_TYPE;
    if (level == spdlog::level::warn)
        type = EVENTLOG_WARNING_TYPE;
    else if (level >= spdlog::level::err)
        type = EVENTLOG_ERROR_TYPE;

    DWORD id = static_cast<DWORD>(event);
    if (!tagged)
        id = type == EVENTLOG_WARNING_TYPE ? generic_warning_message : generic_error_message;
    return event_log_entry{id, type};
}

bool event_log_rate_limit::admit(spdlog::log_clock::time_point now,
                                 std::size_t& left_out) noexcept {
    if (now - window_start_ >= std::chrono::minutes(1) || now < window_start_) {
        window_start_ = now;
        in_window_ = 0;
    }
    if (in_window_ >= per_minute_) {
        ++suppressed_;
        return false;
    }
    ++in_window_;
    left_out = std::exchange(suppressed_, 0);
    return true;
}

std::shared_ptr<spdlog::sinks::sink> make_event_log_sink() {
    return std::make_shared<event_log_sink>();
}

std::optional<std::string> register_event_source(const std::filesystem::path& exe) {
    std::error_code ec;
    std::filesystem::path absolute = std::filesystem::absolute(exe, ec);
    if (ec) absolute = exe;
    const std::wstring file = absolute.native();

    win32::unique_hkey key;
    LSTATUS status =
        RegCreateKeyExW(HKEY_LOCAL_MACHINE, source_key, 0, nullptr, REG_OPTION_NON_VOLATILE,
                        KEY_SET_VALUE, nullptr, key.put(), nullptr);
    if (status != ERROR_SUCCESS)
        return registry_error("cannot register the Event Log source: creating", status);

    status = RegSetValueExW(key.get(), L"EventMessageFile", 0, REG_EXPAND_SZ,
                            reinterpret_cast<const BYTE*>(file.c_str()),
                            static_cast<DWORD>((file.size() + 1) * sizeof(wchar_t)));
    if (status != ERROR_SUCCESS)
        return registry_error("cannot register the Event Log source: setting EventMessageFile in",
                              status);

    const DWORD types = EVENTLOG_ERROR_TYPE | EVENTLOG_WARNING_TYPE | EVENTLOG_INFORMATION_TYPE;
    status = RegSetValueExW(key.get(), L"TypesSupported", 0, REG_DWORD,
                            reinterpret_cast<const BYTE*>(&types), sizeof(types));
    if (status != ERROR_SUCCESS)
        return registry_error("cannot register the Event Log source: setting TypesSupported in",
                              status);
    return std::nullopt;
}

std::optional<std::string> unregister_event_source() {
    const LSTATUS status = RegDeleteKeyW(HKEY_LOCAL_MACHINE, source_key);
    if (status == ERROR_SUCCESS || status == ERROR_FILE_NOT_FOUND) return std::nullopt;
    return registry_error("cannot remove the Event Log source", status);
}

} // namespace authshim::service::windows
