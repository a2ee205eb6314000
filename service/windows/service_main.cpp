// Running as the Windows service: StartServiceCtrlDispatcherW, ServiceMain, the control handler
// (stop, shutdown, and SERVICE_CONTROL_PARAMCHANGE for a configuration reload) and the status
// (with advancing checkpoints) the SCM is told.
#include "service/windows/service_main.hpp"

#include "config/loader.hpp"
#include "proxycore/events.hpp"
#include "service/cli.hpp"
#include "service/logging.hpp"
#include "service/platform.hpp"
#include "service/windows/commands.hpp"
#include "service/windows/win32.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace authshim::service::windows {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

/// The status the service reports, with a ticker that advances dwCheckPoint once a second while
/// a start or stop is pending (so the SCM sees progress during a long graceful stop).
class status_reporter {
public:
    void attach(SERVICE_STATUS_HANDLE handle) { handle_ = handle; }

    void set(DWORD state, std::chrono::milliseconds wait_hint = 0ms, DWORD win32_exit = NO_ERROR,
             DWORD specific_exit = 0) {
        std::lock_guard lock(mutex_);
        // After STOPPED the SCM may already have let the process go: nothing more to say.
        if (stopped_reported_) return;
        status_.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
        status_.dwCurrentState = state;
        // PARAMCHANGE: `authshim reload` without an admin endpoint (or `sc control authshim
        // paramchange`) reloads the configuration.
        status_.dwControlsAccepted =
            state == SERVICE_RUNNING
                ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN | SERVICE_ACCEPT_PARAMCHANGE
                : 0;
        status_.dwWin32ExitCode = win32_exit;
        status_.dwServiceSpecificExitCode = specific_exit;
        const bool pending = state == SERVICE_START_PENDING || state == SERVICE_STOP_PENDING;
        status_.dwCheckPoint = pending ? ++checkpoint_ : 0;
        status_.dwWaitHint = pending ? static_cast<DWORD>(wait_hint.count()) : 0;
        if (pending) pending_until_ = std::chrono::steady_clock::now() + wait_hint;
        stopped_reported_ = state == SERVICE_STOPPED;
        report_locked();
        changed_.notify_all();
    }

    /// Runs the checkpoint ticker until `finish` is called.
    void start_ticker() {
        ticker_ = std::thread([this] {
            std::unique_lock lock(mutex_);
            while (!finished_) {
                changed_.wait_for(lock, 1s);
                if (finished_) break;
                const DWORD state = status_.dwCurrentState;
                // Progress is claimed only within the wait hint: a start or stop that hangs
                // beyond it stops advancing, so the SCM can tell that it hangs.
                if ((state == SERVICE_START_PENDING || state == SERVICE_STOP_PENDING) &&
                    std::chrono::steady_clock::now() < pending_until_) {
                    status_.dwCheckPoint = ++checkpoint_;
                    report_locked();
                }
            }
        });
    }

    void finish() {
        {
            std::lock_guard lock(mutex_);
            finished_ = true;
        }
        changed_.notify_all();
        if (ticker_.joinable()) ticker_.join();
    }

    DWORD state() {
        std::lock_guard lock(mutex_);
        return status_.dwCurrentState;
    }

private:
    void report_locked() {
        if (handle_) SetServiceStatus(handle_, &status_);
    }

    SERVICE_STATUS_HANDLE handle_ = nullptr;
    std::mutex mutex_;
    std::condition_variable changed_;
    SERVICE_STATUS status_{};
    DWORD checkpoint_ = 0;
    std::chrono::steady_clock::time_point pending_until_{};
    bool finished_ = false;
    bool stopped_reported_ = false;
    std::thread ticker_;
};

/// State shared between ServiceMain and the control handler (the SCM calls the handler on the
/// dispatcher thread, ServiceMain runs on its own).
struct service_state {
    fs::path config_file;
    status_reporter reporter;
    std::mutex mutex;
    std::function<void()> request_stop;                      ///< set while serving
    std::function<void(std::string trigger)> request_reload; ///< set while serving
    bool stop_requested = false;
    std::chrono::milliseconds stop_hint{15000};
};

service_state* running_service = nullptr;

DWORD WINAPI control_handler(DWORD control, DWORD, void*, void* context) {
    auto& state = *static_cast<service_state*>(context);
    switch (control) {
    case SERVICE_CONTROL_INTERROGATE:
        return NO_ERROR;
    case SERVICE_CONTROL_STOP:
    case SERVICE_CONTROL_SHUTDOWN: {
        std::lock_guard lock(state.mutex);
        if (state.stop_requested) return NO_ERROR;
        state.stop_requested = true;
        spdlog::info("the service control manager asks authshim to stop{}",
                     control == SERVICE_CONTROL_SHUTDOWN ? " (system shutdown)" : "");
        state.reporter.set(SERVICE_STOP_PENDING, state.stop_hint);
        // Under the lock: on_stopped clears it before the server goes away (it only posts).
        if (state.request_stop) state.request_stop();
        return NO_ERROR;
    }
    case SERVICE_CONTROL_PARAMCHANGE: {
        std::lock_guard lock(state.mutex);
        // Only between on_reload_available and on_stopped (the SCM only sends it while the
        // service reports RUNNING, but a stop may be under way): the instance exists then.
        if (!state.request_reload || state.stop_requested) {
            spdlog::info("configuration reload (SERVICE_CONTROL_PARAMCHANGE) ignored: authshim "
                         "is {}",
                         state.stop_requested ? "stopping" : "not serving yet");
            return ERROR_SERVICE_CANNOT_ACCEPT_CTRL;
        }
        // Queues the reload and returns at once: the handler must not block the dispatcher.
        state.request_reload("SERVICE_CONTROL_PARAMCHANGE");
        return NO_ERROR;
    }
    default:
        return ERROR_CALL_NOT_IMPLEMENTED;
    }
}

