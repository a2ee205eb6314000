#include "service/instance.hpp"

#include "auth/crypto.hpp"
#include "config/loader.hpp"
#include "proxycore/events.hpp"
#include "proxycore/format.hpp"
#include "service/cli.hpp"
#include "service/logging.hpp"
#include "service/platform.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <sstream>

namespace authshim::service {
namespace {

using proxycore::event_id;
using proxycore::log_event;
using proxycore::unix_ms_now;

std::string join(const std::vector<std::string>& items, std::string_view separator) {
    std::string out;
    for (const auto& item : items)
        out += (out.empty() ? "" : std::string(separator)) + item;
    return out;
}

std::string config_hash(const std::string& display_json) {
    // Of the effective configuration with secrets masked: stable across restarts and machines
    // with the same file, and no help to anyone guessing a password.
    const auto hex = auth::crypto::hex_hash(auth::crypto::hash_kind::sha256, {display_json});
    return hex ? "sha256:" + *hex : std::string();
}

/// The top-level sections whose effective values differ (secrets are masked in the display,
/// so credential and token changes are reported separately).
std::vector<std::string> changed_sections(const config::config& before,
                                          const config::config& after) {
    const auto a = nlohmann::json::parse(config::to_display_json(before));
    const auto b = nlohmann::json::parse(config::to_display_json(after));
    std::vector<std::string> out;
    for (const auto& [key, value] : b.items())
        if (!a.contains(key) || a[key] != value) out.push_back(key);
    for (const auto& [key, value] : a.items())
        if (!b.contains(key)) out.push_back(key);
    return out;
}

/// Where `admin` listens, for the proxy's refusal of requests aimed at authshim itself.
std::vector<boost::asio::ip::tcp::endpoint> admin_endpoints(const admin_server* admin) {
    if (!admin) return {};
    const auto bound = admin->local_endpoint();
    boost::system::error_code ec;
    const auto address = boost::asio::ip::make_address(bound.host, ec);
    if (ec) return {}; // admin.listen is validated as an IP literal
    return {{address, bound.port}};
}

bool same_logging(const config::logging& a, const config::logging& b) {
    return a.level == b.level && a.file == b.file && a.event_log == b.event_log;
}

} // namespace

instance::instance(config::config cfg, std::optional<std::filesystem::path> default_log_file)
    : default_log_file_(std::move(default_log_file)), cfg_(std::move(cfg)) {}

instance::~instance() {
    shut_down();
}

void instance::shut_down() {
    // The reload thread first: it is the only other thread that touches admin_. Reloads it has
    // not begun are answered "stopping" (a POST /reload waiting for one returns); one under way
    // ends quickly, the server being stopped or stopping.
    {
        std::lock_guard lock(jobs_mutex_);
        quit_ = true;
    }
    jobs_cv_.notify_all();
    if (worker_.joinable()) worker_.join();
    if (admin_) admin_->stop();
    for (auto& t : retirements_)
        if (t.joinable()) t.join();
    retirements_.clear();
}

void instance::set_config_facts(const config::config& cfg) {
    const auto& up = cfg.upstreams.at(0);
    facts_.config_path = cfg.source.string();
    // Hashed when /status first asks (facts()): OpenSSL's digest set-up costs ~2 MB of resident
    // memory, which a Basic upstream never needs otherwise.
    facts_.config_hash.clear();
    config_display_ = config::to_display_json(cfg);
    facts_.config_loaded_ms = unix_ms_now();
    facts_.upstream_name = up.name;
    facts_.upstream_address = up.address.to_string();
    facts_.upstream_transport = config::to_string(up.transport);
    facts_.credentials = up.credentials;
    facts_.listeners.clear();
    for (const auto& e : server_->local_endpoints())
        facts_.listeners.push_back(proxycore::format_endpoint(e));
    facts_.admin.reset();
    if (admin_) facts_.admin = admin_->local_endpoint().to_string();
    health_target_ = up.address;
    health_timeout_ = std::min(cfg.timeouts.connect, std::chrono::milliseconds(2000));
}

std::vector<std::string> instance::start() {
    if (cfg_.log.access) {
        std::string error;
        access_log_ = proxycore::access_log::open(*cfg_.log.access, error);
        if (!access_log_) return {error};
    }
    server_ = std::make_unique<proxycore::server>(cfg_, access_log_);
    if (auto errors = server_->bind(); !errors.empty()) return errors;
    if (cfg_.admin.listen) {
        admin_ = std::make_unique<admin_server>(make_admin_handlers());
        if (auto error = admin_->start(*cfg_.admin.listen, cfg_.admin.token)) {
            admin_.reset();
            return {*error};
        }
        server_->set_admin_endpoints(admin_endpoints(admin_.get()));
    }
    {
        std::lock_guard lock(facts_mutex_);
        facts_.version = AUTHSHIM_VERSION;
        facts_.started_ms = unix_ms_now();
        set_config_facts(cfg_);
    }
    if (admin_)
        spdlog::info("admin endpoint listening on {} (GET /healthz /status /metrics, POST "
                     "/reload{})",
                     admin_->local_endpoint().to_string(),
                     cfg_.admin.token.empty() ? "" : "; bearer token required but for /healthz");
    worker_ = std::thread([this] { reload_worker(); });
    return {};
}

std::string instance::describe_listeners() const {
    std::string listen;
    for (const auto& e : server_->local_endpoints())
        listen += (listen.empty() ? "" : ", ") + proxycore::format_endpoint(e);
    return listen;
}

void instance::run() {
    server_->run();
    shut_down();
}

void instance::notify_unless_stopping(const std::string& state) {
    // Under the lock that request_stop() takes: nothing follows its STOPPING=1.
    std::lock_guard lock(facts_mutex_);
    if (!facts_.stopping) notify_service_manager(state);
}

void instance::announce_ready(const std::string& status) {
    notify_unless_stopping("READY=1\nSTATUS=" + status);
}

void instance::request_stop() {
    {
        // Under the lock: no READY=1 of a reload ending now follows the STOPPING=1.
        std::lock_guard lock(facts_mutex_);
        if (!facts_.stopping)
            notify_service_manager("STOPPING=1\nSTATUS=stopping: letting requests in flight "
                                   "finish");
        facts_.stopping = true;
    }
    server_->request_stop();
}

void instance::request_reload(std::string trigger) {
    {
        std::lock_guard lock(jobs_mutex_);
        if (quit_) return;
        // One queued reload reads the file as it is when it runs: no need for a second.
        for (const auto& j : jobs_)
            if (!j.done) return;
        jobs_.push_back({std::move(trigger), std::nullopt});
    }
    jobs_cv_.notify_one();
}

reload_report instance::reload(std::string trigger) {
    std::future<reload_report> result;
    {
        std::lock_guard lock(jobs_mutex_);
        if (quit_) return {false, {"authshim is stopping"}, {}, {}};
        job j{std::move(trigger), std::promise<reload_report>()};
        result = j.done->get_future();
        jobs_.push_back(std::move(j));
    }
    jobs_cv_.notify_one();
    return result.get();
}

void instance::reload_worker() {
    for (;;) {
        job j;
        {
            std::unique_lock lock(jobs_mutex_);
            jobs_cv_.wait(lock, [this] { return quit_ || !jobs_.empty(); });
            if (quit_) {
                for (auto& pending : jobs_)
                    if (pending.done)
                        pending.done->set_value({false, {"authshim is stopping"}, {}, {}});
                jobs_.clear();
                return;
            }
            j = std::move(jobs_.front());
            jobs_.erase(jobs_.begin());
        }
        // systemd (Type=notify) shows "reloading" until the READY=1 below. MONOTONIC_USEC:
        // CLOCK_MONOTONIC (steady_clock), which systemd 253's Type=notify-reload requires and
        // 252 ignores.
        notify_unless_stopping(
            "RELOADING=1\nSTATUS=reloading the configuration (" + j.trigger + ")\nMONOTONIC_USEC=" +
            std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count()));
        reload_report report;
        try {
            report = do_reload(j.trigger);
        } catch (const std::exception& e) {
            report.errors.push_back(std::string("reload failed unexpectedly: ") + e.what());
            spdlog::error("reload ({}) failed unexpectedly: {}", j.trigger, e.what());
        }
        notify_unless_stopping("READY=1\nSTATUS=" +
                               (report.ok ? "serving: configuration reloaded (" + j.trigger + ")"
                                          : "serving the previous configuration: the reload (" +
                                                j.trigger + ") was refused, " +
                                                std::to_string(report.errors.size()) +
                                                " error(s) in the log"));
        if (j.done) j.done->set_value(std::move(report));
    }
}

