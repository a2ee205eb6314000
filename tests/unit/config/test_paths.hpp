#pragma once
// Paths for the config tests that mean the same thing on every platform, decided at run time
// (the same sources run on Linux and, cross-compiled, on Windows under Wine).
//
// On POSIX "/etc/authshim" is absolute. On Windows it is root-relative: it has no drive, and the
// loader resolves such a config path against the drive of the config directory. The tests write
// their expectations with `test_paths::absolute("/etc/authshim/...")`, which is that very path
// on POSIX and the same path on drive C: on Windows ("C:\etc\authshim\..."), so that on Linux
// they check exactly what they always did.

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

namespace authshim::test_paths {

/// True where "/etc" is an absolute path (POSIX); false on Windows.
inline bool posix_paths() {
    return std::filesystem::path("/etc").is_absolute();
}

/// The drive that `absolute` gives POSIX-style paths on Windows.
inline constexpr std::string_view windows_drive = "C:";

/// The platform's absolute path for `posix`, a POSIX absolute path such as "/etc/authshim":
/// `posix` itself on POSIX; on Windows the same path on drive C:, normalised as the loader
/// normalises the paths it resolves ("C:\etc\authshim").
inline std::filesystem::path absolute(std::string_view posix) {
    if (!posix.starts_with('/'))
        throw std::invalid_argument(
            "test_paths::absolute expects a path starting with '/', got \"" + std::string(posix) +
            "\"");
    std::filesystem::path path{std::string(posix)};
    if (path.is_absolute()) return path;
    return (std::filesystem::path(std::string(windows_drive)) / path).lexically_normal();
}

/// `text` escaped for use inside a JSON string literal (backslashes and quotes; paths hold no
/// control characters here).
inline std::string json_escaped(std::string_view text) {
    std::string out;
    for (const char c : text) {
        if (c == '\\' || c == '"') out += '\\';
        out += c;
    }
    return out;
}

/// A path's UTF-8 native form: how to_display_json and the diagnostics write it.
inline std::string utf8(const std::filesystem::path& path) {
    const std::u8string text = path.u8string();
    return std::string(text.begin(), text.end());
}

/// `path` as a JSON string literal, quotes included, as to_display_json writes it.
inline std::string json_string(const std::filesystem::path& path) {
    return '"' + json_escaped(utf8(path)) + '"';
}

} // namespace authshim::test_paths
