#pragma once
/// One running authshim: the proxy server, the admin endpoint, the access log and live
/// reload. A reload (SIGHUP, SERVICE_CONTROL_PARAMCHANGE, `authshim reload`, POST /reload)
/// reads and validates the config file again on a thread of its own; an invalid file changes
/// nothing (every error is logged and returned); a valid one is applied without dropping
/// in-flight requests or tunnels (proxycore::server::reload).
/// Ownership: owns the server, the admin endpoint and the reload thread; `run()` serves on the
/// calling thread. Thread safety: request_stop(), request_reload() and reload() may be called
/// from any thread (reload() not from the server's thread: it waits for it).

#include "config/config.hpp"
#include "proxycore/server.hpp"
#include "service/admin_server.hpp"
#include "service/status.hpp"

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace authshim::service {

struct reload_report {
    bool ok = false;
    std::vector<std::string> errors;   ///< why nothing changed (never secret)
    std::vector<std::string> warnings; ///< the loader's warnings for the new file
    std::vector<std::string> changes;  ///< what is different now
};

class instance {
public:
    /// `cfg`: validated, secrets resolved. `default_log_file`: used when `log.file` is unset
    /// (the Windows service's), also after a reload.
    instance(config::config cfg, std::optional<std::filesystem::path> default_log_file);
    ~instance();
    instance(const instance&) = delete;
    instance& operator=(const instance&) = delete;

    /// Opens the access log, binds the proxy's listeners and the admin endpoint. Returns one
    /// message per failure; nothing is left listening then.
    std::vector<std::string> start();

    /// Tells the service manager that authshim serves (notify_service_manager: READY=1 and
    /// `status`), unless a stop was requested already. Call once listening, before run().
    void announce_ready(const std::string& status);

    /// Serves until stopped (call after a successful start()).
    void run();
    /// Begins the graceful stop (and tells the service manager: STOPPING=1). Any thread.
    void request_stop();

    /// Queues a reload and returns at once (signal handlers, service control handlers).
    void request_reload(std::string trigger);
    /// Reloads and waits for the outcome (the admin endpoint's POST /reload).
    reload_report reload(std::string trigger);

    proxycore::server& server() { return *server_; }
    /// The bound listeners, for the start message.
    std::string describe_listeners() const;

private:
    struct job {
        std::string trigger;
        std::optional<std::promise<reload_report>> done;
    };
    reload_report do_reload(const std::string& trigger);
    /// notify_service_manager(state) unless a stop was requested (under facts_mutex_).
    void notify_unless_stopping(const std::string& state);
    /// Ends the reload thread, then stops the admin endpoints (idempotent; owner thread).
    void shut_down();
    void reload_worker();
    status_facts facts();                             // computes the config hash on first use
    void set_config_facts(const config::config& cfg); // requires facts_mutex_
    admin_handlers make_admin_handlers();
    admin_response healthz();
    /// A TCP connect to `target` within `timeout`: nothing when it works, else why not.
    static std::optional<std::string> check_reachable(const config::endpoint& target,
                                                      std::chrono::milliseconds timeout);

    std::optional<std::filesystem::path> default_log_file_;
    config::config cfg_; // the config in force; reload thread only after start()
    std::unique_ptr<proxycore::server> server_;
    /// The reload thread while it runs, then the owner (shut_down joins it first).
    std::unique_ptr<admin_server> admin_;
    std::vector<std::thread> retirements_; // admin endpoints a reload replaced, stopping; same
    std::shared_ptr<proxycore::access_log> access_log_;

    mutable std::mutex facts_mutex_;
    status_facts facts_;             // guarded by facts_mutex_; facts_.stopping also orders
                                     // the service-manager notifications (sent under the lock)
    std::string config_display_;     // guarded by facts_mutex_: the masked config, to hash
    config::endpoint health_target_; // guarded by facts_mutex_
    std::chrono::milliseconds health_timeout_{}; // guarded by facts_mutex_

    std::mutex health_mutex_;                   // serialises the active upstream check
    std::int64_t health_checked_ms_ = 0;        // guarded by health_mutex_
    std::optional<std::string> health_failure_; // guarded by health_mutex_

    std::mutex jobs_mutex_;
    std::condition_variable jobs_cv_;
    std::vector<job> jobs_; // guarded by jobs_mutex_
    bool quit_ = false;     // guarded by jobs_mutex_
    std::thread worker_;
};

} // namespace authshim::service
