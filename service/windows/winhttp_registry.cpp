// Registry access and shared text for `authshim winhttp`: see winhttp_registry.hpp.
#include "service/windows/winhttp_registry.hpp"

#include "config/config.hpp"
#include "service/winhttp_settings.hpp"

#include <iostream>
#include <utility>

namespace authshim::service::windows::detail {

std::string reg_error(LONG status) {
    std::string text = win32::error_text(static_cast<DWORD>(status));
    if (status == ERROR_ACCESS_DENIED) text += "; run from an elevated prompt (as Administrator)";
    return text;
}

reg_value query(HKEY key, const wchar_t* name) {
    reg_value out;
    for (int attempt = 0; attempt < 4; ++attempt) {
        DWORD size = 0;
        LONG rc = RegQueryValueExW(key, name, nullptr, &out.type, nullptr, &size);
        if (rc == ERROR_FILE_NOT_FOUND) return out;
        if (rc != ERROR_SUCCESS) {
            out.status = rc;
            return out;
        }
        out.data.resize(size);
        rc = RegQueryValueExW(key, name, nullptr, &out.type, out.data.data(), &size);
        if (rc == ERROR_MORE_DATA) continue; // grew between the two calls
        if (rc == ERROR_FILE_NOT_FOUND) return out;
        if (rc != ERROR_SUCCESS) {
            out.status = rc;
            return out;
        }
        out.data.resize(size);
        out.present = true;
        return out;
    }
    out.status = ERROR_MORE_DATA;
    return out;
}

reg_value read_value(HKEY root, const wchar_t* path, const wchar_t* name, REGSAM sam) {
    win32::unique_hkey key;
    const LONG rc = RegOpenKeyExW(root, path, 0, KEY_QUERY_VALUE | sam, key.put());
    if (rc == ERROR_FILE_NOT_FOUND) return {};
    if (rc != ERROR_SUCCESS) return {rc, false, REG_NONE, {}};
    return query(key.get(), name);
}

LONG write_value(HKEY root, const wchar_t* path, const wchar_t* name, DWORD type,
                 std::span<const std::uint8_t> data, REGSAM sam) {
    win32::unique_hkey key;
    LONG rc = RegCreateKeyExW(root, path, 0, nullptr, REG_OPTION_NON_VOLATILE, KEY_SET_VALUE | sam,
                              nullptr, key.put(), nullptr);
    if (rc != ERROR_SUCCESS) return rc;
    return RegSetValueExW(key.get(), name, 0, type, data.empty() ? nullptr : data.data(),
                          static_cast<DWORD>(data.size()));
}

LONG write_dword(const wchar_t* name, DWORD value) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(&value);
    return write_value(HKEY_LOCAL_MACHINE, state_path, name, REG_DWORD,
                       std::span<const std::uint8_t>(p, sizeof value), KEY_WOW64_64KEY);
}

LONG delete_value(HKEY root, const wchar_t* path, const wchar_t* name, REGSAM sam) {
    win32::unique_hkey key;
    LONG rc = RegOpenKeyExW(root, path, 0, KEY_SET_VALUE | sam, key.put());
    if (rc == ERROR_FILE_NOT_FOUND) return ERROR_SUCCESS;
    if (rc != ERROR_SUCCESS) return rc;
    rc = RegDeleteValueW(key.get(), name);
    return rc == ERROR_FILE_NOT_FOUND ? ERROR_SUCCESS : rc;
}

reg_value read_setting(const view& v) {
    return read_value(HKEY_LOCAL_MACHINE, connections_path, settings_value, v.sam);
}

/// Puts a view back to `value` (or removes it when absent) and checks by reading it back.
std::optional<std::string> restore_setting(const view& v, const reg_value& value) {
    const LONG rc = value.present
                        ? write_value(HKEY_LOCAL_MACHINE, connections_path, settings_value,
                                      value.type, value.data, v.sam)
                        : delete_value(HKEY_LOCAL_MACHINE, connections_path, settings_value, v.sam);
    if (rc != ERROR_SUCCESS) return reg_error(rc);
    const auto now = read_setting(v);
    if (now.status != ERROR_SUCCESS) return "read back failed: " + reg_error(now.status);
    if (now.present != value.present || (value.present && now.data != value.data))
        return "read back differs from what was written";
    return std::nullopt;
}

