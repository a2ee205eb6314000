// `authshim winhttp show`: the WinHTTP machine proxy in both registry views, authshim's saved
// state, and the per-user WPAD, PAC and IE/WinINet settings that can route around authshim.
#include "service/windows/winhttp_registry.hpp"

#include "config/config.hpp"
#include "service/cli.hpp"
#include "service/winhttp_settings.hpp"

#include <winhttp.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace authshim::service::windows::detail {

namespace {

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

} // namespace

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

} // namespace authshim::service::windows::detail
