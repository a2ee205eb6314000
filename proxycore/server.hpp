#pragma once
/// The proxy server: binds the listeners, accepts clients (access policy and connection limit
/// first), runs every connection on one io_context driven by one thread, and stops gracefully:
/// stop accepting, let in-flight exchanges finish within `timeouts.shutdown`, then force.
/// One thread by design: a request costs a few microseconds (bench/), far below what any
/// upstream proxy serves, and without a second thread there are no strands, no lock handoffs
/// and no cross-thread wake-ups on the hot path.
/// A reload replaces the configuration while serving: listeners are rebound where the addresses
/// changed, new exchanges use the new settings, in-flight requests and tunnels finish with the
/// ones they started with.
/// Ownership: owns the io_context and everything that runs on it.
/// Thread safety: request_stop(), reload() (from any thread but the server's), stats() and
/// local_endpoints() are safe from any thread; the rest from the owner.

#include "config/config.hpp"
#include "proxycore/access_log.hpp"
#include "proxycore/counters.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace authshim::proxycore {

struct server_state;

class server {
public:
    /// `cfg` must be validated with its secrets resolved. `requests_log`: the opened
    /// `log.access` file, null when off.
    explicit server(config::config cfg, std::shared_ptr<access_log> requests_log = nullptr);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    /// Opens every `listen` address. Returns one message per address that failed (empty on
    /// success); on failure nothing is left listening.
    std::vector<std::string> bind();

    /// The addresses actually listened on (ephemeral ports resolved), after bind() or reload().
    std::vector<boost::asio::ip::tcp::endpoint> local_endpoints() const;

    struct reload_outcome {
        std::vector<std::string> errors;  ///< non-empty: nothing was changed
        std::vector<std::string> changes; ///< what the proxy did differently (for the log)
    };

    /// Puts `cfg` (validated, secrets resolved) in force: binds new listen addresses first (any
    /// failure: nothing changes), closes removed ones, keeps the upstream's pooled connections
    /// unless its address or transport changed, and keeps the authentication state unless the
    /// credentials, schemes or lockout settings changed (then a paused credential is tried
    /// again). Runs on the server's thread; the caller waits. Not from the server's thread.
    reload_outcome reload(config::config cfg, std::shared_ptr<access_log> requests_log);

    /// Serves on the calling thread until stopped. Returns after a graceful (or, past
    /// `timeouts.shutdown`, forced) stop.
    void run();

    /// Begins the shutdown. Safe from any thread, idempotent.
    void request_stop();

    /// For platform glue (signal sets) that must live on the server's io_context.
    boost::asio::io_context& context() { return io_; }

    const counters& stats() const;

private:
    struct listener {
        config::endpoint configured;
        std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor;
        boost::asio::ip::tcp::endpoint bound;
    };
    /// Opens `listen`; on failure appends a message to `errors` and returns an empty listener.
    listener open_listener(const config::endpoint& listen, std::vector<std::string>& errors);
    void start_accepting(const listener& l);
    void publish_endpoints(); // server thread or before run()
    reload_outcome apply(config::config cfg, std::shared_ptr<access_log> requests_log);
    boost::asio::awaitable<void> accept_loop(std::shared_ptr<boost::asio::ip::tcp::acceptor> a);
    boost::asio::awaitable<void> supervise_shutdown();
    void spawn_session(boost::asio::ip::tcp::socket socket);

    boost::asio::io_context io_{1}; // declared first: destroyed last; one thread runs it
    std::shared_ptr<server_state> state_;
    std::vector<listener> listeners_; // server thread (or the owner before run())
    bool running_ = false;            // server thread
    mutable std::mutex endpoints_mutex_;
    std::vector<boost::asio::ip::tcp::endpoint> endpoints_; // guarded by endpoints_mutex_
};

} // namespace authshim::proxycore
