// `authshim config set`: the few values an installer or an admin sets from the command line,
// spliced into the config file (config::set_value) and checked with the loader before the file
// is replaced.
#include "service/config_command.hpp"

#include "config/config_edit.hpp"
#include "config/loader.hpp"
#include "config/winhttp_bypass.hpp"
#include "service/cli.hpp"
#include "service/platform.hpp"

#include <charconv>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace authshim::service {
namespace {

namespace fs = std::filesystem;

int usage(const std::string& problem) {
    std::cerr << "authshim config: " << problem << "\n"
              << "usage: authshim config set [--config FILE] [--upstream HOST:PORT] "
                 "[--listen-port PORT] [--bypass LIST] [--skip-empty]\n"
                 "  --upstream     the first upstream's address (host:port, http://host:port or "
                 "https://host:port)\n"
                 "  --listen-port  the port of every listen address (their hosts are kept)\n"
                 "  --bypass       winhttp.bypass: what `winhttp apply` hands WinHTTP as its "
                 "bypass list\n"
                 "  --skip-empty   an option whose value is empty is left out (for installers "
                 "that pass unset properties as empty strings)\n";
    return 2;
}

bool printable_ascii(std::string_view text) {
    for (const char c : text)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e)
            return false;
    return true;
}

/// `text` (checked to be printable ASCII, or from the loader) as a JSON string literal.
std::string json_text(std::string_view text) {
    return config::json_quote(text).value_or("\"\"");
}

/// One value to set: where, the JSON to write, and what to tell the user.
struct assignment {
    std::vector<config::path_step> path;
    std::string json;
    std::string shown;
};

int config_set(std::vector<std::string> args) {
    std::string error;
    const auto file = take_config_option(args, error);
    if (!error.empty()) return usage(error);
    std::optional<std::string> upstream, listen_port, bypass;
    bool skip_empty = false;
    for (std::size_t i = 2; i < args.size(); ++i) {
        const std::string& arg = args[i];
        std::optional<std::string>* target = nullptr;
        std::string name = arg;
        std::optional<std::string> value;
        if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string::npos) {
            name = arg.substr(0, eq);
            value = arg.substr(eq + 1);
        }
        if (name == "--skip-empty" && !value) {
            skip_empty = true;
            continue;
        }
        if (name == "--upstream")
            target = &upstream;
        else if (name == "--listen-port")
            target = &listen_port;
        else if (name == "--bypass")
            target = &bypass;
        else
            return usage("unknown argument '" + arg + "'");
        if (!value) {
            if (i + 1 >= args.size()) return usage(name + " needs a value");
            value = args[++i];
        }
        *target = std::move(value);
    }
    if (!file) return usage("'config set' needs --config FILE");
    std::vector<std::string> skipped;
    for (auto [name, value] :
         {std::pair{"--upstream", &upstream}, std::pair{"--listen-port", &listen_port},
          std::pair{"--bypass", &bypass}}) {
        if (!*value || !(*value)->empty()) continue;
        if (!skip_empty) return usage(std::string(name) + " is empty (--skip-empty leaves it out)");
        value->reset();
    }

    std::error_code ec;
    // A symbolic link stays one: the file it points to is what gets replaced.
    fs::path config_file = fs::absolute(*file, ec);
    if (const auto real = fs::canonical(config_file, ec); !ec) config_file = real;
    auto original = read_text_file(config_file, error);
    if (!original) {
        std::cerr << "authshim config: " << error
                  << " (write the config first; see packaging/authshim.example.json)\n";
        return 1;
    }

    std::vector<assignment> changes;
    if (upstream) {
        if (!printable_ascii(*upstream) || upstream->find_first_of(" \"\\") != std::string::npos)
            return usage("--upstream must be an address such as proxy.corp.example:8080, "
                         "without spaces, quotes, backslashes or control characters");
        changes.push_back({{std::string("upstreams"), std::size_t{0}, std::string("address")},
                           json_text(*upstream),
                           "upstreams[0].address = " + *upstream});
    }
    if (listen_port) {
        unsigned port = 0;
        const auto* end = listen_port->data() + listen_port->size();
        const auto [stop, problem] = std::from_chars(listen_port->data(), end, port);
        if (problem != std::errc{} || stop != end || port < 1 || port > 65535)
            return usage("--listen-port must be a port number from 1 to 65535, not '" +
                         (printable_ascii(*listen_port) ? *listen_port : std::string("?")) + "'");
        // The hosts come from the file as it is: it has to load.
        const auto current =
            config::load_string(*original, config_file.string(), config_file.parent_path());
        if (!current.value) {
            for (const auto& e : current.errors)
                std::cerr << "error: " << e.to_string() << "\n";
            std::cerr << "authshim config: nothing changed: --listen-port keeps the hosts of "
                         "\"listen\", so the file has to load first\n";
            return 1;
        }
        bool same = true;
        for (const auto& address : current.value->listen)
            same = same && address.port == port;
        std::string list = "[";
        std::string shown;
        for (const auto& address : current.value->listen) {
            config::endpoint moved = address;
            moved.port = static_cast<std::uint16_t>(port);
            list += (list.size() > 1 ? ", " : "") + json_text(moved.to_string());
            shown += (shown.empty() ? "" : ", ") + moved.to_string();
        }
        // Already so: the file is left as it is (the array is rewritten on one line otherwise).
        if (!same) changes.push_back({{std::string("listen")}, list + "]", "listen = " + shown});
    }
    if (bypass) {
        if (!config::validate_winhttp_bypass(*bypass, &error)) return usage("--bypass: " + error);
        changes.push_back({{std::string("winhttp"), std::string("bypass")},
                           json_text(*bypass),
                           "winhttp.bypass = " + *bypass});
    }
    if (changes.empty()) {
        std::cout << "authshim config: nothing to set; " << config_file.string()
                  << " is unchanged\n";
        return 0;
    }

    std::string text = *original;
    for (const auto& change : changes) {
        auto edited = config::set_value(text, change.path, change.json);
        if (!edited.text) {
            std::cerr << "authshim config: nothing changed: cannot edit " << config_file.string()
                      << ": " << edited.error << "\n";
            return 1;
        }
        text = std::move(*edited.text);
    }
    // The whole edited file as the service will load it (secrets are not resolved: they may
    // live where only the service can read them).
    const auto result = config::load_string(text, config_file.string(), config_file.parent_path());
    for (const auto& w : result.warnings)
        std::cerr << "warning: " << w.to_string() << "\n";
    if (!result.value) {
        for (const auto& e : result.errors)
            std::cerr << "error: " << e.to_string() << "\n";
        std::cerr << "authshim config: nothing changed: the edited configuration would not "
                     "load (the errors above are in the edited text)\n";
        return 1;
    }
    if (text == *original) {
        std::cout << "authshim config: " << config_file.string()
                  << " already has these values; unchanged\n";
        return 0;
    }
    if (auto problem = replace_file_atomically(config_file, text)) {
        std::cerr << "authshim config: " << *problem << "\n";
        return 1;
    }
    for (const auto& change : changes)
        std::cout << "set " << change.shown << "\n";
    std::cout << "wrote " << config_file.string()
              << "; a running authshim uses it after `authshim reload`\n";
    return 0;
}

} // namespace

int config_command(std::vector<std::string> args) {
    if (args.size() < 2) return usage("'config' needs a subcommand");
    if (args[1] == "set") return config_set(std::move(args));
    return usage("unknown config subcommand '" + args[1] + "'");
}

} // namespace authshim::service
