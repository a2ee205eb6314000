#include "proxycore/events.hpp"

namespace authshim::proxycore {
namespace {
thread_local event_id current = event_id::none;
}

event_id current_event() noexcept {
    return current;
}

void detail::set_current_event(event_id id) noexcept {
    current = id;
}

} // namespace authshim::proxycore
