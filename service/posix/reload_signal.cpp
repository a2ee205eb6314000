// `authshim reload` without an admin endpoint on POSIX: finds the running `authshim run` whose
// --config is the same file (by /proc: the process's argv and working directory) and sends it
// SIGHUP, what `systemctl reload authshim` does through the unit's ExecReload.
#include "service/platform.hpp"

#include <csignal>
#include <cstring>
#include <fstream>
#include <iterator>
#include <ostream>
#include <string>
#include <system_error>
#include <vector>

#include <sys/types.h>
#include <unistd.h>

namespace authshim::service {
namespace {

namespace fs = std::filesystem;

/// The NUL-separated argv of process `pid`; empty when it cannot be read.
std::vector<std::string> command_line(const fs::path& proc_dir) {
    std::ifstream in(proc_dir / "cmdline", std::ios::binary);
    const std::string raw{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::vector<std::string> args;
    std::string current;
    for (const char ch : raw) {
        if (ch == '\0') {
            args.push_back(std::move(current));
            current.clear();
        } else {
            current += ch;
        }
    }
    if (!current.empty()) args.push_back(std::move(current));
    return args;
}

/// The config file an `authshim run` command line serves (the last --config wins, as in
/// take_config_option); empty when `args` is not one.
std::string served_config(const std::vector<std::string>& args) {
    if (args.size() < 2 || fs::path(args[0]).filename() != "authshim") return {};
    bool run = false;
    std::string file;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const auto& a = args[i];
        if ((a == "--config" || a == "-c") && i + 1 < args.size()) {
            file = args[++i];
        } else if (a.starts_with("--config=")) {
            file = a.substr(9);
        } else if (a == "run" && !run && file.empty()) {
            run = true;
        }
    }
    return run ? file : std::string();
}

bool same_file(const fs::path& a, const fs::path& b) {
    std::error_code ec;
    const bool same = fs::equivalent(a, b, ec);
    return !ec && same;
}

} // namespace

int reload_without_admin(const config::config& cfg, std::ostream& out, std::ostream& err) {
    const fs::path proc("/proc");
    std::error_code ec;
    if (!fs::is_directory(proc / "self", ec)) {
        err << "authshim: admin.listen is null and there is no /proc to find the running "
               "instance by: send it SIGHUP (kill -HUP <pid>)\n";
        return 3;
    }
    const auto self = getpid();
    std::vector<pid_t> sent;
    std::vector<std::string> refused;
    for (fs::directory_iterator it(proc, ec), end; !ec && it != end; it.increment(ec)) {
        const auto name = it->path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
        const auto pid = static_cast<pid_t>(std::stol(name));
        if (pid == self) continue;
        const auto file = served_config(command_line(it->path()));
        if (file.empty()) continue;
        // A relative --config is relative to that process's working directory.
        fs::path served(file);
        if (served.is_relative()) {
            std::error_code cwd_ec;
            const auto cwd = fs::read_symlink(it->path() / "cwd", cwd_ec);
            if (cwd_ec) continue;
            served = cwd / served;
        }
        if (!same_file(served, cfg.source)) continue;
        if (kill(pid, SIGHUP) == 0)
            sent.push_back(pid);
        else
            refused.push_back(std::to_string(pid) + " (" + std::strerror(errno) + ")");
    }
    for (const auto& r : refused)
        err << "authshim: cannot signal authshim process " << r
            << ": run `authshim reload` as its user or as root\n";
    if (sent.empty()) {
        if (!refused.empty()) return 1;
        err << "authshim: no running `authshim run` serves " << cfg.source.string()
            << " (admin.listen is null, so the instance was looked for by its command line)\n";
        return 3;
    }
    for (const auto pid : sent)
        out << "authshim: sent SIGHUP to authshim (pid " << pid
            << "): it reloads its configuration now; the outcome is in its log\n";
    return refused.empty() ? 0 : 1;
}

} // namespace authshim::service
