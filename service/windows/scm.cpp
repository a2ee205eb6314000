// The `service` commands that install, remove, start, stop and query the Windows service, and
// the reload request `authshim reload` sends it (running under the service control manager is
// service_main.cpp).
#include "service/windows/scm.hpp"

#include "config/loader.hpp"
#include "proxycore/events.hpp"
#include "service/cli.hpp"
#include "service/logging.hpp"
#include "service/platform.hpp"
#include "service/windows/acl.hpp"
#include "service/windows/commands.hpp"
#include "service/windows/event_log.hpp"
#include "service/windows/service_main.hpp"
#include "service/windows/win32.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cwctype>
#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace authshim::service::windows {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr wchar_t display_name[] = L"authshim proxy authentication shim";
constexpr wchar_t description[] =
    L"Local proxy for WinHTTP (CRL, AIA, OCSP and update fetches): forwards requests to the "
    L"upstream proxy and answers its authentication with stored machine credentials.";
constexpr wchar_t service_account[] = L"NT AUTHORITY\\LocalService";

int usage(const std::string& message) {
    std::cerr << "authshim: " << message << "\n\n"
              << "usage: authshim service install [--config FILE] [--start auto|demand] [--now]\n"
              << "       authshim service uninstall [--remove-logs]\n"
              << "       authshim service start|stop|status\n"
              << "       authshim service run [--config FILE]\n";
    return 2;
}

std::string quote(const fs::path& path) {
    return "\"" + path.string() + "\"";
}

/// Opens the SCM; explains the usual reason (not elevated) when that fails.
win32::unique_sc_handle open_scm(DWORD access, std::ostream& err = std::cerr) {
    win32::unique_sc_handle scm(OpenSCManagerW(nullptr, nullptr, access));
    if (!scm) {
        const DWORD error = GetLastError();
        err << "authshim: cannot open the service control manager: " << win32::error_text(error)
            << "\n";
        if (error == ERROR_ACCESS_DENIED)
            err << "authshim: run this from an elevated prompt (as Administrator)\n";
    }
    return scm;
}

std::string state_name(DWORD state) {
    switch (state) {
    case SERVICE_STOPPED:
        return "stopped";
    case SERVICE_START_PENDING:
        return "starting";
    case SERVICE_STOP_PENDING:
        return "stopping";
    case SERVICE_RUNNING:
        return "running";
    case SERVICE_CONTINUE_PENDING:
        return "continuing";
    case SERVICE_PAUSE_PENDING:
        return "pausing";
    case SERVICE_PAUSED:
        return "paused";
    }
    return "in state " + std::to_string(state);
}

std::optional<SERVICE_STATUS_PROCESS> query_status(SC_HANDLE service) {
    SERVICE_STATUS_PROCESS status{};
    DWORD needed = 0;
    if (!QueryServiceStatusEx(service, SC_STATUS_PROCESS_INFO, reinterpret_cast<BYTE*>(&status),
                              sizeof status, &needed))
        return std::nullopt;
    return status;
}

/// Waits while the service is in `pending`, for at most `limit`. Returns the last status.
std::optional<SERVICE_STATUS_PROCESS> wait_while(SC_HANDLE service, DWORD pending,
                                                 std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    auto status = query_status(service);
    while (status && status->dwCurrentState == pending &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(200ms);
        status = query_status(service);
    }
    return status;
}

/// Why the service stopped, from its exit codes.
std::string exit_reason(const SERVICE_STATUS_PROCESS& status) {
    if (status.dwWin32ExitCode == ERROR_SERVICE_SPECIFIC_ERROR) {
        switch (status.dwServiceSpecificExitCode) {
        case exit_config_invalid:
            return "the configuration is invalid";
        case exit_start_failed:
            return "it could not listen or start";
        default:
            return "service-specific error " + std::to_string(status.dwServiceSpecificExitCode);
        }
    }
    if (status.dwWin32ExitCode == NO_ERROR) return "it exited normally";
    return win32::error_text(status.dwWin32ExitCode);
}

std::string where_to_look() {
    return "see the Event Log (Application, source authshim) and " +
           (win32::data_dir() / L"logs" / L"authshim.log").string();
}

