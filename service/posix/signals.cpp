#include "service/platform.hpp"

#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <memory>

namespace authshim::service {

void install_stop_handlers(boost::asio::io_context& io, std::function<void()> stop) {
    auto signals = std::make_shared<boost::asio::signal_set>(io, SIGINT, SIGTERM);
    // The handler owns the set: once it has run, the set is gone and the default action is back.
    signals->async_wait(
        [signals, stop = std::move(stop)](const boost::system::error_code& ec, int number) {
            if (ec) return;
            spdlog::info("received {}: stopping gracefully (send it again to exit at once)",
                         number == SIGINT ? "SIGINT" : "SIGTERM");
            stop();
        });
}

} // namespace authshim::service
