// Windows: permission bits do not exist; the file's ACL is not inspected here. The config
// folder's ACL (Administrators, SYSTEM and the service SID only) is what keeps a secret file
// private, as documented in ARCHITECTURE.md.
#include "config/file_permissions.hpp"

namespace authshim::config {

const bool secret_file_permissions_checked = false;

std::optional<std::string> secret_file_access_problem(const std::filesystem::path&) {
    return std::nullopt;
}

} // namespace authshim::config
