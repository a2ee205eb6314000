#pragma once
/// Small Win32 helpers shared by service/windows/: UTF-8 <-> UTF-16, error texts, RAII handles,
/// well-known folders. Windows only (CMake compiles service/windows/ for WIN32 targets alone).
/// Thread safety: free functions without shared state; handle wrappers are single-owner.

#include <windows.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

namespace authshim::service::win32 {

/// UTF-8 to UTF-16 and back; invalid sequences become U+FFFD (never throws on bad input).
std::wstring widen(std::string_view utf8);
std::string narrow(std::wstring_view utf16);

/// "Access is denied. (error 5)": the system's text for `code` (default: GetLastError()),
/// trimmed, with the number.
std::string error_text(DWORD code);
std::string last_error_text();

/// `%ProgramData%\authshim` (C:\ProgramData\authshim on a default install).
std::filesystem::path data_dir();

/// `%ProgramFiles%` (C:\Program Files on a default install; the native 64-bit folder).
std::filesystem::path program_files_dir();

/// Whether `inner` is `outer` or below it (case-insensitive, lexically).
bool is_within(const std::filesystem::path& inner, const std::filesystem::path& outer);

/// Whether `folder` is authshim's own, so that its ACL may be replaced: the data folder or below
/// it, or a folder whose name contains "authshim". Any other folder (C:\, a shared folder) keeps
/// its ACL: replacing it would lock other users out of their files.
bool is_authshim_folder(const std::filesystem::path& folder);

/// The full path of the running executable.
std::filesystem::path executable_path();

/// A registry key handle closed on destruction.
class unique_hkey {
public:
    unique_hkey() = default;
    explicit unique_hkey(HKEY key) noexcept : key_(key) {}
    unique_hkey(unique_hkey&& other) noexcept : key_(std::exchange(other.key_, nullptr)) {}
    unique_hkey& operator=(unique_hkey&& other) noexcept {
        if (this != &other) {
            reset();
            key_ = std::exchange(other.key_, nullptr);
        }
        return *this;
    }
    unique_hkey(const unique_hkey&) = delete;
    unique_hkey& operator=(const unique_hkey&) = delete;
    ~unique_hkey() { reset(); }

    HKEY get() const noexcept { return key_; }
    HKEY* put() noexcept {
        reset();
        return &key_;
    }
    explicit operator bool() const noexcept { return key_ != nullptr; }
    void reset() noexcept {
        if (key_) RegCloseKey(key_);
        key_ = nullptr;
    }

private:
    HKEY key_ = nullptr;
};

/// A service-control-manager handle (SCM or service) closed on destruction.
class unique_sc_handle {
public:
    unique_sc_handle() = default;
    explicit unique_sc_handle(SC_HANDLE handle) noexcept : handle_(handle) {}
    unique_sc_handle(unique_sc_handle&& other) noexcept
        : handle_(std::exchange(other.handle_, nullptr)) {}
    unique_sc_handle& operator=(unique_sc_handle&& other) noexcept {
        if (this != &other) {
            reset();
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }
    unique_sc_handle(const unique_sc_handle&) = delete;
    unique_sc_handle& operator=(const unique_sc_handle&) = delete;
    ~unique_sc_handle() { reset(); }

    SC_HANDLE get() const noexcept { return handle_; }
    explicit operator bool() const noexcept { return handle_ != nullptr; }
    void reset() noexcept {
        if (handle_) CloseServiceHandle(handle_);
        handle_ = nullptr;
    }

private:
    SC_HANDLE handle_ = nullptr;
};

} // namespace authshim::service::win32
