// Placeholder: implemented next (issue 6).
#include "proxycore/access_log.hpp"

namespace authshim::proxycore {

std::shared_ptr<access_log> access_log::open(const config::access_log_settings&,
                                             std::string& error) {
    error = "the access log is not implemented yet";
    return nullptr;
}

std::string format_access_record(const access_record&, bool) {
    return {};
}

} // namespace authshim::proxycore
