// Windows platform glue: console stop events, `authshim reload` without an admin endpoint, the
// DPAPI / Credential Manager resolver, the default config location, config ACL checks, the Event
// Log sink and the Windows commands.
#include "service/platform.hpp"

#include "service/windows/acl.hpp"
#include "service/windows/commands.hpp"
#include "service/windows/event_log.hpp"
#include "service/windows/scm.hpp"
#include "service/windows/secrets.hpp"
#include "service/windows/win32.hpp"

#include <aclapi.h>
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>
#include <winsock2.h>

#include <atomic>
#include <mutex>
#include <variant>

namespace authshim::service {
namespace {

std::mutex console_mutex;
boost::asio::io_context* console_io = nullptr;
std::function<void()> console_stop;
std::atomic<int> console_events{0};
/// Set once serving has ended (remove_stop_handlers): a close or shutdown event waits for it.
HANDLE console_done = nullptr;

BOOL WINAPI on_console_event(DWORD type) {
    if (type != CTRL_C_EVENT && type != CTRL_BREAK_EVENT && type != CTRL_CLOSE_EVENT &&
        type != CTRL_SHUTDOWN_EVENT)
        return FALSE;
    // A second Ctrl+C gets the default action: the process ends at once.
    if (console_events.fetch_add(1) > 0) return FALSE;
    HANDLE done = nullptr;
    {
        std::lock_guard lock(console_mutex);
        if (!console_io || !console_stop) return FALSE;
        boost::asio::post(*console_io, [type, stop = console_stop] {
            spdlog::info("received {}: stopping gracefully (press Ctrl+C again to exit at once)",
                         type == CTRL_C_EVENT       ? "Ctrl+C"
                         : type == CTRL_BREAK_EVENT ? "Ctrl+Break"
                                                    : "a console close or shutdown event");
            stop();
        });
        done = console_done;
    }
    // Windows ends the process as soon as the handler returns from a close or shutdown event
    // (and after about 5 s regardless): wait for the graceful stop within that time.
    if ((type == CTRL_CLOSE_EVENT || type == CTRL_SHUTDOWN_EVENT) && done)
        WaitForSingleObject(done, 4500);
    return TRUE;
}

} // namespace

void install_stop_handlers(boost::asio::io_context& io, std::function<void()> stop) {
    {
        std::lock_guard lock(console_mutex);
        console_io = &io;
        console_stop = std::move(stop);
        if (!console_done) console_done = CreateEventW(nullptr, TRUE, FALSE, nullptr);
        if (console_done) ResetEvent(console_done);
    }
    SetConsoleCtrlHandler(on_console_event, TRUE);
}

void ignore_early_reload_requests() {}

std::function<void()> install_reload_handler(boost::asio::io_context&,
                                             std::function<void(std::string)>) {
    // Windows has no SIGHUP: the service control handler takes SERVICE_CONTROL_PARAMCHANGE
    // (service_main.cpp), and `authshim reload` uses the admin endpoint or sends that control.
    return [] {};
}

int reload_without_admin(const config::config& cfg, std::ostream& out, std::ostream& err) {
    // No admin endpoint to ask: the service control manager passes the request to the service.
    return windows::request_service_reload(cfg.source, out, err);
}

bool wait_readable(std::uintptr_t socket, std::chrono::milliseconds timeout) {
    WSAPOLLFD ready{};
    ready.fd = static_cast<SOCKET>(socket);
    ready.events = POLLRDNORM;
    return WSAPoll(&ready, 1, static_cast<INT>(timeout.count())) != 0;
}

std::optional<std::uint64_t> raise_open_file_limit() {
    return std::nullopt; // sockets are handles, not bounded by a per-process descriptor limit
}

void notify_service_manager(std::string_view) {
    // The SCM learns the service's state from service_main (SetServiceStatus).
}

void remove_stop_handlers() {
    {
        std::lock_guard lock(console_mutex);
        console_io = nullptr;
        console_stop = nullptr;
        if (console_done) SetEvent(console_done); // a waiting close handler may return now
    }
    SetConsoleCtrlHandler(on_console_event, FALSE);
}

std::unique_ptr<config::secret_resolver> make_secret_resolver() {
    return std::make_unique<windows::secret_resolver>();
}

std::optional<std::filesystem::path> default_config_file() {
    return win32::data_dir() / L"authshim.json";
}

std::vector<std::string> config_access_problems(const config::config& cfg) {
    std::vector<std::string> problems;
    // Secrets: credentials of any source, and the admin endpoint's token.
    if ((cfg.credentials.empty() && !cfg.admin.token_source) || cfg.source.empty()) return problems;
    auto check_file = [&problems](const std::filesystem::path& file, const std::string& what) {
        std::string error;
        const auto readers = windows::readers_besides_admins(file, error);
        if (!error.empty()) {
            problems.push_back("cannot read the ACL of " + what + " " + file.string() + ": " +
                               error);
            return;
        }
        if (readers.empty()) return;
        std::string names;
        for (const auto& r : readers)
            names += (names.empty() ? "" : ", ") + r;
        problems.push_back(what + " " + file.string() + " holds or names secrets and can be " +
                           "read by " + names + "; restrict its folder to Administrators, " +
                           "SYSTEM and NT SERVICE\\authshim (`authshim credentials set` and " +
                           "`authshim service install` do this) and make Administrators the " +
                           "file's owner (icacls \"" + file.string() +
                           "\" /setowner *S-1-5-32-544)");
    };
    check_file(cfg.source, "the config file");
    for (const auto& [name, credential] : cfg.credentials)
        if (const auto* file = std::get_if<config::file_secret>(&credential.password_source))
            check_file(file->path, "the password file of credentials \"" + name + "\",");
    if (cfg.admin.token_source)
        if (const auto* file = std::get_if<config::file_secret>(&*cfg.admin.token_source))
            check_file(file->path, "the token file of admin.token");
    return problems;
}

std::vector<std::shared_ptr<spdlog::sinks::sink>> platform_log_sinks(const config::logging& log) {
    if (!log.event_log) return {};
    return {windows::make_event_log_sink()};
}

std::optional<int> run_platform_command(const std::vector<std::string>& args) {
    if (args.empty()) return std::nullopt;
    if (args[0] == "service") return windows::service_command(args);
    if (args[0] == "winhttp") return windows::winhttp_command(args);
    if (args[0] == "credentials") return windows::credentials_command(args);
    return std::nullopt;
}

std::optional<std::string> replace_file_atomically(const std::filesystem::path& file,
                                                   const std::string& text) {
    const std::filesystem::path temp =
        file.parent_path() /
        (file.filename().wstring() + L".authshim-new-" + std::to_wstring(GetCurrentProcessId()) +
         L"-" + std::to_wstring(GetTickCount64()));
    PSECURITY_DESCRIPTOR original = nullptr;
    SECURITY_ATTRIBUTES attributes{sizeof(SECURITY_ATTRIBUTES), nullptr, FALSE};
    if (GetNamedSecurityInfoW(file.c_str(), SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, nullptr,
                              nullptr, nullptr, nullptr, &original) == ERROR_SUCCESS)
        attributes.lpSecurityDescriptor = original;
    HANDLE h = CreateFileW(temp.c_str(), GENERIC_WRITE, 0, &attributes, CREATE_NEW,
                           FILE_ATTRIBUTE_NORMAL, nullptr);
    const DWORD create_error = GetLastError();
    if (original) LocalFree(original);
    if (h == INVALID_HANDLE_VALUE)
        return "cannot create " + temp.string() + ": " + win32::error_text(create_error);
    DWORD written = 0;
    const bool ok = WriteFile(h, text.data(), static_cast<DWORD>(text.size()), &written, nullptr) &&
                    written == text.size() && FlushFileBuffers(h);
    const std::string write_error = ok ? "" : win32::last_error_text();
    CloseHandle(h);
    if (!ok) {
        DeleteFileW(temp.c_str());
        return "cannot write " + temp.string() + ": " + write_error;
    }
    if (!ReplaceFileW(file.c_str(), temp.c_str(), nullptr, 0, nullptr, nullptr)) {
        const DWORD error = GetLastError();
        if (error == ERROR_UNABLE_TO_MOVE_REPLACEMENT ||
            error == ERROR_UNABLE_TO_MOVE_REPLACEMENT_2) {
            // The original is gone (1176) or renamed away (1177): the new content exists only
            // as `temp`. Never delete it; move it into place (a scanner holding it may have
            // been the cause, so try a few times).
            for (int attempt = 0; attempt < 10; ++attempt) {
                if (MoveFileExW(temp.c_str(), file.c_str(),
                                MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH))
                    return std::nullopt;
                Sleep(200);
            }
            return "cannot replace " + file.string() + ": " + win32::error_text(error) +
                   "; the new content is in " + temp.string() + ": rename it to " +
                   file.filename().string();
        }
        DeleteFileW(temp.c_str()); // the original is untouched
        return "cannot replace " + file.string() + ": " + win32::error_text(error);
    }
    return std::nullopt;
}

std::string_view platform_usage() {
    return "  service install [--config FILE] [--start auto|demand] [--now]\n"
           "                        install the Windows service (LocalService, automatic start,\n"
           "                        restart on failure), its Event Log source and folder ACLs;\n"
           "                        --now also starts it (restarts it when it runs)\n"
           "  service uninstall [--remove-logs]\n"
           "                        stop and remove the service (and revert `winhttp apply`);\n"
           "                        the config is kept, the logs folder too unless asked\n"
           "  service start|stop|status\n"
           "  service run [--config FILE]\n"
           "                        what the service control manager starts; from a console\n"
           "                        the same as `run`\n"
           "  winhttp apply [--bypass LIST] [--config FILE] [--reapply]\n"
           "                        point the machine's WinHTTP proxy at authshim (what `netsh\n"
           "                        winhttp set proxy` does), saving the previous setting;\n"
           "                        --reapply: not over a setting changed by hand since\n"
           "  winhttp show [--config FILE]\n"
           "                        print the WinHTTP proxy setting and what may bypass authshim\n"
           "  winhttp revert [--force]\n"
           "                        restore the setting saved by `winhttp apply`\n"
           "  credentials set NAME --username USER [--config FILE]\n"
           "                        read a password (no echo; or from stdin when piped),\n"
           "                        encrypt it with DPAPI and store it in the config\n";
}

} // namespace authshim::service
