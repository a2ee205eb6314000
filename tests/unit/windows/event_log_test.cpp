#include "service/windows/event_log.hpp"

#include "service/windows/win32.hpp"

#include <spdlog/logger.h>
#include <spdlog/sinks/sink.h>

#include <catch2/catch.hpp>

#include <chrono>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace win = authshim::service::windows;
namespace win32 = authshim::service::win32;
using authshim::proxycore::event_id;

namespace {

constexpr const wchar_t* source_key =
    L"SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\authshim";

/// A library handle freed on destruction.
struct module_handle {
    HMODULE handle = nullptr;
    ~module_handle() {
        if (handle) FreeLibrary(handle);
    }
};

/// Message `id` of `module` with `insertion` as %1; empty when there is no such message.
std::wstring format_message(HMODULE module, DWORD id, const std::wstring& insertion) {
    const DWORD_PTR arguments[] = {reinterpret_cast<DWORD_PTR>(insertion.c_str())};
    wchar_t* buffer = nullptr;
    const DWORD length =
        FormatMessageW(FORMAT_MESSAGE_FROM_HMODULE | FORMAT_MESSAGE_ARGUMENT_ARRAY |
                           FORMAT_MESSAGE_ALLOCATE_BUFFER,
                       module, id, 0, reinterpret_cast<wchar_t*>(&buffer), 0,
                       reinterpret_cast<va_list*>(const_cast<DWORD_PTR*>(arguments)));
    std::wstring text;
    if (length != 0 && buffer) text.assign(buffer, length);
    if (buffer) LocalFree(buffer);
    return text;
}

} // namespace

TEST_CASE("windows: which lines the Event Log sink writes, under which ID and type") {
    using spdlog::level::level_enum;
    const auto entry = [](level_enum level, event_id event) {
        return win::event_log_entry_for(level, event);
    };
    // Operator events: their own ID, the type from the level.
    REQUIRE(entry(spdlog::level::info, event_id::started));
    CHECK(entry(spdlog::level::info, event_id::started)->id == 1);
    CHECK(entry(spdlog::level::info, event_id::started)->type == EVENTLOG_INFORMATION_TYPE);
    CHECK(entry(spdlog::level::info, event_id::stopped)->id == 2);
    CHECK(entry(spdlog::level::err, event_id::config_invalid)->id == 3);
    CHECK(entry(spdlog::level::err, event_id::config_invalid)->type == EVENTLOG_ERROR_TYPE);
    CHECK(entry(spdlog::level::critical, event_id::start_failed)->type == EVENTLOG_ERROR_TYPE);
    CHECK(entry(spdlog::level::warn, event_id::credentials_rejected)->id == 5);
    CHECK(entry(spdlog::level::warn, event_id::credentials_rejected)->type ==
          EVENTLOG_WARNING_TYPE);
    CHECK(entry(spdlog::level::err, event_id::credentials_paused)->id == 6);
    CHECK(entry(spdlog::level::info, event_id::config_reloaded)->id == 7);
    CHECK(entry(spdlog::level::info, event_id::config_reloaded)->type == EVENTLOG_INFORMATION_TYPE);
    CHECK(entry(spdlog::level::err, event_id::config_reload_failed)->id == 8);
    CHECK(entry(spdlog::level::err, event_id::config_reload_failed)->type == EVENTLOG_ERROR_TYPE);
    CHECK(entry(spdlog::level::debug, event_id::started)->type == EVENTLOG_INFORMATION_TYPE);

    // Untagged lines: warnings and errors only, under the generic IDs.
    CHECK_FALSE(entry(spdlog::level::info, event_id::none));
    CHECK_FALSE(entry(spdlog::level::debug, event_id::none));
    CHECK_FALSE(entry(spdlog::level::trace, event_id::none));
    CHECK(entry(spdlog::level::warn, event_id::none)->id == win::generic_warning_message);
    CHECK(entry(spdlog::level::warn, event_id::none)->type == EVENTLOG_WARNING_TYPE);
    CHECK(entry(spdlog::level::err, event_id::none)->id == win::generic_error_message);
    CHECK(entry(spdlog::level::critical, event_id::none)->id == win::generic_error_message);
    CHECK(entry(spdlog::level::critical, event_id::none)->type == EVENTLOG_ERROR_TYPE);
}

TEST_CASE("windows: at most N untagged lines a minute reach the Event Log; the next says how "
          "many were left out") {
    win::event_log_rate_limit limit(3);
    const auto t0 = spdlog::log_clock::now();
    std::size_t left_out = 99;
    for (int i = 0; i < 3; ++i) {
        REQUIRE(limit.admit(t0 + std::chrono::seconds(i), left_out));
        CHECK(left_out == 0);
    }
    for (int i = 0; i < 5; ++i)
        CHECK_FALSE(limit.admit(t0 + std::chrono::seconds(10 + i), left_out));
    // Still within the minute: refused.
    CHECK_FALSE(limit.admit(t0 + std::chrono::seconds(59), left_out));
    // A new minute: written, and it carries the count of the 6 refused.
    REQUIRE(limit.admit(t0 + std::chrono::seconds(60), left_out));
    CHECK(left_out == 6);
    REQUIRE(limit.admit(t0 + std::chrono::seconds(61), left_out));
    CHECK(left_out == 0);
    // A clock that goes back (time zone or NTP step) starts a new window instead of blocking.
    REQUIRE(limit.admit(t0 - std::chrono::hours(1), left_out));
}