std::optional<DWORD> as_dword(const reg_value& v) {
    if (!v.present || v.type != REG_DWORD || v.data.size() != sizeof(DWORD)) return std::nullopt;
    DWORD d = 0;
    for (std::size_t i = 0; i < sizeof(DWORD); ++i)
        d |= static_cast<DWORD>(v.data[i]) << (8 * i);
    return d;
}

saved_state read_state() {
    saved_state out;
    win32::unique_hkey key;
    const LONG rc = RegOpenKeyExW(HKEY_LOCAL_MACHINE, state_path, 0,
                                  KEY_QUERY_VALUE | KEY_WOW64_64KEY, key.put());
    if (rc == ERROR_FILE_NOT_FOUND) return out;
    if (rc != ERROR_SUCCESS) {
        out.status = rc;
        return out;
    }
    out.exists = true;
    for (std::size_t i = 0; i < views.size(); ++i) {
        const view& v = views[i];
        auto& s = out.views[i];
        if (as_dword(query(key.get(), v.previous_absent)).value_or(0) == 1) {
            s.previous = reg_value{};
        } else if (auto prev = query(key.get(), v.previous); prev.present) {
            prev.type = as_dword(query(key.get(), v.previous_type)).value_or(REG_BINARY);
            s.previous = std::move(prev);
        }
        if (auto applied = query(key.get(), v.applied); applied.present)
            s.applied = std::move(applied.data);
    }
    return out;
}

/// Deletes the saved state, and `HKLM\SOFTWARE\authshim` too when nothing else is left in it.
LONG delete_state() {
    LONG rc = RegDeleteKeyExW(HKEY_LOCAL_MACHINE, state_path, KEY_WOW64_64KEY, 0);
    if (rc != ERROR_SUCCESS && rc != ERROR_FILE_NOT_FOUND) return rc;
    win32::unique_hkey parent;
    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, state_parent, 0, KEY_QUERY_VALUE | KEY_WOW64_64KEY,
                      parent.put()) == ERROR_SUCCESS) {
        DWORD subkeys = 1, values = 1;
        const bool empty =
            RegQueryInfoKeyW(parent.get(), nullptr, nullptr, nullptr, &subkeys, nullptr, nullptr,
                             &values, nullptr, nullptr, nullptr, nullptr) == ERROR_SUCCESS &&
            subkeys == 0 && values == 0;
        parent.reset();
        if (empty) RegDeleteKeyExW(HKEY_LOCAL_MACHINE, state_parent, KEY_WOW64_64KEY, 0);
    }
    return ERROR_SUCCESS;
}

/// `describe()`, or what else the value is.
std::string describe_value(const reg_value& v) {
    if (!v.present) return "not set (direct access)";
    if (v.type != REG_BINARY)
        return "unreadable: not REG_BINARY (type " + std::to_string(v.type) + ", " +
               std::to_string(v.data.size()) + " bytes)";
    std::string error;
    if (const auto s = decode(v.data, &error)) return describe(*s);
    return "unreadable: " + error;
}

std::string describe_previous(const saved_state& state) {
    const auto& a = state.views[0].previous;
    const auto& b = state.views[1].previous;
    if (!a || !b) return "incomplete saved state";
    if (a->present == b->present && a->data == b->data) return describe_value(*a);
    return "64-bit view: " + describe_value(*a) + "; 32-bit view: " + describe_value(*b);
}

/// The address WinHTTP clients should use for a listen endpoint: a wildcard listener is
/// reached through loopback (no client can connect to 0.0.0.0 or ::).
std::string client_address(const config::endpoint& ep) {
    if (ep.host == "0.0.0.0") return "127.0.0.1:" + std::to_string(ep.port);
    if (ep.host == "::") return "[::1]:" + std::to_string(ep.port);
    return ep.to_string();
}

std::string display_path(const std::filesystem::path& p) {
    return win32::narrow(p.wstring());
}

int usage(const std::string& problem) {
    if (!problem.empty()) std::cerr << "authshim winhttp: " << problem << "\n";
    std::cerr << "usage: authshim winhttp apply [--bypass LIST] [--config FILE] [--reapply]\n"
                 "       authshim winhttp show [--config FILE]\n"
                 "       authshim winhttp revert [--force]\n";
    return 2;
}

} // namespace authshim::service::windows::detail