/// Stops the service if it runs and waits until it has stopped. False (with a message) when it
/// did not stop in time.
bool stop_and_wait(SC_HANDLE service, std::chrono::milliseconds limit) {
    auto status = query_status(service);
    if (!status) {
        std::cerr << "authshim: cannot query the service: " << win32::last_error_text() << "\n";
        return false;
    }
    if (status->dwCurrentState == SERVICE_START_PENDING) {
        // It cannot take a stop until it has started (or failed to).
        status = wait_while(service, SERVICE_START_PENDING, 30s);
        if (!status) {
            std::cerr << "authshim: cannot query the service: " << win32::last_error_text() << "\n";
            return false;
        }
    }
    if (status->dwCurrentState == SERVICE_STOPPED) return true;
    const DWORD pid = status->dwProcessId;
    if (status->dwCurrentState != SERVICE_STOP_PENDING) {
        SERVICE_STATUS plain{};
        if (!ControlService(service, SERVICE_CONTROL_STOP, &plain) &&
            GetLastError() != ERROR_SERVICE_NOT_ACTIVE) {
            std::cerr << "authshim: cannot stop the service: " << win32::last_error_text() << "\n";
            return false;
        }
    }
    status = wait_while(service, SERVICE_STOP_PENDING, limit);
    if (!status || status->dwCurrentState != SERVICE_STOPPED) {
        std::cerr << "authshim: the service did not stop within " << limit.count() / 1000 << " s ("
                  << (status ? state_name(status->dwCurrentState) : "unknown") << ")\n";
        return false;
    }
    // The SCM reports STOPPED when the service says so; wait for the process too, so that its
    // executable can be replaced or removed right after.
    if (pid != 0) {
        if (HANDLE process = OpenProcess(SYNCHRONIZE, FALSE, pid)) {
            WaitForSingleObject(process, 10000);
            CloseHandle(process);
        }
    }
    return true;
}

// ---------------------------------------------------------------------------------------------
// Installing and controlling.

bool parse_start(const std::string& value, DWORD& start_type) {
    if (value == "auto") {
        start_type = SERVICE_AUTO_START;
        return true;
    }
    if (value == "demand" || value == "manual") {
        start_type = SERVICE_DEMAND_START;
        return true;
    }
    return false;
}

int start_and_wait();