TEST_CASE("windows: the Event Log sink logs without throwing") {
    // What reaches the Event Log cannot be read back here (Wine's event log is a stub); this
    // checks that every kind of line, including one over the insertion-string limit, passes.
    auto sink = win::make_event_log_sink();
    REQUIRE(sink);
    auto logger = std::make_shared<spdlog::logger>("event-log-test", sink);
    logger->set_level(spdlog::level::trace);
    const auto previous = spdlog::default_logger();
    spdlog::set_default_logger(logger);
    CHECK_NOTHROW(authshim::proxycore::log_event(event_id::started, spdlog::level::info,
                                                 "authshim test: listening on {}",
                                                 "127.0.0.1:3128"));
    CHECK_NOTHROW(authshim::proxycore::log_event(event_id::credentials_paused, spdlog::level::err,
                                                 "authshim test: {}", std::string(40000, 'x')));
    CHECK_NOTHROW(logger->info("authshim test: not an event, not written"));
    CHECK_NOTHROW(logger->warn("authshim test: a warning \xE2\x82\xAC"));
    CHECK_NOTHROW(logger->error("authshim test: an error"));
    CHECK_NOTHROW(logger->flush());
    spdlog::set_default_logger(previous);
}

TEST_CASE("windows: registering and unregistering the Event Log source") {
    HKEY existing = nullptr;
    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, source_key, 0, KEY_READ, &existing) == ERROR_SUCCESS) {
        RegCloseKey(existing);
        WARN("skipped: an authshim Event Log source is registered here; not touching it");
        return;
    }
    const std::filesystem::path exe = win32::executable_path();
    if (const auto error = win::register_event_source(exe)) {
        if (error->find("(error 5)") != std::string::npos) {
            WARN("skipped: registering needs an elevated administrator: " << *error);
            return;
        }
        FAIL(*error);
    }

    std::vector<wchar_t> file(1024, L'\0');
    auto size = static_cast<DWORD>(file.size() * sizeof(wchar_t));
    const LSTATUS read_file =
        RegGetValueW(HKEY_LOCAL_MACHINE, source_key, L"EventMessageFile",
                     RRF_RT_REG_EXPAND_SZ | RRF_NOEXPAND, nullptr, file.data(), &size);
    DWORD types = 0;
    auto types_size = static_cast<DWORD>(sizeof(types));
    const LSTATUS read_types = RegGetValueW(HKEY_LOCAL_MACHINE, source_key, L"TypesSupported",
                                            RRF_RT_REG_DWORD, nullptr, &types, &types_size);

    CHECK_FALSE(win::unregister_event_source());
    CHECK(read_file == ERROR_SUCCESS);
    CHECK(std::wstring(file.data()) == exe.native());
    CHECK(read_types == ERROR_SUCCESS);
    CHECK(types == 7);

    HKEY gone = nullptr;
    CHECK(RegOpenKeyExW(HKEY_LOCAL_MACHINE, source_key, 0, KEY_READ, &gone) ==
          ERROR_FILE_NOT_FOUND);
    if (gone) RegCloseKey(gone);
    // Absent is fine.
    CHECK_FALSE(win::unregister_event_source());
}

TEST_CASE("windows: authshim.exe carries a message for every event ID") {
    const wchar_t* exe = _wgetenv(L"AUTHSHIM_EXE");
    if (!exe || !*exe) {
        WARN("skipped: set AUTHSHIM_EXE to the authshim.exe to check");
        return;
    }
    module_handle module;
    module.handle =
        LoadLibraryExW(exe, nullptr, LOAD_LIBRARY_AS_DATAFILE | LOAD_LIBRARY_AS_IMAGE_RESOURCE);
    INFO("AUTHSHIM_EXE=" << win32::narrow(exe));
    REQUIRE(module.handle);

    const std::wstring insertion = L"authshim-test-line \u20AC 127.0.0.1:3128";
    for (const DWORD id : {1UL, 2UL, 3UL, 4UL, 5UL, 6UL, 7UL, 8UL}) {
        const std::wstring text = format_message(module.handle, id, insertion);
        INFO("message " << id << ": " << win32::narrow(text));
        CHECK(text.find(insertion) != std::wstring::npos);
        // Real explanatory text, not just the line, and nothing left unexpanded.
        CHECK(text.size() > insertion.size() + 100);
        CHECK(text.find(L"%1") == std::wstring::npos);
        CHECK(text.find(L"authshim") < text.find(insertion));
    }
    for (const DWORD id :
         {win::generic_info_message, win::generic_warning_message, win::generic_error_message}) {
        const std::wstring text = format_message(module.handle, id, insertion);
        INFO("message " << id << ": " << win32::narrow(text));
        CHECK(text.rfind(insertion, 0) == 0);
        CHECK(text.size() <= insertion.size() + 2); // at most a line break after it
    }
    // No message under an ID that is not ours (IDs carry no severity or facility bits).
    CHECK(format_message(module.handle, 9, insertion).empty());
    CHECK(format_message(module.handle, 0xC0000003, insertion).empty());
}
