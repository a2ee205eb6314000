// `authshim winhttp apply|show|revert`: points the machine-wide WinHTTP proxy (the
// `WinHttpSettings` value netsh writes) at authshim, shows what can route around it, and puts
// the exact previous bytes back.
// `show` is in winhttp_show.cpp; the registry helpers both use are in winhttp_registry.cpp.
#include "service/windows/commands.hpp"

#include "config/winhttp_bypass.hpp"
#include "service/cli.hpp"
#include "service/windows/winhttp_registry.hpp"
#include "service/winhttp_settings.hpp"

#include <array>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace authshim::service::windows {

using namespace detail;

namespace {

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
    // Without --bypass, the config's `winhttp.bypass` (default <local>).
    std::optional<std::string> bypass;
    bool reapply = false;
    for (std::size_t i = 2; i < args.size(); ++i) {
        if (args[i] == "--reapply") {
            reapply = true;
        } else if (args[i] == "--bypass" && i + 1 < args.size()) {
            bypass = args[++i];
        } else if (args[i].starts_with("--bypass=")) {
            bypass = args[i].substr(9);
        } else {
            return usage(args[i] == "--bypass" ? "--bypass needs a list"
                                               : "unknown argument '" + args[i] + "'");
        }
    }
    if (bypass && !config::validate_winhttp_bypass(*bypass, &error))
        return usage("--bypass: " + error);
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
    if (!bypass) bypass = cfg->winhttp.bypass;

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
        const auto settings = applied_settings(proxy, *bypass, previous);
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
    // --reapply (an upgrade, after the old version's uninstall): when that uninstall did not
    // revert because the setting was changed by hand since authshim applied it, leave it so.
    if (reapply && old_state.exists) {
        for (std::size_t i = 0; i < views.size(); ++i) {
            const auto& applied = old_state.views[i].applied;
            if (!applied || !before[i].present || before[i].data != *applied) {
                std::cout << "WinHTTP left alone: the " << views[i].name
                          << " view was changed since authshim applied it (now: "
                          << describe_value(before[i]) << "); `winhttp apply` without --reapply "
                          << "sets it anyway\n";
                return 0;
            }
        }
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
    std::cout << "WinHTTP proxy set to " << proxy << " (bypass \"" << *bypass
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