int service_install(std::vector<std::string> args) {
    std::string error;
    const auto file = take_config_option(args, error);
    if (!error.empty()) return usage(error);
    DWORD start_type = SERVICE_AUTO_START;
    bool start_now = false;
    for (std::size_t i = 2; i < args.size(); ++i) {
        std::string value;
        if (args[i] == "--now") {
            start_now = true;
            continue;
        }
        if (args[i] == "--start" && i + 1 < args.size())
            value = args[++i];
        else if (args[i].starts_with("--start="))
            value = args[i].substr(8);
        else if (args[i] == "--start")
            return usage("--start needs auto or demand");
        else
            return usage("unknown argument '" + args[i] + "'");
        if (!parse_start(value, start_type))
            return usage("--start must be auto or demand, not '" + value + "'");
    }
    const fs::path config_file = fs::absolute(*file);
    std::error_code ec;
    if (!fs::is_regular_file(config_file, ec)) {
        std::cerr << "authshim: the config file " << config_file.string()
                  << " does not exist; write it first (see packaging/authshim.example.json), "
                     "then install\n";
        return 1;
    }
    // Secrets are not resolved here: a credman entry lives in the service account's vault,
    // which the installing admin cannot read. `authshim check` as the service would.
    if (!load_config(config_file, std::cerr, /*resolve_secrets=*/false)) {
        std::cerr << "authshim: not installed: fix the configuration first (authshim check "
                     "--config "
                  << quote(config_file) << ")\n";
        return 1;
    }

    const auto scm = open_scm(SC_MANAGER_CREATE_SERVICE | SC_MANAGER_CONNECT);
    if (!scm) return 1;
    int warnings = 0;
    auto warn = [&warnings](const std::string& what) {
        ++warnings;
        std::cerr << "warning: " << what << "\n";
    };
    // LocalService sees no mapped drives and is anonymous on the network.
    const fs::path exe = win32::executable_path();
    // The service runs this very file: where ordinary users may write, one of them could replace
    // it and run code as the service.
    if (!win32::is_within(exe, win32::program_files_dir()))
        warn("the service will run " + exe.string() + ", outside " +
             win32::program_files_dir().string() +
             ": make sure ordinary users cannot replace it, or install it under " +
             (win32::program_files_dir() / L"authshim").string() + " and run that copy's " +
             "`service install`");
    for (const auto& [what, path] :
         {std::pair{"the config file", config_file}, std::pair{"authshim.exe", exe}}) {
        const std::wstring root = path.root_path().wstring();
        const UINT type = root.empty() ? DRIVE_UNKNOWN : GetDriveTypeW(root.c_str());
        if (type != DRIVE_FIXED)
            warn(std::string(what) + " " + path.string() +
                 " is not on a local fixed drive: the service (LocalService) cannot reach mapped "
                 "or network drives; copy it to a local disk");
    }
    const std::wstring command_line =
        L"\"" + exe.wstring() + L"\" service run --config \"" + config_file.wstring() + L"\"";

    auto create = [&] {
        return win32::unique_sc_handle(
            CreateServiceW(scm.get(), service_name, display_name, SERVICE_ALL_ACCESS,
                           SERVICE_WIN32_OWN_PROCESS, start_type, SERVICE_ERROR_NORMAL,
                           command_line.c_str(), nullptr, nullptr, nullptr, service_account, L""));
    };
    win32::unique_sc_handle service = create();
    // A service deleted a moment ago (an upgrade's uninstall) stays "marked for deletion" while
    // anyone holds a handle to it (services.msc, a monitoring agent): wait for them to let go.
    for (int waited = 0; !service && GetLastError() == ERROR_SERVICE_MARKED_FOR_DELETE; ++waited) {
        if (waited == 0)
            std::cout << "the previous authshim service is still being deleted (a program such "
                         "as services.msc holds it open); waiting up to 60 s\n";
        if (waited == 120) {
            std::cerr << "authshim: the previous service is still marked for deletion after 60 "
                         "s: close the Services console (and other tools holding it), then "
                         "install again\n";
            return 1;
        }
        std::this_thread::sleep_for(500ms);
        service = create();
    }
    bool updated = false;
    if (!service && GetLastError() == ERROR_SERVICE_EXISTS) {
        // Installing again updates the existing service (new path, config or start type).
        service =
            win32::unique_sc_handle(OpenServiceW(scm.get(), service_name, SERVICE_ALL_ACCESS));
        if (service &&
            !ChangeServiceConfigW(service.get(), SERVICE_WIN32_OWN_PROCESS, start_type,
                                  SERVICE_ERROR_NORMAL, command_line.c_str(), nullptr, nullptr,
                                  nullptr, service_account, L"", display_name)) {
            std::cerr << "authshim: cannot update the existing service: "
                      << win32::last_error_text() << "\n";
            return 1;
        }
        updated = true;
    }
    if (!service) {
        std::cerr << "authshim: cannot create the service: " << win32::last_error_text() << "\n";
        return 1;
    }
    std::cout << (updated ? "updated" : "installed") << " service authshim: "
              << (start_type == SERVICE_AUTO_START ? "automatic" : "manual (demand)")
              << " start, account " << win32::narrow(service_account) << ", command line "
              << win32::narrow(command_line) << "\n";

    SERVICE_DESCRIPTIONW desc{const_cast<wchar_t*>(description)};
    if (!ChangeServiceConfig2W(service.get(), SERVICE_CONFIG_DESCRIPTION, &desc))
        warn("could not set the service description: " + win32::last_error_text());

    if (start_type == SERVICE_AUTO_START) {
        // Not delayed: CryptoAPI fetches CRLs early in boot.
        SERVICE_DELAYED_AUTO_START_INFO delayed{FALSE};
        if (!ChangeServiceConfig2W(service.get(), SERVICE_CONFIG_DELAYED_AUTO_START_INFO, &delayed))
            warn("could not clear delayed automatic start: " + win32::last_error_text());
    }

    // The service SID (NT SERVICE\authshim) is what the config folder's ACL grants access to.
    SERVICE_SID_INFO sid_info{SERVICE_SID_TYPE_UNRESTRICTED};
    if (!ChangeServiceConfig2W(service.get(), SERVICE_CONFIG_SERVICE_SID_INFO, &sid_info))
        warn("could not set the service SID type to unrestricted: " + win32::last_error_text() +
             " (Wine does not implement it; on Windows check with `sc qsidtype authshim`)");

    // Recovery: restart after 5 s, 30 s, then 60 s; the failure count resets after a day.
    SC_ACTION actions[3] = {
        {SC_ACTION_RESTART, 5000}, {SC_ACTION_RESTART, 30000}, {SC_ACTION_RESTART, 60000}};
    SERVICE_FAILURE_ACTIONSW failure{};
    failure.dwResetPeriod = 24 * 60 * 60;
    failure.cActions = 3;
    failure.lpsaActions = actions;
    if (!ChangeServiceConfig2W(service.get(), SERVICE_CONFIG_FAILURE_ACTIONS, &failure))
        warn("could not set the recovery actions: " + win32::last_error_text());
    // Also when the service stops itself with an error (a config it cannot load), not only when
    // the process crashes.
    SERVICE_FAILURE_ACTIONS_FLAG failure_flag{TRUE};
    if (!ChangeServiceConfig2W(service.get(), SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, &failure_flag))
        warn("could not apply the recovery actions to non-crash failures: " +
             win32::last_error_text());
    // Read the recovery actions back: Wine accepts them and forgets them.
    {
        std::vector<BYTE> buffer(8192);
        DWORD needed = 0;
        bool verified = false;
        if (QueryServiceConfig2W(service.get(), SERVICE_CONFIG_FAILURE_ACTIONS, buffer.data(),
                                 static_cast<DWORD>(buffer.size()), &needed)) {
            const auto* read = reinterpret_cast<const SERVICE_FAILURE_ACTIONSW*>(buffer.data());
            verified = read->cActions == 3 && read->lpsaActions &&
                       read->lpsaActions[0].Type == SC_ACTION_RESTART &&
                       read->lpsaActions[0].Delay == 5000 && read->lpsaActions[2].Delay == 60000;
        }
        if (!verified)
            warn("the recovery actions did not read back as set (Wine ignores them; on Windows "
                 "check with `sc qfailure authshim`)");
    }

    if (auto problem = register_event_source(exe))
        warn("could not register the Event Log source: " + *problem);

    if (!protect_config_folder(config_file, std::cout, std::cerr)) ++warnings;
    const fs::path logs = win32::data_dir() / L"logs";
    fs::create_directories(logs, ec);
    if (auto problem = restrict_folder_checked(logs, folder_use::logs)) warn(*problem);

    if (warnings) std::cout << warnings << " warning(s), see above\n";
    if (start_now) {
        // An update of a running service takes effect with a restart.
        if (updated) {
            if (!stop_and_wait(service.get(), 60s)) return 1;
        }
        service.reset();
        return start_and_wait();
    }
    std::cout << "start it with `authshim service start`"
              << (start_type == SERVICE_AUTO_START ? " (it also starts at every boot)" : "")
              << "; point WinHTTP at it with `authshim winhttp apply`\n";
    return 0;
}

