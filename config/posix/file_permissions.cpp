// POSIX: a secret file must give group and other users no permission at all (the rule OpenSSH
// applies to private keys).
#include "config/file_permissions.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <system_error>

namespace authshim::config {

const bool secret_file_permissions_checked = true;

std::optional<std::string> secret_file_access_problem(const std::filesystem::path& file) {
    const std::string name = file.string();
    struct stat info {};
    if (::stat(file.c_str(), &info) != 0)
        return "cannot check the permissions of \"" + name +
               "\": " + std::generic_category().message(errno);

    const auto mode = static_cast<unsigned>(info.st_mode) & 07777u;
    if ((mode & 077u) == 0) return std::nullopt;

    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", mode);
    return "the file \"" + name + "\" has mode " + octal +
           ", so users other than its owner may access it; a file holding a secret must be "
           "private to its owner (run: chmod 600 \"" +
           name + "\")";
}

} // namespace authshim::config
