#pragma once
/// The proxy server: binds the listeners, accepts clients (access policy and connection limit
/// first), runs one io_context on N threads with a strand per connection, and stops
/// gracefully: stop accepting, let in-flight exchanges finish within `timeouts.shutdown`, then
/// force.
/// Ownership: owns the io_context and everything that runs on it.
/// Thread safety: request_stop() may be called from any thread; the rest from the owner.

#include "config/config.hpp"
#include "proxycore/counters.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <string>
#include <vector>

namespace authshim::proxycore {

struct server_state;

class server {
public:
    explicit server(config::config cfg);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    /// Opens every `listen` address. Returns one message per address that failed (empty on
    /// success); on failure nothing is left listening.
    std::vector<std::string> bind();

    /// The addresses actually listened on (ephemeral ports resolved), after bind().
    std::vector<boost::asio::ip::tcp::endpoint> local_endpoints() const;

    /// Serves until stopped, on `threads` threads (the caller's included). Returns after a
    /// graceful (or, past `timeouts.shutdown`, forced) stop.
    void run(unsigned threads);

    /// Begins the shutdown. Safe from any thread, idempotent.
    void request_stop();

    /// For platform glue (signal sets) that must live on the server's io_context.
    boost::asio::io_context& context() { return io_; }

    const counters& stats() const;

private:
    boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor);
    boost::asio::awaitable<void> supervise_shutdown();
    void spawn_session(boost::asio::ip::tcp::socket socket);

    boost::asio::io_context io_; // declared first: destroyed last
    std::shared_ptr<server_state> state_;
    std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
    std::vector<boost::asio::ip::tcp::endpoint> endpoints_;
};

} // namespace authshim::proxycore