void run_service(service_state& state);

void WINAPI service_main(DWORD, wchar_t**) {
    auto& state = *running_service;
    const SERVICE_STATUS_HANDLE handle =
        RegisterServiceCtrlHandlerExW(service_name, control_handler, &state);
    if (!handle) return; // nothing to report to
    state.reporter.attach(handle);
    state.reporter.set(SERVICE_START_PENDING, 10s);
    state.reporter.start_ticker();
    try {
        run_service(state);
    } catch (const std::exception& e) {
        proxycore::log_event(proxycore::event_id::start_failed, spdlog::level::err,
                             "authshim stopped after an unexpected error: {}", e.what());
        spdlog::default_logger()->flush();
        {
            std::lock_guard lock(state.mutex);
            state.request_stop = nullptr;
            state.request_reload = nullptr;
        }
        state.reporter.finish();
        state.reporter.set(SERVICE_STOPPED, 0ms, ERROR_SERVICE_SPECIFIC_ERROR, exit_start_failed);
    }
}

/// ServiceMain's work once the SCM knows the service is starting.
void run_service(service_state& state) {

    // The config names the log destination; until it is loaded, problems are collected. When it
    // cannot be loaded, they go to the Event Log and the default log file, where an admin looks.
    const fs::path default_log = win32::data_dir() / L"logs" / L"authshim.log";
    std::ostringstream problems;
    auto cfg = load_config(state.config_file, problems);
    if (!cfg) {
        config::logging fallback;
        fallback.file = default_log;
        if (setup_logging(fallback, platform_log_sinks(fallback))) {
            fallback.file.reset(); // the file cannot be opened: the Event Log (and stderr)
            setup_logging(fallback, platform_log_sinks(fallback));
        }
        proxycore::log_event(proxycore::event_id::config_invalid, spdlog::level::err,
                             "authshim cannot start: the configuration {} is not usable:\n{}",
                             state.config_file.string(), problems.str());
        spdlog::default_logger()->flush();
        state.reporter.finish();
        state.reporter.set(SERVICE_STOPPED, 0ms, ERROR_SERVICE_SPECIFIC_ERROR, exit_config_invalid);
        return;
    }
    const std::string warnings = problems.str();
    state.stop_hint =
        std::chrono::duration_cast<std::chrono::milliseconds>(cfg->timeouts.shutdown) + 5s;
    state.reporter.set(SERVICE_START_PENDING, 10s);

    serve_hooks hooks;
    hooks.on_running = [&state, &warnings](std::function<void()> request_stop) {
        if (!warnings.empty())
            spdlog::warn("configuration {}: {}", state.config_file.string(), warnings);
        bool stop_now = false;
        {
            std::lock_guard lock(state.mutex);
            state.request_stop = request_stop;
            stop_now = state.stop_requested;
        }
        if (stop_now)
            request_stop();
        else
            state.reporter.set(SERVICE_RUNNING);
    };
    hooks.on_stopping = [&state](std::chrono::milliseconds limit) {
        if (state.reporter.state() != SERVICE_STOP_PENDING)
            state.reporter.set(SERVICE_STOP_PENDING, limit + 5s);
    };
    hooks.on_reload_available = [&state](std::function<void(std::string)> request_reload) {
        std::lock_guard lock(state.mutex);
        state.request_reload = std::move(request_reload);
    };
    hooks.on_stopped = [&state] {
        std::lock_guard lock(state.mutex);
        state.request_stop = nullptr; // the server is about to go
        state.request_reload = nullptr;
    };
    const int code = serve(std::move(*cfg), hooks, default_log);
    state.reporter.finish();
    if (code == 0)
        state.reporter.set(SERVICE_STOPPED);
    else
        state.reporter.set(SERVICE_STOPPED, 0ms, ERROR_SERVICE_SPECIFIC_ERROR, exit_start_failed);
}

} // namespace

int service_run(std::vector<std::string> args) {
    std::string error;
    const auto file = take_config_option(args, error);
    auto usage = [](const std::string& message) {
        std::cerr << "authshim: " << message << "\n\nusage: authshim service run [--config FILE]\n";
        return 2;
    };
    if (!error.empty()) return usage(error);
    if (args.size() > 2) return usage("unknown argument '" + args[2] + "'");
    if (!file) return usage("'service run' needs --config FILE");

    static service_state state;
    state.config_file = fs::absolute(*file);
    running_service = &state;
    wchar_t name[] = L"authshim";
    SERVICE_TABLE_ENTRYW table[] = {{name, service_main}, {nullptr, nullptr}};
    if (StartServiceCtrlDispatcherW(table)) return 0;
    const DWORD dispatch_error = GetLastError();
    if (dispatch_error != ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
        std::cerr << "authshim: cannot connect to the service control manager: "
                  << win32::error_text(dispatch_error) << "\n";
        return 1;
    }
    // Started from a console, not by the SCM: behave like `authshim run`.
    auto cfg = load_config(state.config_file, std::cerr);
    if (!cfg) return 1;
    return serve(std::move(*cfg), serve_hooks{});
}

} // namespace authshim::service::windows
