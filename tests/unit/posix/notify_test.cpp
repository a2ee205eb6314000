// The sd_notify wire protocol against real AF_UNIX datagram sockets (path and abstract).
#include "service/platform.hpp"
#include "service/posix/notify.hpp"

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

/// A bound datagram socket, the service manager's end. `name`: a path, or "@..." (abstract).
class receiver {
public:
    explicit receiver(const std::string& name) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::memcpy(address.sun_path, name.data(), name.size());
        if (name[0] == '@') address.sun_path[0] = '\0';
        const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() +
                                                   (name[0] == '@' ? 0 : 1));
        REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&address), length) == 0);
        timeval wait{2, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    }
    ~receiver() { ::close(fd_); }
    receiver(const receiver&) = delete;
    receiver& operator=(const receiver&) = delete;

    /// The next datagram, or "<none>" after 2 s.
    std::string next() {
        char buffer[4096];
        const auto n = ::recv(fd_, buffer, sizeof buffer, 0);
        return n < 0 ? std::string("<none>") : std::string(buffer, static_cast<std::size_t>(n));
    }
    /// Whether a datagram is waiting.
    bool pending() {
        char byte;
        return ::recv(fd_, &byte, 1, MSG_DONTWAIT | MSG_PEEK) >= 0;
    }

private:
    int fd_ = -1;
};

std::filesystem::path scratch_dir() {
    auto dir = std::filesystem::temp_directory_path() /
               ("authshim-notify-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    return dir;
}

} // namespace

using authshim::service::posix::send_notification;

TEST_CASE("a notification reaches a socket named by its path, as one datagram", "[notify]") {
    const auto dir = scratch_dir();
    const auto path = (dir / "notify.sock").string();
    receiver manager(path);
    CHECK_FALSE(send_notification(path, "READY=1\nSTATUS=serving: proxy on 127.0.0.1:3128"));
    CHECK(manager.next() == "READY=1\nSTATUS=serving: proxy on 127.0.0.1:3128");
    CHECK_FALSE(send_notification(path, "STOPPING=1"));
    CHECK(manager.next() == "STOPPING=1");
    std::filesystem::remove_all(dir);
}

TEST_CASE("a notification reaches an abstract socket named @name", "[notify]") {
    const std::string name = "@authshim-notify-test-" + std::to_string(::getpid());
    receiver manager(name);
    CHECK_FALSE(send_notification(name, "RELOADING=1"));
    CHECK(manager.next() == "RELOADING=1");
}

TEST_CASE("a notification that cannot be sent says why", "[notify]") {
    const auto dir = scratch_dir();
    auto error = send_notification((dir / "nobody-listens.sock").string(), "READY=1");
    REQUIRE(error);
    CHECK(error->find("sendto") != std::string::npos);
    error = send_notification("relative/notify.sock", "READY=1");
    REQUIRE(error);
    CHECK(error->find("absolute") != std::string::npos);
    error = send_notification("", "READY=1");
    REQUIRE(error);
    error = send_notification("/" + std::string(200, 'x'), "READY=1");
    REQUIRE(error);
    CHECK(error->find("longer than") != std::string::npos);
    std::filesystem::remove_all(dir);
}

TEST_CASE("notify_service_manager follows $NOTIFY_SOCKET and does nothing without it", "[notify]") {
    const auto dir = scratch_dir();
    const auto path = (dir / "manager.sock").string();
    receiver manager(path);

    ::unsetenv("NOTIFY_SOCKET");
    authshim::service::notify_service_manager("READY=1");
    CHECK_FALSE(manager.pending());

    ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
    authshim::service::notify_service_manager("READY=1\nSTATUS=serving");
    CHECK(manager.next() == "READY=1\nSTATUS=serving");

    // A socket nobody listens on: logged, not thrown, not fatal.
    ::setenv("NOTIFY_SOCKET", (dir / "gone.sock").c_str(), 1);
    CHECK_NOTHROW(authshim::service::notify_service_manager("STOPPING=1"));
    ::unsetenv("NOTIFY_SOCKET");
    std::filesystem::remove_all(dir);
}
