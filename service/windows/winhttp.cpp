// `authshim winhttp apply|show|revert`: points the machine-wide WinHTTP proxy (the
// `WinHttpSettings` value netsh writes) at authshim, shows what can route around it, and puts
// the exact previous bytes back.
#include "service/windows/commands.hpp"

#include "service/cli.hpp"
#include "service/windows/win32.hpp"
#include "service/winhttp_settings.hpp"

#include <winhttp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace authshim::service::windows {

namespace {

using bytes = std::vector<std::uint8_t>;

constexpr wchar_t connections_path[] =
    L"SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Connections";
constexpr wchar_t settings_value[] = L"WinHttpSettings";
constexpr wchar_t state_path[] = L"SOFTWARE\\authshim\\WinHttp";
constexpr wchar_t state_parent[] = L"SOFTWARE\\authshim";
constexpr char state_display[] = "HKLM\\SOFTWARE\\authshim\\WinHttp";

/// One registry view of the value, and where its saved state lives.
struct view {
    const char* name;
    REGSAM sam;
    const wchar_t* previous;
    const wchar_t* previous_absent;
    const wchar_t* previous_type;
    const wchar_t* applied;
};
constexpr std::array<view, 2> views{{
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
    std::cerr << "usage: authshim winhttp apply [--bypass LIST] [--config FILE]\n"
                 "       authshim winhttp show [--config FILE]\n"
                 "       authshim winhttp revert [--force]\n";
    return 2;
}

/// Undoes a failed `apply`: views back to `before`, the saved state back to `old_state`.
void roll_back(const std::array<reg_value, 2>& before, const saved_state& old_state,
               std::size_t views_written) {
    for (std::size_t i = 0; i < views_written; ++i)
        if (const auto problem = restore_setting(views[i], before[i]))
            std::cerr << "authshim winhttp: could not restore the " << views[i].name
                      << " view: " << *problem << "\n";
    if (!old_state.exists) {
        delete_state();
        return;
    }
    for (std::size_t i = 0; i < views.size(); ++i)
        if (const auto& applied = old_state.views[i].applied)
            write_value(HKEY_LOCAL_MACHINE, state_path, views[i].applied, REG_BINARY, *applied,
                        KEY_WOW64_64KEY);
}

int apply(std::vector<std::string> args) {
    std::string error;
    const auto config_file = take_config_option(args, error);
    if (!error.empty()) return usage(error);
    std::string bypass = "<local>";
    for (std::size_t i = 2; i < args.size(); ++i) {
        if (args[i] == "--bypass" && i + 1 < args.size()) {
            bypass = args[++i];
        } else if (args[i].starts_with("--bypass=")) {
            bypass = args[i].substr(9);
        } else {
            return usage(args[i] == "--bypass" ? "--bypass needs a list"
                                               : "unknown argument '" + args[i] + "'");
        }
    }
    if (!validate_bypass(bypass, &error)) return usage("--bypass: " + error);
    if (!config_file) return usage("'winhttp apply' needs --config FILE");

    const auto cfg = load_config(*config_file, std::cerr, /*resolve_secrets=*/false);
    if (!cfg) {
        std::cerr << "authshim winhttp: nothing changed: the config " << display_path(*config_file)
                  << " could not be loaded\n";
        return 1;
    }
    if (cfg->listen.empty()) {
        std::cerr << "authshim winhttp: nothing changed: the config has no listen address\n";
        return 1;
    }
    const std::string proxy = client_address(cfg->listen.front());

    std::array<reg_value, 2> before;
    std::array<bytes, 2> wanted;
    for (std::size_t i = 0; i < views.size(); ++i) {
        before[i] = read_setting(views[i]);
        if (before[i].status != ERROR_SUCCESS) {
            std::cerr << "authshim winhttp: nothing changed: cannot read the " << views[i].name
                      << " WinHttpSettings value: " << reg_error(before[i].status) << "\n";
            return 1;
        }
        std::optional<winhttp_settings> previous;
        if (before[i].present && before[i].type == REG_BINARY)
            previous = decode(before[i].data, nullptr);
        // Same version as before (0x18 or 0x28), counter 0, flags 3: see applied_settings.
        const auto settings = applied_settings(proxy, bypass, previous);
        wanted[i] = encode(settings);
        if (!decode(wanted[i], &error)) { // e.g. a listen host that is not plain ASCII
            std::cerr << "authshim winhttp: nothing changed: cannot store proxy '" << proxy
                      << "': " << error << "\n";
            return 1;
        }
    }

    const saved_state old_state = read_state();
    if (old_state.status != ERROR_SUCCESS) {
        std::cerr << "authshim winhttp: nothing changed: cannot read " << state_display << ": "
                  << reg_error(old_state.status) << "\n";
        return 1;
    }
    // A second apply keeps the bytes saved by the first: they are what `revert` must restore.
    const bool keep_saved =
        old_state.exists && old_state.views[0].previous && old_state.views[1].previous;
    if (old_state.exists && !keep_saved) {
        std::cerr << "authshim winhttp: nothing changed: " << state_display
                  << " exists but is incomplete; check the WinHTTP setting (netsh winhttp show "
                     "proxy), then delete that key by hand\n";
        return 1;
    }
    if (!keep_saved) {
        for (std::size_t i = 0; i < views.size(); ++i) {
            const view& v = views[i];
            LONG rc = before[i].present ? write_value(HKEY_LOCAL_MACHINE, state_path, v.previous,
                                                      REG_BINARY, before[i].data, KEY_WOW64_64KEY)
                                        : write_dword(v.previous_absent, 1);
            if (rc == ERROR_SUCCESS && before[i].present && before[i].type != REG_BINARY)
                rc = write_dword(v.previous_type, before[i].type);
            if (rc != ERROR_SUCCESS) {
                std::cerr << "authshim winhttp: nothing changed: cannot save the previous "
                             "setting in "
                          << state_display << ": " << reg_error(rc) << "\n";
                delete_state();
                return 1;
            }
        }
    }

    for (std::size_t i = 0; i < views.size(); ++i) {
        const view& v = views[i];
        reg_value target{ERROR_SUCCESS, true, REG_BINARY, wanted[i]};
        std::optional<std::string> problem = restore_setting(v, target);
        if (!problem) {
            const LONG rc = write_value(HKEY_LOCAL_MACHINE, state_path, v.applied, REG_BINARY,
                                        wanted[i], KEY_WOW64_64KEY);
            if (rc != ERROR_SUCCESS)
                problem = "cannot record it in the saved state: " + reg_error(rc);
        }
        if (problem) {
            std::cerr << "authshim winhttp: cannot set the " << v.name
                      << " WinHttpSettings value: " << *problem << "\n";
            roll_back(before, old_state, i + 1);
            std::cerr << "authshim winhttp: the previous setting was put back\n";
            return 1;
        }
    }

    const saved_state now = read_state();
    std::cout << "WinHTTP proxy set to " << proxy << " (bypass \"" << bypass
              << "\") in the 64-bit and 32-bit views; previous setting saved"
              << (keep_saved ? " (by the first apply)" : "") << ": " << describe_previous(now)
              << "\n";
    std::cout << "Check for settings that route around it with: authshim winhttp show\n";
    return 0;
}

/// The restore step shared by `revert` and `service uninstall`.
bool revert_saved(bool force, bool quiet_when_nothing, std::ostream& out, std::ostream& err) {
    const saved_state state = read_state();
    if (state.status != ERROR_SUCCESS) {
        err << "authshim winhttp: cannot read " << state_display << ": " << reg_error(state.status)
            << "\n";
        return false;
    }
    if (!state.exists) {
        if (!quiet_when_nothing)
            out << "nothing to revert: authshim has not applied a WinHTTP setting\n";
        return true;
    }
    // Decide for both views before touching either: all or nothing.
    std::array<bool, 2> needed{};
    bool refused = false;
    for (std::size_t i = 0; i < views.size(); ++i) {
        const view& v = views[i];
        const saved_view& s = state.views[i];
        if (!s.previous) {
            err << "authshim winhttp: " << state_display << " has no saved previous value for the "
                << v.name << " view; fix the setting by hand (netsh winhttp), then delete that "
                << "key\n";
            return false;
        }
        const reg_value current = read_setting(v);
        if (current.status != ERROR_SUCCESS) {
            err << "authshim winhttp: cannot read the " << v.name
                << " WinHttpSettings value: " << reg_error(current.status) << "\n";
            return false;
        }
        const bool at_previous = current.present == s.previous->present &&
                                 (!current.present || current.data == s.previous->data);
        const bool at_applied = current.present && s.applied && current.data == *s.applied;
        needed[i] = !at_previous;
        if (needed[i] && !at_applied && !force) {
            err << "authshim winhttp: the " << v.name
                << " view was changed since authshim applied it (now: " << describe_value(current)
                << "); not reverting. Use 'authshim winhttp revert "
                << "--force' to restore the saved setting anyway: " << describe_value(*s.previous)
                << "\n";
            refused = true;
        }
    }
    if (refused) return false;
    for (std::size_t i = 0; i < views.size(); ++i) {
        if (!needed[i]) continue;
        if (const auto problem = restore_setting(views[i], *state.views[i].previous)) {
            err << "authshim winhttp: cannot restore the " << views[i].name
                << " WinHttpSettings value: " << *problem << " (saved state kept in "
                << state_display << ")\n";
            return false;
        }
    }
    if (const LONG rc = delete_state(); rc != ERROR_SUCCESS) {
        err << "authshim winhttp: restored, but cannot delete " << state_display << ": "
            << reg_error(rc) << "\n";
        return false;
    }
    out << "WinHTTP setting restored: " << describe_previous(state) << "\n";
    return true;
}

int revert(const std::vector<std::string>& args) {
    bool force = false;
    for (std::size_t i = 2; i < args.size(); ++i) {
        if (args[i] == "--force")
            force = true;
        else
            return usage("unknown argument '" + args[i] + "'");
    }
    return revert_saved(force, false, std::cout, std::cerr) ? 0 : 1;
}

// ---- show ----

std::optional<std::string> as_text(const reg_value& v) {
    if (!v.present || (v.type != REG_SZ && v.type != REG_EXPAND_SZ)) return std::nullopt;
    std::wstring text(v.data.size() / 2, L'\0');
    for (std::size_t i = 0; i < text.size(); ++i)
        text[i] = static_cast<wchar_t>(v.data[2 * i] | (v.data[2 * i + 1] << 8));
    while (!text.empty() && text.back() == L'\0')
        text.pop_back();
    return win32::narrow(text);
}

/// Where the WinHTTP proxy may point: authshim's listen addresses as clients reach them.
struct listen_set {
    std::vector<std::string> addresses; // lower-case `host:port`

    bool matches(const std::string& address) const {
        for (const auto& a : addresses)
            if (a == address) return true;
        // `localhost:PORT` reaches a loopback listener on PORT as well.
        if (address.starts_with("localhost:")) {
            const auto port = address.substr(10);
            for (const auto& a : addresses)
                if (a == "127.0.0.1:" + port || a == "[::1]:" + port) return true;
        }
        return false;
    }
};

std::string lower(std::string text) {
    for (auto& c : text)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return text;
}

/// Prints one view; adds its warnings. Returns the decoded value when there is one.
std::optional<winhttp_settings> show_view(const view& v, const reg_value& value,
                                          const std::optional<listen_set>& listen,
                                          std::vector<std::string>& warnings) {
    std::cout << "  " << v.name << " view: ";
    if (value.status != ERROR_SUCCESS) {
        std::cout << "could not read: " << reg_error(value.status) << "\n";
        return std::nullopt;
    }
    std::cout << describe_value(value) << "\n";
    std::optional<winhttp_settings> settings;
    if (value.present && value.type == REG_BINARY) settings = decode(value.data, nullptr);
    if (value.present && !settings) {
        std::cout << "    " << value.data.size() << " bytes:\n";
        std::string dump = hex_dump(value.data);
        for (std::size_t start = 0; start < dump.size();) {
            const auto end = std::min(dump.find('\n', start), dump.size());
            std::cout << "      " << dump.substr(start, end - start) << "\n";
            start = end + 1;
        }
    }
    if (settings) {
        std::cout << "    (version 0x" << std::hex << settings->version << ", counter " << std::dec
                  << settings->counter << ", flags 0x" << std::hex << settings->flags << std::dec
                  << (settings->trailing.empty() ? "" : ", with trailing bytes") << ")\n";
    }
    const std::string where = std::string("the ") + v.name + " view";
    if (settings && uses_named_proxy(*settings)) {
        std::vector<std::string> others;
        for (std::size_t start = 0; start <= settings->bypass.size();) {
            auto end = settings->bypass.find(';', start);
            if (end == std::string::npos) end = settings->bypass.size();
            const auto entry = settings->bypass.substr(start, end - start);
            if (!entry.empty() && lower(entry) != "<local>") others.push_back(entry);
            start = end + 1;
        }
        if (!others.empty()) {
            std::string list;
            for (const auto& o : others)
                list += (list.empty() ? "" : ", ") + o;
            warnings.push_back(where +
                               "'s bypass list sends these destinations directly, "
                               "around authshim: " +
                               list);
        }
    }
    if (!settings || !uses_named_proxy(*settings)) {
        if (!value.present || settings)
            warnings.push_back(where + " uses no proxy: WinHTTP clients go direct, not through "
                                       "authshim (fix: authshim winhttp apply)");
        return settings;
    }
    if (!listen) return settings;
    std::size_t matched = 0;
    const auto addresses = proxy_addresses(settings->proxy);
    for (const auto& a : addresses)
        if (listen->matches(a)) ++matched;
    if (matched == addresses.size()) {
        std::cout << "    points at authshim\n";
    } else if (matched > 0) {
        std::cout << "    only partly points at authshim\n";
        warnings.push_back(where + "'s proxy list (" + settings->proxy +
                           ") names other proxies besides authshim");
    } else {
        std::cout << "    does not point at authshim\n";
        warnings.push_back(where + " points at " + settings->proxy + ", not at authshim");
    }
    return settings;
}

/// The current user's IE/WinINet proxy settings, as WinHTTP's auto-proxy path sees them.
bool warn_current_user(std::vector<std::string>& warnings) {
    std::wstring user(256, L'\0');
    DWORD size = static_cast<DWORD>(user.size());
    user.resize(GetUserNameW(user.data(), &size) && size > 0 ? size - 1 : 0);
    const std::string who =
        "the current user" + (user.empty() ? std::string() : " (" + win32::narrow(user) + ")");

    WINHTTP_CURRENT_USER_IE_PROXY_CONFIG ie{};
    if (!WinHttpGetIEProxyConfigForCurrentUser(&ie)) {
        std::cout << "  " << who
                  << ": could not read the IE proxy settings: " << win32::last_error_text() << "\n";
        return false;
    }
    const std::size_t before = warnings.size();
    if (ie.fAutoDetect) warnings.push_back(who + " has 'Automatically detect settings' (WPAD) on");
    if (ie.lpszAutoConfigUrl)
        warnings.push_back(
            who + " has a proxy auto-config (PAC) script: " + win32::narrow(ie.lpszAutoConfigUrl));
    if (ie.lpszProxy)
        warnings.push_back(who + " has the IE/WinINet proxy " + win32::narrow(ie.lpszProxy) +
                           (ie.lpszProxyBypass
                                ? " (bypass \"" + win32::narrow(ie.lpszProxyBypass) + "\")"
                                : std::string()));
    for (auto* p : {ie.lpszAutoConfigUrl, ie.lpszProxy, ie.lpszProxyBypass})
        if (p) GlobalFree(p);
    std::cout << "  " << who << ": "
              << (warnings.size() == before ? "no WPAD, PAC or IE proxy" : "see the warnings")
              << "\n";
    return warnings.size() != before;
}

/// The per-user Internet settings of a service account's profile, where readable.
bool warn_service_profile(const wchar_t* sid, const char* account,
                          std::vector<std::string>& warnings) {
    const std::wstring base =
        std::wstring(sid) + L"\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings";
    const std::string who = std::string(account) + " (" + win32::narrow(sid) + ")";
    win32::unique_hkey key;
    const LONG rc = RegOpenKeyExW(HKEY_USERS, base.c_str(), 0, KEY_QUERY_VALUE, key.put());
    if (rc == ERROR_FILE_NOT_FOUND) {
        std::cout << "  " << who << ": no Internet settings in its profile (or not loaded)\n";
        return false;
    }
    if (rc != ERROR_SUCCESS) {
        std::cout << "  " << who << ": not readable: " << reg_error(rc) << "\n";
        return false;
    }
    const std::size_t before = warnings.size();
    const auto enabled = as_dword(query(key.get(), L"ProxyEnable")).value_or(0);
    const auto server = as_text(query(key.get(), L"ProxyServer"));
    if (enabled != 0 && server && !server->empty())
        warnings.push_back(who + " has the WinINet proxy " + *server + " (ProxyEnable=1)");
    if (const auto pac = as_text(query(key.get(), L"AutoConfigURL")); pac && !pac->empty())
        warnings.push_back(who + " has a proxy auto-config (PAC) script: " + *pac);
    const auto connections =
        read_value(HKEY_USERS, (base + L"\\Connections").c_str(), L"DefaultConnectionSettings", 0);
    if (connections.present && connections.data.size() > 8 && (connections.data[8] & 0x08))
        warnings.push_back(who + " has 'Automatically detect settings' (WPAD) on");
    std::cout << "  " << who << ": "
              << (warnings.size() == before ? "no WPAD, PAC or WinINet proxy" : "see the warnings")
              << "\n";
    return warnings.size() != before;
}

int show(std::vector<std::string> args) {
    std::string error;
    const auto config_file = take_config_option(args, error);
    if (!error.empty()) return usage(error);
    if (args.size() > 2) return usage("unknown argument '" + args[2] + "'");

    std::optional<listen_set> listen;
    std::string listen_text;
    if (!config_file) {
        listen_text = "unknown (no config file given)";
    } else if (std::error_code ec; !std::filesystem::exists(*config_file, ec)) {
        listen_text = "unknown (no config at " + display_path(*config_file) + ")";
    } else if (const auto cfg = load_config(*config_file, std::cerr, /*resolve_secrets=*/false)) {
        listen.emplace();
        for (const auto& ep : cfg->listen) {
            listen->addresses.push_back(lower(client_address(ep)));
            listen_text += (listen_text.empty() ? "" : ", ") + client_address(ep);
        }
        listen_text += " (from " + display_path(*config_file) + ")";
    } else {
        listen_text = "unknown (the config " + display_path(*config_file) +
                      " could not be loaded, see above)";
    }

    std::vector<std::string> warnings;
    std::cout << "authshim listens on: " << listen_text << "\n";
    std::cout << "WinHTTP machine proxy (HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\"
                 "Internet Settings\\Connections, WinHttpSettings):\n";
    std::array<reg_value, 2> current;
    for (std::size_t i = 0; i < views.size(); ++i) {
        current[i] = read_setting(views[i]);
        show_view(views[i], current[i], listen, warnings);
    }
    const bool readable = current[0].status == ERROR_SUCCESS || current[1].status == ERROR_SUCCESS;
    if (current[0].status == ERROR_SUCCESS && current[1].status == ERROR_SUCCESS &&
        (current[0].present != current[1].present || current[0].data != current[1].data))
        warnings.push_back("the 32-bit view differs from the 64-bit view: 32-bit programs (and "
                           "32-bit services) use a different WinHTTP proxy");

    const saved_state state = read_state();
    if (state.status != ERROR_SUCCESS) {
        std::cout << "Saved state: cannot read " << state_display << ": " << reg_error(state.status)
                  << "\n";
    } else if (!state.exists) {
        std::cout << "Saved state: none (authshim has not applied a WinHTTP setting)\n";
    } else {
        std::cout << "Saved state: authshim applied a WinHTTP setting; 'authshim winhttp revert' "
                     "restores: "
                  << describe_previous(state) << "\n";
        for (std::size_t i = 0; i < views.size(); ++i) {
            const auto& applied = state.views[i].applied;
            if (current[i].status == ERROR_SUCCESS &&
                (!applied || !current[i].present || current[i].data != *applied))
                warnings.push_back(std::string("the ") + views[i].name +
                                   " view was changed since authshim applied it");
        }
    }

    std::cout << "Per-user proxy settings (WinHTTP's automatic proxy uses these instead of the "
                 "machine setting):\n";
    bool per_user = warn_current_user(warnings);
    per_user |= warn_service_profile(L"S-1-5-18", "SYSTEM", warnings);
    per_user |= warn_service_profile(L"S-1-5-19", "LocalService", warnings);
    per_user |= warn_service_profile(L"S-1-5-20", "NetworkService", warnings);

    for (const auto& w : warnings)
        std::cout << "WARNING: " << w << "\n";
    if (per_user)
        std::cout << "Note: WinHTTP clients that open with WINHTTP_ACCESS_TYPE_AUTOMATIC_PROXY "
                     "(reportedly CryptoAPI on Windows 10 and later) or that use the auto-proxy "
                     "APIs (WinHttpGetIEProxyConfigForCurrentUser, WinHttpGetProxyForUrl) follow "
                     "the WPAD, PAC and IE proxy settings of the account they run as instead of "
                     "the machine-wide setting, and can route around authshim.\n";
    return readable ? 0 : 1;
}

} // namespace

int winhttp_command(const std::vector<std::string>& args) {
    if (args.size() < 2) return usage("missing subcommand");
    if (args[1] == "apply") return apply(args);
    if (args[1] == "show") return show(args);
    if (args[1] == "revert") return revert(args);
    return usage("unknown subcommand '" + args[1] + "'");
}

bool revert_winhttp_if_applied(std::ostream& out, std::ostream& err) {
    return revert_saved(false, true, out, err);
}

} // namespace authshim::service::windows
