#pragma once
/// The proxy server: binds the listeners, accepts clients (access policy and connection limit
/// first), runs every connection on one io_context driven by one thread, and stops gracefully:
/// stop accepting, let in-flight exchanges finish within `timeouts.shutdown`, then force.
/// One thread by design: a request costs a few microseconds (bench/), far below what any
/// upstream proxy serves, and without a second thread there are no strands, no lock handoffs
/// and no cross-thread wake-ups on the hot path.
/// Ownership: owns the io_context and everything that runs on it.
/// Thread safety: request_stop() and posting to context() are safe from any thread; the rest
/// from the owner.

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

    /// Serves on the calling thread until stopped. Returns after a graceful (or, past
    /// `timeouts.shutdown`, forced) stop.
    void run();

    /// Begins the shutdown. Safe from any thread, idempotent.
    void request_stop();

    /// For platform glue (signal sets) that must live on the server's io_context.
    boost::asio::io_context& context() { return io_; }

    const counters& stats() const;

private:
    boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor);
    boost::asio::awaitable<void> supervise_shutdown();
    void spawn_session(boost::asio::ip::tcp::socket socket);

    boost::asio::io_context io_{1}; // declared first: destroyed last; one thread runs it
    std::shared_ptr<server_state> state_;
    std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
    std::vector<boost::asio::ip::tcp::endpoint> endpoints_;
};

} // namespace authshim::proxycore
