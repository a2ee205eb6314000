// `authshim probe`: the command line (--config, --url, --connect) and the config; the exchange
// itself is in probe_session.cpp.

#include "service/probe.hpp"

#include "proxycore/request_rules.hpp"
#include "service/cli.hpp"
#include "service/probe_session.hpp"

#include <optional>
#include <ostream>
#include <string>
#include <string_view>

namespace authshim::service {
namespace {

/// The Windows connectivity check: plain HTTP, tiny, and what WinHTTP services fetch anyway.
constexpr std::string_view default_url = "http://www.msftconnecttest.com/connecttest.txt";

constexpr std::string_view usage_text =
    "usage: authshim probe --config FILE [--url http://HOST/PATH | --connect HOST:PORT]\n"
    "\n"
    "Sends one request through the configured upstream: first without credentials, then\n"
    "answering its 407 as authshim would. Prints the schemes offered, the one chosen, each\n"
    "round trip with status and time, and the outcome. A rejected credential is never sent\n"
    "a second time.\n"
    "\n"
    "  --url URL            GET this http:// URL (default\n"
    "                       http://www.msftconnecttest.com/connecttest.txt)\n"
    "  --connect HOST:PORT  CONNECT instead (a 200 means the tunnel was established; the probe\n"
    "                       closes it)\n"
    "\n"
    "exit codes: 0 ok, 1 bad config, 2 bad command line, 3 upstream unreachable (DNS, refused,\n"
    "TLS), 4 credentials rejected (or none configured), 5 no common scheme, 6 timeout,\n"
    "7 final status >= 400\n";

int usage_error(std::ostream& err, std::string_view message) {
    err << "authshim: " << message << "\n\n" << usage_text;
    return probe_usage;
}

/// The value of `--name VALUE` / `--name=VALUE` at args[i] (advancing i), or nothing when
/// args[i] is another option. `missing` is set when the option has no value.
std::optional<std::string> take_value(const std::vector<std::string>& args, std::size_t& i,
                                      std::string_view name, bool& missing) {
    const std::string_view arg = args[i];
    if (arg == name) {
        if (i + 1 >= args.size() || args[i + 1].empty()) {
            missing = true;
            return std::nullopt;
        }
        i += 2;
        return args[i - 1];
    }
    if (arg.size() > name.size() && arg.starts_with(name) && arg[name.size()] == '=') {
        const auto value = arg.substr(name.size() + 1);
        if (value.empty()) {
            missing = true;
            return std::nullopt;
        }
        ++i;
        return std::string(value);
    }
    return std::nullopt;
}

/// Only printable ASCII goes into a request line.
bool request_line_safe(std::string_view text) {
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c <= 0x20 || c >= 0x7f) return false;
    }
    return true;
}

/// `http://host` and `http://host?q` get the `/` of an empty path.
std::string with_path(std::string_view url) {
    const auto rest = url.substr(7); // after "http://"
    const auto end = rest.find_first_of("/?");
    if (end == std::string_view::npos) return std::string(url) + "/";
    if (rest[end] == '?')
        return std::string(url.substr(0, 7 + end)) + "/" + std::string(rest.substr(end));
    return std::string(url);
}

} // namespace

int probe_main(const std::vector<std::string>& all_args, std::ostream& out, std::ostream& err) {
    std::vector<std::string> args = all_args;
    for (const auto& a : args) {
        if (a == "--help" || a == "-h") {
            out << usage_text;
            return probe_ok;
        }
    }
    std::string error;
    const auto file = take_config_option(args, error);
    if (!error.empty()) return usage_error(err, error);

    std::optional<std::string> url;
    std::optional<std::string> connect;
    for (std::size_t i = 0; i < args.size();) {
        bool missing = false;
        if (auto v = take_value(args, i, "--url", missing)) {
            url = std::move(v);
        } else if (missing) {
            return usage_error(err, "--url needs an http:// URL");
        } else if (auto c = take_value(args, i, "--connect", missing)) {
            connect = std::move(c);
        } else if (missing) {
            return usage_error(err, "--connect needs HOST:PORT");
        } else {
            return usage_error(err, "unknown argument '" + args[i] + "'");
        }
    }
    if (url && connect) return usage_error(err, "--url and --connect exclude each other");
    if (!file) return usage_error(err, "'probe' needs --config FILE");

    probe_request request;
    if (connect) {
        const auto target = proxycore::parse_authority_target(*connect);
        if (!target || !request_line_safe(*connect))
            return usage_error(err, "--connect needs HOST:PORT (e.g. example.com:443), got '" +
                                        *connect + "'");
        request = {"CONNECT", target->authority, target->authority, target->host};
    } else {
        const std::string given = url.value_or(std::string(default_url));
        const auto target = proxycore::parse_absolute_http_target(given);
        if (!target || !request_line_safe(given))
            return usage_error(err, "--url needs an http:// URL without spaces or fragment "
                                    "(for https use --connect HOST:443), got '" +
                                        given + "'");
        request = {"GET", with_path(given), target->authority, target->host};
    }

    const auto cfg = load_config(*file, err);
    if (!cfg) return probe_error;
    return run_probe(*cfg, request, out);
}

} // namespace authshim::service
