#pragma once
/// Whether a file is private enough to hold a secret. One declaration, one implementation per
/// platform (config/posix/file_permissions.cpp, config/windows/file_permissions.cpp); CMake
/// compiles the one that fits. Thread safety: no shared state.

#include <filesystem>
#include <optional>
#include <string>

namespace authshim::config {

/// True where `secret_file_access_problem` inspects permission bits (POSIX). On Windows the
/// file's ACL is not inspected: the config folder's ACL is what protects it.
extern const bool secret_file_permissions_checked;

/// Why `file` (an existing regular file) must not be used as a secret, or nothing when it may.
/// POSIX: refused when group or other users have any permission on it; the text names the file,
/// shows its mode (e.g. 0640) and advises `chmod 600`. It reads the mode, not access(), so the
/// answer is the same for root.
std::optional<std::string> secret_file_access_problem(const std::filesystem::path& file);

} // namespace authshim::config