reload_report instance::do_reload(const std::string& trigger) {
    reload_report report;
    const auto fail = [&](std::vector<std::string> errors) {
        report.errors = std::move(errors);
        for (const auto& e : report.errors)
            spdlog::error("reload ({}): {}", trigger, e);
        log_event(event_id::config_reload_failed, spdlog::level::err,
                  "configuration reload ({}) refused; still running the previous configuration "
                  "from {}: {}",
                  trigger, cfg_.source.string(), join(report.errors, "; "));
        proxycore::bump(const_cast<proxycore::counters&>(server_->stats()).reload_failures);
        std::lock_guard lock(facts_mutex_);
        facts_.last_reload = {unix_ms_now(), false, trigger, report.errors};
        return report;
    };

    spdlog::info("reload ({}): reading {}", trigger, cfg_.source.string());
    std::ostringstream loader_output;
    auto loaded = load_config(cfg_.source, loader_output);
    {
        std::vector<std::string> errors;
        std::istringstream lines(loader_output.str());
        for (std::string line; std::getline(lines, line);) {
            if (line.starts_with("warning: ")) {
                report.warnings.push_back(line.substr(9));
                spdlog::warn("reload ({}): {}", trigger, line.substr(9));
            } else if (line.starts_with("error: ")) {
                errors.push_back(line.substr(7));
            }
        }
        if (!loaded) {
            if (errors.empty()) errors.push_back("the configuration could not be loaded");
            return fail(std::move(errors));
        }
    }
    auto cfg = std::move(*loaded);
    if (!cfg.log.file && default_log_file_) cfg.log.file = *default_log_file_;

    std::shared_ptr<proxycore::access_log> requests_log;
    if (cfg.log.access) {
        if (access_log_ && access_log_->settings() == *cfg.log.access) {
            requests_log = access_log_;
        } else {
            std::string error;
            requests_log = proxycore::access_log::open(*cfg.log.access, error);
            if (!requests_log) return fail({error});
        }
    }

    std::unique_ptr<admin_server> new_admin;
    const bool admin_moves = cfg.admin.listen != cfg_.admin.listen;
    if (admin_moves && cfg.admin.listen) {
        new_admin = std::make_unique<admin_server>(make_admin_handlers());
        if (auto error = new_admin->start(*cfg.admin.listen, cfg.admin.token))
            return fail({*error});
    }

    const bool logging_changes = !same_logging(cfg.log, cfg_.log);
    if (logging_changes) {
        if (auto error = setup_logging(cfg.log, platform_log_sinks(cfg.log))) {
            if (new_admin) new_admin->stop();
            return fail({*error});
        }
    }

    auto outcome = server_->reload(cfg, requests_log,
                                   admin_endpoints(admin_moves ? new_admin.get() : admin_.get()));
    if (!outcome.errors.empty()) {
        if (logging_changes) setup_logging(cfg_.log, platform_log_sinks(cfg_.log));
        if (new_admin) new_admin->stop();
        return fail(std::move(outcome.errors));
    }

    // Applied. What changed, for the log and the caller.
    for (auto& section : changed_sections(cfg_, cfg))
        report.changes.push_back("changed: " + section);
    for (auto& change : outcome.changes)
        report.changes.push_back(std::move(change));
    if (admin_moves) {
        // The old endpoint stops on a thread of its own: stopping waits for its requests, and
        // one of them may be a POST /reload waiting for this thread (this reload, or the next).
        if (admin_) retirements_.emplace_back([old = std::move(admin_)]() mutable { old->stop(); });
        admin_ = std::move(new_admin);
        report.changes.push_back(admin_ ? "admin endpoint listening on " +
                                              admin_->local_endpoint().to_string()
                                        : std::string("admin endpoint closed"));
    } else if (admin_ && !(cfg.admin.token == cfg_.admin.token)) {
        admin_->set_token(cfg.admin.token);
        report.changes.push_back("admin token changed");
    }
    access_log_ = std::move(requests_log);
    cfg_ = std::move(cfg);
    {
        std::lock_guard lock(facts_mutex_);
        set_config_facts(cfg_);
        facts_.last_reload = {unix_ms_now(), true, trigger, {}};
    }
    {
        std::lock_guard lock(health_mutex_); // the upstream may be another one now
        health_checked_ms_ = 0;
        health_failure_.reset();
    }
    report.ok = true;
    log_event(event_id::config_reloaded, spdlog::level::info,
              "configuration reloaded ({}) from {}: {}", trigger, cfg_.source.string(),
              report.changes.empty() ? std::string("nothing changed") : join(report.changes, "; "));
    return report;
}

