#include "service/windows/win32.hpp"

#include <shlobj.h>

#include <algorithm>
#include <cwctype>
#include <string>
#include <vector>

namespace authshim::service::win32 {

std::wstring widen(std::string_view utf8) {
    if (utf8.empty()) return {};
    const int size =
        MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), nullptr, 0);
    if (size <= 0) return {};
    std::wstring out(static_cast<std::size_t>(size), L'\0');
    MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), out.data(), size);
    return out;
}

std::string narrow(std::wstring_view utf16) {
    if (utf16.empty()) return {};
    const int size = WideCharToMultiByte(CP_UTF8, 0, utf16.data(), static_cast<int>(utf16.size()),
                                         nullptr, 0, nullptr, nullptr);
    if (size <= 0) return {};
    std::string out(static_cast<std::size_t>(size), '\0');
    WideCharToMultiByte(CP_UTF8, 0, utf16.data(), static_cast<int>(utf16.size()), out.data(), size,
                        nullptr, nullptr);
    return out;
}

std::string error_text(DWORD code) {
    wchar_t* buffer = nullptr;
    const DWORD length = FormatMessageW(
        FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
        nullptr, code, 0, reinterpret_cast<wchar_t*>(&buffer), 0, nullptr);
    std::string text;
    if (length != 0 && buffer) {
        text = narrow(std::wstring_view(buffer, length));
        while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
            text.pop_back();
    }
    if (buffer) LocalFree(buffer);
    if (text.empty()) text = "system error";
    return text + " (error " + std::to_string(code) + ")";
}

std::string last_error_text() {
    return error_text(GetLastError());
}

std::filesystem::path data_dir() {
    wchar_t* folder = nullptr;
    std::filesystem::path base;
    if (SUCCEEDED(SHGetKnownFolderPath(FOLDERID_ProgramData, 0, nullptr, &folder)) && folder)
        base = folder;
    if (folder) CoTaskMemFree(folder);
    if (base.empty()) {
        // Fall back to the environment, then to the documented default location.
        std::vector<wchar_t> value(MAX_PATH + 1);
        const DWORD n =
            GetEnvironmentVariableW(L"ProgramData", value.data(), static_cast<DWORD>(value.size()));
        base = (n > 0 && n < value.size()) ? std::filesystem::path(value.data())
                                           : std::filesystem::path(L"C:\\ProgramData");
    }
    return base / L"authshim";
}

namespace {
std::wstring lower(std::wstring s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](wchar_t c) { return static_cast<wchar_t>(std::towlower(c)); });
    return s;
}
} // namespace

bool is_within(const std::filesystem::path& inner_path, const std::filesystem::path& outer_path) {
    auto trimmed = [](const std::filesystem::path& p) {
        auto text = lower(p.lexically_normal().wstring());
        while (text.size() > 3 && (text.back() == L'\\' || text.back() == L'/'))
            text.pop_back();
        return text;
    };
    const auto inner = trimmed(inner_path);
    const auto outer = trimmed(outer_path);
    if (outer.empty()) return false;
    return inner.compare(0, outer.size(), outer) == 0 &&
           (inner.size() == outer.size() || inner[outer.size()] == L'\\' ||
            inner[outer.size()] == L'/');
}

bool is_authshim_folder(const std::filesystem::path& folder) {
    return is_within(folder, data_dir()) ||
           lower(folder.filename().wstring()).find(L"authshim") != std::wstring::npos;
}

std::filesystem::path program_files_dir() {
    wchar_t* folder = nullptr;
    std::filesystem::path result;
    if (SUCCEEDED(SHGetKnownFolderPath(FOLDERID_ProgramFiles, 0, nullptr, &folder)) && folder)
        result = folder;
    if (folder) CoTaskMemFree(folder);
    return result.empty() ? std::filesystem::path(L"C:\\Program Files") : result;
}

std::filesystem::path executable_path() {
    std::wstring buffer(MAX_PATH, L'\0');
    for (;;) {
        const DWORD n =
            GetModuleFileNameW(nullptr, buffer.data(), static_cast<DWORD>(buffer.size()));
        if (n == 0) return {};
        if (n < buffer.size()) {
            buffer.resize(n);
            return buffer;
        }
        buffer.resize(buffer.size() * 2);
    }
}

} // namespace authshim::service::win32