int service_uninstall(const std::vector<std::string>& args) {
    bool remove_logs = false;
    for (std::size_t i = 2; i < args.size(); ++i) {
        if (args[i] == "--remove-logs")
            remove_logs = true;
        else
            return usage("unknown argument '" + args[i] + "'");
    }
    const auto scm = open_scm(SC_MANAGER_CONNECT);
    if (!scm) return 1;
    bool ok = true;
    win32::unique_sc_handle service(
        OpenServiceW(scm.get(), service_name, SERVICE_STOP | SERVICE_QUERY_STATUS | DELETE));
    if (!service) {
        const DWORD error = GetLastError();
        if (error != ERROR_SERVICE_DOES_NOT_EXIST) {
            std::cerr << "authshim: cannot open the service: " << win32::error_text(error) << "\n";
            return 1;
        }
        std::cout << "service authshim is not installed\n";
    } else {
        if (!stop_and_wait(service.get(), 60s)) return 1;
        if (!DeleteService(service.get()) && GetLastError() != ERROR_SERVICE_MARKED_FOR_DELETE) {
            std::cerr << "authshim: cannot delete the service: " << win32::last_error_text()
                      << "\n";
            return 1;
        }
        service.reset();
        std::cout << "stopped and removed service authshim\n";
    }
    if (auto problem = unregister_event_source()) {
        std::cerr << "warning: could not remove the Event Log source: " << *problem << "\n";
    }
    if (!revert_winhttp_if_applied(std::cout, std::cerr)) ok = false;
    if (remove_logs) {
        // The service has stopped (and its process ended): nothing holds the files open.
        const fs::path logs = win32::data_dir() / L"logs";
        std::size_t removed = 0;
        if (auto problem = remove_tree(logs, removed)) {
            std::cerr << "warning: could not remove " << logs.string() << ": " << *problem << "\n";
            ok = false;
        } else if (removed > 0) {
            std::cout << "removed " << logs.string() << "\n";
        }
        std::cout << "the configuration in " << win32::data_dir().string() << " is kept\n";
    } else {
        std::cout << "the configuration and logs in " << win32::data_dir().string()
                  << " are kept\n";
    }
    return ok ? 0 : 1;
}