status_facts instance::facts() {
    std::lock_guard lock(facts_mutex_);
    if (facts_.config_hash.empty() && !config_display_.empty())
        facts_.config_hash = config_hash(config_display_);
    return facts_;
}

admin_response instance::healthz() {
    const auto f = facts();
    if (f.stopping)
        return {503, "text/plain; charset=utf-8", "unavailable: authshim is stopping\n"};
    const auto& stats = server_->stats();
    const std::string up = "upstream \"" + f.upstream_name + "\" (" + f.upstream_address + ")";
    switch (classify(stats)) {
    case upstream_state::paused:
        return {503, "text/plain; charset=utf-8",
                "unavailable: the credentials for " + up +
                    " are paused after the upstream rejected them (see /status)\n"};
    case upstream_state::failing: {
        const auto error = stats.last_error();
        return {503, "text/plain; charset=utf-8",
                "unavailable: " + up + " is failing: " + error.text + "\n"};
    }
    default:
        break;
    }
    // No answer from the upstream in the last minute (or ever): check that it can be reached.
    const auto now = unix_ms_now();
    if (now - stats.upstream_last_ok_ms.load(std::memory_order_relaxed) > 60'000) {
        std::lock_guard lock(health_mutex_);
        if (now - health_checked_ms_ > 10'000) {
            config::endpoint target;
            std::chrono::milliseconds timeout{};
            {
                std::lock_guard facts_lock(facts_mutex_);
                target = health_target_;
                timeout = health_timeout_;
            }
            health_failure_ = check_reachable(target, timeout);
            health_checked_ms_ = unix_ms_now();
        }
        if (health_failure_)
            return {503, "text/plain; charset=utf-8",
                    "unavailable: cannot connect to " + up + ": " + *health_failure_ + "\n"};
    }
    return {200, "text/plain; charset=utf-8",
            "ok: listening on " + join(f.listeners, ", ") + "; " + up + " is " +
                to_string(classify(stats)) + "\n"};
}

