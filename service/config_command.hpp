#pragma once
/// `authshim config set [--config FILE] [--upstream ADDRESS] [--listen-port PORT]
/// [--bypass LIST] [--skip-empty]`: writes those values into the config file in place (a byte
/// splice: comments and layout survive), after checking that the edited file loads. What
/// installers call (the MSI's UPSTREAM, LISTEN_PORT and BYPASS). Exit 0 written or nothing to
/// change, 1 refused (nothing written), 2 usage. Thread safety: runs on the calling thread only.

#include <string>
#include <vector>

namespace authshim::service {

/// `args[0]` is "config".
int config_command(std::vector<std::string> args);

} // namespace authshim::service