win32::unique_sc_handle open_service(DWORD access, std::ostream& err = std::cerr) {
    const auto scm = open_scm(SC_MANAGER_CONNECT, err);
    if (!scm) return {};
    win32::unique_sc_handle service(OpenServiceW(scm.get(), service_name, access));
    if (!service) {
        const DWORD error = GetLastError();
        if (error == ERROR_SERVICE_DOES_NOT_EXIST) {
            err << "authshim: service authshim is not installed (authshim service install)\n";
        } else {
            err << "authshim: cannot open the service: " << win32::error_text(error) << "\n";
            if (error == ERROR_ACCESS_DENIED)
                err << "authshim: run this from an elevated prompt (as Administrator)\n";
        }
    }
    return service;
}

/// The service's command line (`"...\authshim.exe" service run --config "FILE"`), or nothing
/// when it cannot be read.
std::optional<std::wstring> binary_path(SC_HANDLE service) {
    DWORD needed = 0;
    QueryServiceConfigW(service, nullptr, 0, &needed);
    if (needed == 0) return std::nullopt;
    std::vector<BYTE> buffer(needed);
    auto* config = reinterpret_cast<QUERY_SERVICE_CONFIGW*>(buffer.data());
    if (!QueryServiceConfigW(service, config, needed, &needed) || !config->lpBinaryPathName)
        return std::nullopt;
    return std::wstring(config->lpBinaryPathName);
}

std::wstring lower(std::wstring text) {
    for (auto& c : text)
        c = static_cast<wchar_t>(std::towlower(static_cast<wint_t>(c)));
    return text;
}

/// Starts the installed service and waits (up to 30 s) until it runs or has stopped.
int start_and_wait() {
    const auto service = open_service(SERVICE_START | SERVICE_QUERY_STATUS);
    if (!service) return 1;
    if (!StartServiceW(service.get(), 0, nullptr)) {
        const DWORD error = GetLastError();
        if (error != ERROR_SERVICE_ALREADY_RUNNING) {
            std::cerr << "authshim: cannot start the service: " << win32::error_text(error) << "\n";
            return 1;
        }
    }
    const auto status = wait_while(service.get(), SERVICE_START_PENDING, 30s);
    if (status && status->dwCurrentState == SERVICE_RUNNING) {
        std::cout << "service authshim is running (pid " << status->dwProcessId << ")\n";
        return 0;
    }
    if (status && status->dwCurrentState == SERVICE_STOPPED) {
        std::cerr << "authshim: the service stopped right after starting: " << exit_reason(*status)
                  << "; " << where_to_look() << "\n";
        return 1;
    }
    std::cerr << "authshim: the service is "
              << (status ? state_name(status->dwCurrentState) : "in an unknown state")
              << " after 30 s; " << where_to_look() << "\n";
    return 1;
}

int service_start(const std::vector<std::string>& args) {
    if (args.size() > 2) return usage("unknown argument '" + args[2] + "'");
    return start_and_wait();
}

int service_stop(const std::vector<std::string>& args) {
    if (args.size() > 2) return usage("unknown argument '" + args[2] + "'");
    const auto service = open_service(SERVICE_STOP | SERVICE_QUERY_STATUS);
    if (!service) return 1;
    if (!stop_and_wait(service.get(), 60s)) return 1;
    std::cout << "service authshim is stopped\n";
    return 0;
}

