#pragma once
/// `authshim reload --config FILE`: asks the running instance to reload (admin endpoint's
/// POST /reload, else the platform's way). Exit 0 reloaded, 1 refused (or the config is
/// invalid), 2 usage, 3 the running instance cannot be reached.
/// Thread safety: runs on the calling thread only.

#include <string>
#include <vector>

namespace authshim::service {

int reload_command(std::vector<std::string> args);

} // namespace authshim::service
