// authshim's command line: run, check, --version, --help, and the platform's own commands.

#include "service/cli.hpp"

#include "config/loader.hpp"
#include "proxycore/events.hpp"
#include "proxycore/format.hpp"
#include "proxycore/server.hpp"
#include "service/config_command.hpp"
#include "service/instance.hpp"
#include "service/logging.hpp"
#include "service/platform.hpp"
#include "service/probe.hpp"
#include "service/reload_command.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace authshim::service {
namespace {

constexpr std::string_view usage_head =
    "usage: authshim <command> [options]\n"
    "\n"
    "Local forward proxy that answers an upstream proxy's authentication for clients that\n"
    "cannot (WinHTTP services, CryptoAPI CRL/OCSP fetches).\n"
    "\n"
    "commands:\n"
    "  run   --config FILE   serve in the foreground until stopped (SIGINT/SIGTERM, Ctrl+C)\n"
    "  check --config FILE   validate FILE and print the effective configuration\n"
    "                        (secrets masked); exit 0 when valid, 1 when not\n"
    "  reload --config FILE  make the running instance reload FILE (admin endpoint's\n"
    "                        POST /reload; SIGHUP and, on Windows, the service's parameter-\n"
    "                        change control do the same); exit 0 reloaded, 1 refused,\n"
    "                        3 not reachable\n"
    "  probe --config FILE [--url URL | --connect HOST:PORT]\n"
    "                        one request through the upstream, showing the authentication\n"
    "                        step by step; exit 0 ok, 3 unreachable, 4 rejected,\n"
    "                        5 no common scheme, 6 timeout, 7 error status\n"
    "  config set --config FILE [--upstream HOST:PORT] [--listen-port PORT] [--bypass LIST]\n"
    "                        write these values into FILE in place (comments and layout\n"
    "                        kept) after checking that the result loads\n";
constexpr std::string_view usage_tail = "  --version             print the version\n"
                                        "  --help                print this help\n";

void print_usage(std::ostream& out) {
    out << usage_head << platform_usage() << usage_tail;
    if (const auto file = default_config_file())
        out << "\n--config defaults to " << file->string() << "\n";
}

std::string join_errors(const std::vector<std::string>& errors) {
    std::string all;
    for (const auto& e : errors)
        all += (all.empty() ? "" : "; ") + e;
    return all;
}

int usage_error(std::string_view message) {
    std::cerr << "authshim: " << message << "\n\n";
    print_usage(std::cerr);
    return 2;
}

int check(const std::filesystem::path& file) {
    const auto cfg = load_config(file, std::cerr);
    if (!cfg) return 1;
    std::cout << config::to_display_json(*cfg) << "\n";
    const auto problems = config_access_problems(*cfg);
    for (const auto& p : problems)
        std::cerr << "error: " << p << "\n";
    if (!problems.empty()) {
        std::cerr << "authshim: " << file.string() << " is valid, but its secrets are exposed\n";
        return 1;
    }
    std::cerr << "authshim: " << file.string() << " is valid\n";
    return 0;
}

int run(const std::filesystem::path& file) {
    ignore_early_reload_requests();
    auto cfg = load_config(file, std::cerr);
    if (!cfg) return 1;
    serve_hooks hooks;
    return serve(std::move(*cfg), hooks);
}

} // namespace

std::optional<config::config> load_config(const std::filesystem::path& file, std::ostream& err,
                                          bool resolve_secrets) {
    auto result = config::load_file(file);
    if (result.value && resolve_secrets) {
        const auto resolver = make_secret_resolver();
        for (auto& e : config::resolve_credentials(*result.value, *resolver))
            result.errors.push_back(std::move(e));
        for (std::size_t i = 0; i < result.value->upstreams.size(); ++i) {
            const auto& ca_file = result.value->upstreams[i].ca_file;
            std::error_code ec;
            if (ca_file && !std::filesystem::is_regular_file(*ca_file, ec))
                result.errors.push_back(
                    {result.value->source.string() + ": /upstreams/" + std::to_string(i) +
                         "/ca_file",
                     "the CA file " + ca_file->string() + " does not exist or is not a file"});
        }
    }
    for (const auto& w : result.warnings)
        err << "warning: " << w.to_string() << "\n";
    for (const auto& e : result.errors)
        err << "error: " << e.to_string() << "\n";
    if (!result.errors.empty()) {
        err << "authshim: " << result.errors.size() << " error(s) in " << file.string() << "\n";
        return std::nullopt;
    }
    return std::move(result.value);
}

std::optional<std::string> read_text_file(const std::filesystem::path& file, std::string& error) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        error = "cannot open " + file.string();
        return std::nullopt;
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) {
        error = "cannot read " + file.string();
        return std::nullopt;
    }
    return text;
}

std::optional<std::filesystem::path> take_config_option(std::vector<std::string>& args,
                                                        std::string& error) {
    std::optional<std::filesystem::path> file;
    for (std::size_t i = 0; i < args.size();) {
        const std::string_view arg = args[i];
        if ((arg == "--config" || arg == "-c" || arg.starts_with("--config=")) && file) {
            // Which one was meant? (An installer's property value that ends its quoting early
            // could smuggle in a second one.)
            error = "--config is given more than once";
            return std::nullopt;
        }
        if (arg == "--config" || arg == "-c") {
            if (i + 1 >= args.size()) {
                error = "--config needs a file name";
                return std::nullopt;
            }
            file = std::filesystem::path(std::u8string(args[i + 1].begin(), args[i + 1].end()));
            args.erase(args.begin() + static_cast<std::ptrdiff_t>(i),
                       args.begin() + static_cast<std::ptrdiff_t>(i) + 2);
        } else if (arg.starts_with("--config=")) {
            const auto value = arg.substr(9);
            if (value.empty()) {
                error = "--config needs a file name";
                return std::nullopt;
            }
            file = std::filesystem::path(std::u8string(value.begin(), value.end()));
            args.erase(args.begin() + static_cast<std::ptrdiff_t>(i));
        } else {
            ++i;
        }
    }
    if (!file) file = default_config_file();
    return file;
}

