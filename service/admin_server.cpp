// Placeholder: implemented next (issue 6).
#include "service/admin_server.hpp"

namespace authshim::service {

struct admin_server::impl {
    admin_handlers handlers;
};

admin_server::admin_server(admin_handlers handlers) : impl_(std::make_unique<impl>()) {
    impl_->handlers = std::move(handlers);
}
admin_server::~admin_server() = default;

std::optional<std::string> admin_server::start(const config::endpoint& listen,
                                               config::secret_string) {
    return "cannot listen on " + listen.to_string() + ": not implemented yet";
}
void admin_server::stop() {}
config::endpoint admin_server::local_endpoint() const {
    return {};
}
void admin_server::set_token(config::secret_string) {}

} // namespace authshim::service
