// sd_notify(3)'s wire protocol: a datagram to an AF_UNIX socket, path or abstract.
#include "service/posix/notify.hpp"

#include <cerrno>
#include <cstddef>
#include <cstring>

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

namespace authshim::service::posix {

std::optional<std::string> send_notification(std::string_view socket_name, std::string_view state) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (socket_name.empty() || (socket_name.front() != '/' && socket_name.front() != '@'))
        return std::string("not an absolute socket path or an @abstract socket name");
    // A path needs its terminating NUL inside sun_path; an abstract name is counted exactly.
    if (socket_name.size() >= sizeof(address.sun_path))
        return "socket name longer than " + std::to_string(sizeof(address.sun_path) - 1) + " bytes";
    std::memcpy(address.sun_path, socket_name.data(), socket_name.size());
    if (socket_name.front() == '@') address.sun_path[0] = '\0';
    const auto length =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_name.size() +
                               (socket_name.front() == '/' ? 1 : 0));

    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::string("socket: ") + std::strerror(errno);
    // A full queue at the service manager (a boot storm) makes the send wait, for at most a
    // second: READY=1 must not be dropped (systemd would kill a Type=notify service that never
    // says it started), nor may a manager that does not read hold up authshim for long.
    const timeval limit{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    ssize_t sent = -1;
    do {
        sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                        reinterpret_cast<const sockaddr*>(&address), length);
    } while (sent < 0 && errno == EINTR);
    const int error = errno;
    ::close(fd);
    if (sent < 0) return std::string("sendto: ") + std::strerror(error);
    if (static_cast<std::size_t>(sent) != state.size()) return std::string("short datagram");
    return std::nullopt;
}

} // namespace authshim::service::posix
