#pragma once
/// systemd's service notification protocol (sd_notify(3)) without libsystemd: one datagram of
/// `KEY=value` lines to the AF_UNIX socket the service manager names in $NOTIFY_SOCKET.
/// POSIX only (service/posix). Thread safety: any thread; each call uses a socket of its own.

#include <optional>
#include <string>
#include <string_view>

namespace authshim::service::posix {

/// Sends `state` (e.g. "READY=1\nSTATUS=serving") as one datagram to `socket_name`: an absolute
/// path, or `@name` for a Linux abstract socket (what systemd puts in $NOTIFY_SOCKET). Returns
/// why it could not, or nothing once the whole datagram is sent. Waits at most about a second
/// when the receiver's queue is full.
std::optional<std::string> send_notification(std::string_view socket_name, std::string_view state);

} // namespace authshim::service::posix
