// authshim's command line: run, check, --version, --help.

#include "config/loader.hpp"
#include "config/secret_resolver.hpp"
#include "proxycore/server.hpp"
#include "service/logging.hpp"
#include "service/platform.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace authshim;

constexpr std::string_view usage_text =
    "usage: authshim <command> [options]\n"
    "\n"
    "Local forward proxy that answers an upstream proxy's authentication for clients that\n"
    "cannot (WinHTTP services, CryptoAPI CRL/OCSP fetches).\n"
    "\n"
    "commands:\n"
    "  run   --config FILE   serve in the foreground until SIGINT/SIGTERM\n"
    "  check --config FILE   validate FILE and print the effective configuration\n"
    "                        (secrets masked); exit 0 when valid, 1 when not\n"
    "  --version             print the version\n"
    "  --help                print this help\n";

int usage_error(std::string_view message) {
    std::cerr << "authshim: " << message << "\n\n" << usage_text;
    return 2;
}

struct command_line {
    std::string command;
    std::string config_file;
};

/// Parses `<command> --config FILE` (also `--config=FILE`, `-c FILE`). Returns an error text.
std::optional<std::string> parse(const std::vector<std::string_view>& args, command_line& out) {
    out.command = std::string(args.at(0));
    for (std::size_t i = 1; i < args.size(); ++i) {
        const auto arg = args[i];
        if (arg == "--config" || arg == "-c") {
            if (i + 1 >= args.size()) return "--config needs a file name";
            out.config_file = std::string(args[++i]);
        } else if (arg.starts_with("--config=")) {
            out.config_file = std::string(arg.substr(9));
        } else {
            return "unknown argument '" + std::string(arg) + "'";
        }
    }
    if (out.config_file.empty()) return "'" + out.command + "' needs --config FILE";
    return std::nullopt;
}

/// Loads, validates and resolves secrets; prints every warning and error to stderr.
std::optional<config::config> load(const std::string& file) {
    auto result = config::load_file(file);
    if (result.value) {
        const config::default_secret_resolver resolver;
        for (auto& e : config::resolve_credentials(*result.value, resolver))
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
        std::cerr << "warning: " << w.to_string() << "\n";
    for (const auto& e : result.errors)
        std::cerr << "error: " << e.to_string() << "\n";
    if (!result.errors.empty()) {
        std::cerr << "authshim: " << result.errors.size() << " error(s) in " << file << "\n";
        return std::nullopt;
    }
    return std::move(result.value);
}

int check(const std::string& file) {
    const auto cfg = load(file);
    if (!cfg) return 1;
    std::cout << config::to_display_json(*cfg) << "\n";
    std::cerr << "authshim: " << file << " is valid\n";
    return 0;
}

int run(const std::string& file) {
    auto cfg = load(file);
    if (!cfg) return 1;
    if (auto error = service::setup_logging(cfg->log)) {
        std::cerr << "authshim: " << *error << "\n";
        return 1;
    }
    const auto threads = std::clamp(std::thread::hardware_concurrency(), 1u, 8u);
    const auto& upstream = cfg->upstreams.at(0);
    spdlog::info("authshim {} starting: config {}, upstream \"{}\" ({}), {} thread(s)",
                 AUTHSHIM_VERSION, cfg->source.string(), upstream.name,
                 upstream.address.to_string(), threads);
    proxycore::server server(std::move(*cfg));
    const auto errors = server.bind();
    if (!errors.empty()) {
        for (const auto& e : errors)
            spdlog::error("{}", e);
        spdlog::error("not started: {} listener(s) failed", errors.size());
        return 1;
    }
    service::install_stop_handlers(server.context(), [&server] { server.request_stop(); });
    server.run(threads);
    spdlog::info("authshim stopped");
    spdlog::default_logger()->flush();
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    std::vector<std::string_view> args(argv + 1, argv + argc);
    if (args.empty()) return usage_error("no command given");
    if (args[0] == "--version" || args[0] == "-V" || args[0] == "version") {
        if (args.size() > 1) return usage_error("--version takes no arguments");
        std::cout << "authshim " << AUTHSHIM_VERSION << "\n";
        return 0;
    }
    if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        std::cout << usage_text;
        return 0;
    }
    if (args[0] != "run" && args[0] != "check")
        return usage_error("unknown command '" + std::string(args[0]) + "'");
    command_line cl;
    if (auto error = parse(args, cl)) return usage_error(*error);
    try {
        return cl.command == "run" ? run(cl.config_file) : check(cl.config_file);
    } catch (const std::exception& e) {
        // Startup failures outside the expected ones (e.g. out of memory): say what, exit 1.
        std::cerr << "authshim: fatal: " << e.what() << "\n";
        return 1;
    }
}
