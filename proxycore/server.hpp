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
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
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

    /// The admin endpoint's addresses (empty: none): like the listeners, requests aimed at them
    /// are refused (no loops through authshim into its own admin endpoint). From the owner,
    /// before run(); a reload passes them again.
    void set_admin_endpoints(std::vector<boost::asio::ip::tcp::endpoint> endpoints);

    struct reload_outcome {
        std::vector<std::string> errors;  ///< non-empty: nothing was changed
        std::vector<std::string> changes; ///< what the proxy did differently (for the log)
    };

    /// Puts `cfg` (validated, secrets resolved) in force: binds new listen addresses first (any
    /// failure: nothing changes), closes removed ones, keeps the upstream's pooled connections
    /// unless its address or transport changed, and keeps the authentication state unless the
    /// credentials, schemes or lockout settings changed (then a paused credential is tried
    /// again). `admin_endpoints`: as for set_admin_endpoints, those in force after the reload.
    /// Runs on the server's thread; the caller waits. Not from the server's thread.
    reload_outcome reload(config::config cfg, std::shared_ptr<access_log> requests_log,
                          std::vector<boost::asio::ip::tcp::endpoint> admin_endpoints);

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
    /// The listeners and the admin endpoint: where requests must not be aimed.
    std::vector<boost::asio::ip::tcp::endpoint> own_endpoints() const;
    reload_outcome apply(config::config cfg, std::shared_ptr<access_log> requests_log,
                         std::vector<boost::asio::ip::tcp::endpoint> admin_endpoints);
    boost::asio::awaitable<void> accept_loop(std::shared_ptr<boost::asio::ip::tcp::acceptor> a);
    /// Counts a connection answered 503 over limits.max_connections; logs without flooding.
    void note_busy_rejection(std::size_t max_connections);
    boost::asio::awaitable<void> summarize_busy(std::size_t max_connections);
    boost::asio::awaitable<void> supervise_shutdown();
    void spawn_session(boost::asio::ip::tcp::socket socket);

    boost::asio::io_context io_{1}; // declared first: destroyed last; one thread runs it
    std::shared_ptr<server_state> state_;
    std::vector<listener> listeners_; // server thread (or the owner before run())
    std::vector<boost::asio::ip::tcp::endpoint> admin_endpoints_; // same
    bool running_ = false;                                        // server thread
    /// Pause after a failed accept (e.g. EMFILE: out of descriptors) before trying again.
    static constexpr std::chrono::milliseconds accept_backoff{100};
    /// How often a 503 episode (connections over limits.max_connections) logs its count.
    static constexpr std::chrono::seconds busy_summary_interval{5};
    struct busy_episode {
        bool episode = false;         ///< a first 503 was logged; a summary is pending
        std::uint64_t unreported = 0; ///< 503s answered since the last line
    };
    busy_episode busy_;                         // server thread
    boost::asio::steady_timer busy_timer_{io_}; // server thread
    mutable std::mutex endpoints_mutex_;
    std::vector<boost::asio::ip::tcp::endpoint> endpoints_; // guarded by endpoints_mutex_
};

} // namespace authshim::proxycore