std::optional<std::string> instance::check_reachable(const config::endpoint& target,
                                                     std::chrono::milliseconds timeout) {
    namespace asio = boost::asio;
    using asio::ip::tcp;
    asio::io_context io;
    boost::system::error_code ec;
    tcp::resolver resolver(io);
    const auto results = resolver.resolve(target.host, std::to_string(target.port), ec);
    if (ec) return "cannot resolve " + target.host + ": " + ec.message();
    tcp::socket socket(io);
    std::optional<boost::system::error_code> result;
    asio::async_connect(
        socket, results,
        [&](const boost::system::error_code& e, const tcp::endpoint&) { result = e; });
    io.run_for(timeout);
    if (!result) return "no connection within " + proxycore::format_duration(timeout);
    if (*result) return result->message();
    return std::nullopt;
}

admin_handlers instance::make_admin_handlers() {
    admin_handlers h;
    h.healthz = [this] { return healthz(); };
    h.status = [this] {
        return admin_response{200, "application/json",
                              render_status_json(facts(), server_->stats(), unix_ms_now())};
    };
    h.metrics = [this] {
        return admin_response{200, "text/plain; version=0.0.4; charset=utf-8",
                              render_metrics(facts(), server_->stats())};
    };
    h.reload = [this] {
        const auto report = reload("POST /reload");
        nlohmann::ordered_json body = {{"ok", report.ok},
                                       {"errors", report.errors},
                                       {"warnings", report.warnings},
                                       {"changes", report.changes}};
        return admin_response{
            report.ok ? 200 : 422, "application/json",
            body.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n"};
    };
    return h;
}

} // namespace authshim::service
