#pragma once
/// Internal to `authshim winhttp` (winhttp.cpp, winhttp_show.cpp): the WinHttpSettings value in
/// both registry views, authshim's saved state for it, and shared text. Values are plain copies;
/// functions keep no state of their own. Thread safety: call from the main thread.

#include "service/windows/win32.hpp"

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace authshim::config {
struct endpoint;
} // namespace authshim::config

namespace authshim::service::windows::detail {

using bytes = std::vector<std::uint8_t>;

inline constexpr wchar_t connections_path[] =
    L"SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Connections";
inline constexpr wchar_t settings_value[] = L"WinHttpSettings";
inline constexpr wchar_t state_path[] = L"SOFTWARE\\authshim\\WinHttp";
inline constexpr wchar_t state_parent[] = L"SOFTWARE\\authshim";
inline constexpr char state_display[] = "HKLM\\SOFTWARE\\authshim\\WinHttp";

/// One registry view of the value, and where its saved state lives.
struct view {
    const char* name;
    REGSAM sam;
    const wchar_t* previous;
    const wchar_t* previous_absent;
    const wchar_t* previous_type;
    const wchar_t* applied;
};
inline constexpr std::array<view, 2> views{{
    {"64-bit", KEY_WOW64_64KEY, L"Previous64", L"Previous64Absent", L"Previous64Type",
     L"Applied64"},
    {"32-bit", KEY_WOW64_32KEY, L"Previous32", L"Previous32Absent", L"Previous32Type",
     L"Applied32"},
}};

/// A registry value as read: absent is not an error; `status` is set only for real failures.
struct reg_value {
    LONG status = ERROR_SUCCESS;
    bool present = false;
    DWORD type = REG_NONE;
    bytes data;
};

/// What `apply` saved for one view.
struct saved_view {
    std::optional<reg_value> previous; // present == false: the value did not exist
    std::optional<bytes> applied;
};

struct saved_state {
    LONG status = ERROR_SUCCESS;
    bool exists = false;
    std::array<saved_view, 2> views;
};

/// The system's text for a registry error, with a hint to elevate on ERROR_ACCESS_DENIED.
std::string reg_error(LONG status);

/// Reads value `name` of an open key (retrying while it grows between size and data reads).
reg_value query(HKEY key, const wchar_t* name);

/// Reads a value from `root\path` in registry view `sam` (0: the process's own view).
reg_value read_value(HKEY root, const wchar_t* path, const wchar_t* name, REGSAM sam);

/// Creates `root\path` as needed and writes the value.
LONG write_value(HKEY root, const wchar_t* path, const wchar_t* name, DWORD type,
                 std::span<const std::uint8_t> data, REGSAM sam);

/// Writes a REG_DWORD into the saved state (64-bit view).
LONG write_dword(const wchar_t* name, DWORD value);

/// Deletes a value; a missing key or value counts as success.
LONG delete_value(HKEY root, const wchar_t* path, const wchar_t* name, REGSAM sam);

/// The WinHttpSettings value in view `v`.
reg_value read_setting(const view& v);

/// Puts a view back to `value` (or removes it when absent) and checks by reading it back.
/// Returns the problem, or nothing on success.
std::optional<std::string> restore_setting(const view& v, const reg_value& value);

/// The value as a REG_DWORD, if it is one.
std::optional<DWORD> as_dword(const reg_value& v);

/// Reads the saved state (`state_display`); `exists` is false when there is none.
saved_state read_state();

/// Deletes the saved state, and `HKLM\SOFTWARE\authshim` too when nothing else is left in it.
LONG delete_state();

/// `describe()`, or what else the value is.
std::string describe_value(const reg_value& v);

/// What `revert` would restore, for both views.
std::string describe_previous(const saved_state& state);

/// The address WinHTTP clients should use for a listen endpoint: a wildcard listener is
/// reached through loopback (no client can connect to 0.0.0.0 or ::).
std::string client_address(const config::endpoint& ep);

/// A path as UTF-8 for messages.
std::string display_path(const std::filesystem::path& p);

/// Prints `problem` (if any) and the usage text to stderr; returns 2.
int usage(const std::string& problem);

/// `winhttp show [--config FILE]` (args[0] is "winhttp", args[1] "show"). winhttp_show.cpp.
int show(std::vector<std::string> args);

} // namespace authshim::service::windows::detail