int serve(config::config cfg, const serve_hooks& hooks,
          const std::optional<std::filesystem::path>& default_log_file) {
    using proxycore::event_id;
    using proxycore::log_event;
    if (!cfg.log.file && default_log_file) cfg.log.file = *default_log_file;
    if (auto error = setup_logging(cfg.log, platform_log_sinks(cfg.log))) {
        // Said where it can still be seen: stderr and, for a service, the Event Log.
        config::logging fallback = cfg.log;
        fallback.file.reset();
        setup_logging(fallback, platform_log_sinks(fallback));
        log_event(event_id::start_failed, spdlog::level::err, "authshim {} not started: {}",
                  AUTHSHIM_VERSION, *error);
        spdlog::default_logger()->flush();
        return 1;
    }
    if (const auto files = raise_open_file_limit()) {
        // Each connection takes a descriptor for the client and one for the upstream.
        const auto needed = 2 * static_cast<std::uint64_t>(cfg.limits.max_connections) + 64;
        if (*files < needed)
            spdlog::warn("the open-file limit ({}) is below what limits.max_connections ({}) "
                         "may need (~{}); past it, accepts fail and pause (raise LimitNOFILE / "
                         "ulimit -Hn, or lower limits.max_connections)",
                         *files, cfg.limits.max_connections, needed);
    }
    const auto& upstream = cfg.upstreams.at(0);
    const std::string upstream_text =
        "\"" + upstream.name + "\" (" + upstream.address.to_string() + ")";
    const auto source = cfg.source.string();
    const auto shutdown = cfg.timeouts.shutdown;
    instance shim(std::move(cfg), default_log_file);
    const auto errors = shim.start();
    if (!errors.empty()) {
        log_event(event_id::start_failed, spdlog::level::err, "authshim {} not started: {}",
                  AUTHSHIM_VERSION, join_errors(errors));
        spdlog::default_logger()->flush();
        return 1;
    }
    auto& io = shim.server().context();
    const auto stop_reload_handler =
        install_reload_handler(io, [&shim](std::string trigger) { shim.request_reload(trigger); });
    auto stop = [&shim, &hooks, shutdown, stop_reload_handler] {
        if (hooks.on_stopping)
            hooks.on_stopping(std::chrono::duration_cast<std::chrono::milliseconds>(shutdown));
        stop_reload_handler();
        shim.request_stop();
    };
    install_stop_handlers(io, stop);
    if (hooks.on_running) {
        // Posted: the caller may call it from another thread (a service control handler).
        hooks.on_running([&io, stop] { boost::asio::post(io, stop); });
    }
    if (hooks.on_reload_available)
        hooks.on_reload_available([&shim](std::string trigger) { shim.request_reload(trigger); });
    log_event(event_id::started, spdlog::level::info,
              "authshim {} started: proxy on {}, upstream {}, config {}", AUTHSHIM_VERSION,
              shim.describe_listeners(), upstream_text, source);
    // The listeners are bound and the handlers in place: systemd's Type=notify start ends here.
    shim.announce_ready("serving: proxy on " + shim.describe_listeners() + ", upstream " +
                        upstream_text);
    shim.run();
    remove_stop_handlers();
    if (hooks.on_stopped) hooks.on_stopped();
    log_event(event_id::stopped, spdlog::level::info, "authshim {} stopped", AUTHSHIM_VERSION);
    spdlog::default_logger()->flush();
    return 0;
}

int cli_main(const std::vector<std::string>& all_args) {
    std::vector<std::string> args = all_args;
    if (args.empty()) return usage_error("no command given");
    const std::string& command = args[0];
    if (command == "--version" || command == "-V" || command == "version") {
        if (args.size() > 1) return usage_error("--version takes no arguments");
        std::cout << "authshim " << AUTHSHIM_VERSION << "\n";
        return 0;
    }
    if (command == "--help" || command == "-h" || command == "help") {
        print_usage(std::cout);
        return 0;
    }
    try {
        if (auto code = run_platform_command(args)) return *code;
        if (command == "config") return config_command(std::move(args));
        if (command == "reload")
            return reload_command(std::vector<std::string>(args.begin(), args.end()));
        if (command == "probe")
            return probe_main(std::vector<std::string>(args.begin() + 1, args.end()), std::cout,
                              std::cerr);
        if (command != "run" && command != "check")
            return usage_error("unknown command '" + command + "'");
        std::string error;
        const auto file = take_config_option(args, error);
        if (!error.empty()) return usage_error(error);
        if (args.size() > 1) return usage_error("unknown argument '" + args[1] + "'");
        if (!file) return usage_error("'" + command + "' needs --config FILE");
        return command == "run" ? run(*file) : check(*file);
    } catch (const std::exception& e) {
        // Failures outside the expected ones (e.g. out of memory): say what, exit 1.
        std::cerr << "authshim: fatal: " << e.what() << "\n";
        return 1;
    }
}

} // namespace authshim::service
