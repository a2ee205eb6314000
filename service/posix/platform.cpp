// POSIX platform glue: signals, the default secret resolver, no platform commands.
#include "service/platform.hpp"

#include "service/posix/notify.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

namespace authshim::service {

void install_stop_handlers(boost::asio::io_context& io, std::function<void()> stop) {
    auto signals = std::make_shared<boost::asio::signal_set>(io, SIGINT, SIGTERM);
    // The handler owns the set: once it has run, the set is gone and the default action is back.
    signals->async_wait(
        [signals, stop = std::move(stop)](const boost::system::error_code& ec, int number) {
            if (ec) return;
            spdlog::info("received {}: stopping gracefully (send it again to exit at once)",
                         number == SIGINT ? "SIGINT" : "SIGTERM");
            stop();
        });
}

namespace {

void wait_for_hangup(std::shared_ptr<boost::asio::signal_set> signals,
                     std::function<void(std::string)> reload) {
    signals->async_wait(
        [signals, reload = std::move(reload)](const boost::system::error_code& ec, int) mutable {
            if (ec) {
                // Cancelled by the stop: the set goes (which restores SIGHUP's default action,
                // termination), then SIGHUP is ignored while the shutdown runs.
                signals.reset();
                std::signal(SIGHUP, SIG_IGN);
                return;
            }
            spdlog::info("received SIGHUP: reloading the configuration");
            reload("SIGHUP");
            wait_for_hangup(std::move(signals), std::move(reload));
        });
}

} // namespace

void ignore_early_reload_requests() {
    std::signal(SIGHUP, SIG_IGN);
}

std::function<void()> install_reload_handler(boost::asio::io_context& io,
                                             std::function<void(std::string trigger)> reload) {
    auto signals = std::make_shared<boost::asio::signal_set>(io, SIGHUP);
    wait_for_hangup(signals, std::move(reload));
    // The pending wait keeps io.run() from returning: the stop cancels it. Weak: the set lives
    // in its own handler, on the io_context, never longer.
    return [&io, weak = std::weak_ptr<boost::asio::signal_set>(signals)] {
        boost::asio::post(io, [weak] {
            if (auto s = weak.lock()) {
                boost::system::error_code ec;
                s->cancel(ec);
            }
        });
    };
}

bool wait_readable(std::uintptr_t socket, std::chrono::milliseconds timeout) {
    pollfd ready{};
    ready.fd = static_cast<int>(socket);
    ready.events = POLLIN;
    return ::poll(&ready, 1, static_cast<int>(timeout.count())) != 0;
}

std::optional<std::uint64_t> raise_open_file_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return std::nullopt;
    const auto soft = limit.rlim_cur;
    if (limit.rlim_cur < limit.rlim_max) {
        rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max;
        // An unlimited hard limit is not a soft limit the kernel takes (Linux caps it at
        // fs.nr_open, macOS at OPEN_MAX): keep what we have then.
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
            spdlog::info("open-file limit raised from {} to {} (the hard limit)",
                         static_cast<std::uint64_t>(soft),
                         static_cast<std::uint64_t>(raised.rlim_cur));
            return static_cast<std::uint64_t>(raised.rlim_cur);
        }
        spdlog::info("open-file limit stays at {}: raising it to the hard limit {} failed: {}",
                     static_cast<std::uint64_t>(soft), static_cast<std::uint64_t>(limit.rlim_max),
                     std::strerror(errno));
        return static_cast<std::uint64_t>(soft);
    }
    spdlog::debug("open-file limit {} (already the hard limit)", static_cast<std::uint64_t>(soft));
    return static_cast<std::uint64_t>(soft);
}

void notify_service_manager(std::string_view state) {
    // Read at each call: nothing in authshim sets environment variables after start.
    const char* socket_name = std::getenv("NOTIFY_SOCKET");
    if (socket_name == nullptr || *socket_name == '\0') return;
    if (auto error = posix::send_notification(socket_name, state))
        spdlog::warn("could not tell the service manager (NOTIFY_SOCKET={}) '{}': {}", socket_name,
                     state.substr(0, state.find('\n')), *error);
}

void remove_stop_handlers() {}

std::unique_ptr<config::secret_resolver> make_secret_resolver() {
    return std::make_unique<config::default_secret_resolver>();
}

std::optional<std::filesystem::path> default_config_file() {
    return std::nullopt;
}

std::vector<std::string> config_access_problems(const config::config&) {
    // Secret files are checked where they are read (config/secret_resolver.cpp: group/other
    // permission bits refused); the config file itself only ever names them or holds `plain`
    // secrets, which the loader already warns about.
    return {};
}

std::vector<std::shared_ptr<spdlog::sinks::sink>> platform_log_sinks(const config::logging&) {
    return {};
}

std::optional<int> run_platform_command(const std::vector<std::string>& args) {
    if (args.empty()) return std::nullopt;
    const auto& command = args[0];
    if (command != "service" && command != "winhttp" && command != "credentials")
        return std::nullopt;
    std::cerr << "authshim: '" << command
              << "' is only available on Windows (on Linux, install the systemd unit "
                 "packaging/authshim.service and keep secrets in an {\"env\"} or {\"file\"} "
                 "source)\n";
    return 2;
}

std::optional<std::string> replace_file_atomically(const std::filesystem::path& file,
                                                   const std::string& text) {
    struct stat original {};
    if (::stat(file.c_str(), &original) != 0)
        return "cannot read the attributes of " + file.string() + ": " + std::strerror(errno);
    std::string temp_name = file.string() + ".authshim-new-XXXXXX";
    const int fd = ::mkostemp(temp_name.data(), O_CLOEXEC); // created 0600
    if (fd < 0) return "cannot create a file beside " + file.string() + ": " + std::strerror(errno);
    auto fail = [&](const std::string& what) {
        const std::string reason = std::strerror(errno);
        ::close(fd);
        ::unlink(temp_name.c_str());
        return std::optional<std::string>(what + ": " + reason);
    };
    // Owner and group first, then the mode: a file the service reads through its group must
    // not lose that group. A caller who may not keep them (not root, not the owner) is refused.
    struct stat created {};
    if (::fstat(fd, &created) != 0) return fail("cannot read the attributes of " + temp_name);
    if ((created.st_uid != original.st_uid || created.st_gid != original.st_gid) &&
        ::fchown(fd, original.st_uid, original.st_gid) != 0)
        return fail("cannot give the new file the owner and group of " + file.string() +
                    " (run as root or as its owner)");
    if (::fchmod(fd, original.st_mode & 07777) != 0)
        return fail("cannot set the mode of " + temp_name);
    for (std::size_t done = 0; done < text.size();) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail("cannot write " + temp_name);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) return fail("cannot flush " + temp_name);
    if (::close(fd) != 0) {
        const std::string reason = std::strerror(errno);
        ::unlink(temp_name.c_str());
        return "cannot write " + temp_name + ": " + reason;
    }
    if (::rename(temp_name.c_str(), file.c_str()) != 0) {
        const std::string reason = std::strerror(errno);
        ::unlink(temp_name.c_str());
        return "cannot replace " + file.string() + ": " + reason;
    }
    // The rename itself is durable once the folder is flushed.
    if (const int dir = ::open(file.parent_path().empty() ? "." : file.parent_path().c_str(),
                               O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        dir >= 0) {
        ::fsync(dir);
        ::close(dir);
    }
    return std::nullopt;
}

std::string_view platform_usage() {
    return {};
}

} // namespace authshim::service