/// Exit codes follow the LSB `status` convention: 0 running, 3 not running, 4 unknown (not
/// installed or not queryable).
int service_status(const std::vector<std::string>& args) {
    if (args.size() > 2) return usage("unknown argument '" + args[2] + "'");
    const auto service = open_service(SERVICE_QUERY_STATUS | SERVICE_QUERY_CONFIG);
    if (!service) return 4;
    const auto status = query_status(service.get());
    if (!status) {
        std::cerr << "authshim: cannot query the service: " << win32::last_error_text() << "\n";
        return 4;
    }
    std::cout << "service authshim: " << state_name(status->dwCurrentState);
    if (status->dwProcessId) std::cout << " (pid " << status->dwProcessId << ")";
    if (status->dwCurrentState == SERVICE_STOPPED && status->dwWin32ExitCode != NO_ERROR &&
        status->dwWin32ExitCode != ERROR_SERVICE_NEVER_STARTED)
        std::cout << "; last stop: " << exit_reason(*status);
    std::cout << "\n";
    DWORD needed = 0;
    QueryServiceConfigW(service.get(), nullptr, 0, &needed);
    if (needed > 0) {
        std::vector<BYTE> buffer(needed);
        auto* config = reinterpret_cast<QUERY_SERVICE_CONFIGW*>(buffer.data());
        if (QueryServiceConfigW(service.get(), config, needed, &needed)) {
            std::cout << "  start: "
                      << (config->dwStartType == SERVICE_AUTO_START     ? "automatic"
                          : config->dwStartType == SERVICE_DEMAND_START ? "manual (demand)"
                          : config->dwStartType == SERVICE_DISABLED     ? "disabled"
                                                                        : "other")
                      << "\n";
            if (config->lpServiceStartName)
                std::cout << "  account: " << win32::narrow(config->lpServiceStartName) << "\n";
            if (config->lpBinaryPathName)
                std::cout << "  command line: " << win32::narrow(config->lpBinaryPathName) << "\n";
        }
    }
    return status->dwCurrentState == SERVICE_RUNNING ? 0 : 3;
}

} // namespace

int request_service_reload(const fs::path& config_file, std::ostream& out, std::ostream& err) {
    // PAUSE_CONTINUE is the access right PARAMCHANGE needs: Administrators and SYSTEM have it,
    // ordinary users do not.
    const auto service = open_service(SERVICE_PAUSE_CONTINUE | SERVICE_QUERY_CONFIG, err);
    if (!service) return 1;
    // The service reloads the file it was started with, whatever the caller named.
    if (const auto command_line = binary_path(service.get());
        command_line && !config_file.empty() &&
        lower(*command_line).find(lower(config_file.wstring())) == std::wstring::npos)
        err << "warning: the service's command line (" << win32::narrow(*command_line)
            << ") does not name " << config_file.string()
            << ": the service reloads the configuration file it was started with\n";
    SERVICE_STATUS status{};
    if (ControlService(service.get(), SERVICE_CONTROL_PARAMCHANGE, &status)) {
        out << "authshim: reload requested from the authshim service; the outcome is in its log "
               "and the Event Log\n";
        return 0;
    }
    const DWORD error = GetLastError();
    switch (error) {
    case ERROR_SERVICE_NOT_ACTIVE:
        err << "authshim: service authshim is not running (authshim service start): nothing to "
               "reload\n";
        return 3;
    case ERROR_SERVICE_CANNOT_ACCEPT_CTRL:
        err << "authshim: service authshim is starting or stopping and cannot reload now; try "
               "again once `authshim service status` says running\n";
        return 3;
    case ERROR_INVALID_SERVICE_CONTROL:
        err << "authshim: the running service does not accept reload requests (started from an "
               "older authshim.exe?): restart it (authshim service stop, then start)\n";
        return 1;
    case ERROR_ACCESS_DENIED:
        err << "authshim: cannot ask the service to reload: " << win32::error_text(error)
            << "\nauthshim: run this from an elevated prompt (as Administrator)\n";
        return 1;
    default:
        err << "authshim: cannot ask the service to reload: " << win32::error_text(error) << "\n";
        return 1;
    }
}

int service_command(const std::vector<std::string>& args) {
    if (args.size() < 2) return usage("'service' needs a subcommand");
    const std::string& sub = args[1];
    if (sub == "install") return service_install(args);
    if (sub == "uninstall") return service_uninstall(args);
    if (sub == "start") return service_start(args);
    if (sub == "stop") return service_stop(args);
    if (sub == "status") return service_status(args);
    if (sub == "run") return service_run(args);
    return usage("unknown service subcommand '" + sub + "'");
}

} // namespace authshim::service::windows
