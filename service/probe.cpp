// Placeholder: implemented next (issue 6).
#include "service/probe.hpp"

#include <ostream>

namespace authshim::service {

int probe_main(const std::vector<std::string>&, std::ostream&, std::ostream& err) {
    err << "authshim: probe is not implemented yet\n";
    return probe_error;
}

} // namespace authshim::service
