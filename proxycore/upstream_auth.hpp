#pragma once
/// Authentication toward one upstream proxy, around the pure auth/ library: which scheme the
/// upstream uses, pre-emptive Proxy-Authorization (Basic always; Digest with the connection's
/// own nonce and next nc), answering 407 challenges (stale nonces without counting a failure),
/// downgrade protection and the lockout guard with single-flight waiting.
/// Ownership: one per upstream, shared by all sessions (held in server_state).
/// Thread safety: every member function may be called from any thread; shared state
/// is guarded by a mutex. A connection's Digest state is touched only by the session that holds
/// the connection.

#include "auth/digest.hpp"
#include "auth/lockout.hpp"
#include "auth/scheme.hpp"
#include "config/config.hpp"
#include "config/secret.hpp"
#include "proxycore/counters.hpp"
#include "proxycore/upstream_pool.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/fields.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace authshim::proxycore {

class upstream_auth {
public:
    struct settings {
        std::string credential_name;
        std::string username;
        config::secret_string password;
        std::vector<auth::scheme> schemes;
        unsigned max_rejections = 1;
        std::optional<std::chrono::milliseconds> retry_after;
        std::chrono::milliseconds wait_limit{15'000}; ///< longest single-flight wait
    };

    /// Publishes its state (scheme, verified/paused, retry time) and counts its events in
    /// `stats`, which must outlive it.
    upstream_auth(settings s, counters& stats);

    /// A reload replaced this object (new credentials): requests still in flight finish with
    /// it, but it no longer publishes its state over its successor's.
    void retire();
    /// Whether retire() was called (a reload put other credentials in force).
    bool retired() const;

    /// What to put on the next request sent on `connection`.
    struct plan {
        enum class kind { send, paused } what = kind::send;
        /// Proxy-Authorization value, empty to send none. Secret material: never log it.
        std::string header;
        bool carries_credentials = false;
        std::string message; ///< why, when paused (safe to show the client)
    };

    /// Decides the Proxy-Authorization of the next request: waits (single-flight) while another
    /// request tries the still unverified credential. `body` is the buffered request body (for
    /// Digest auth-int), empty optional when it is streamed.
    boost::asio::awaitable<plan> prepare(upstream_connection& connection, std::string_view method,
                                         std::string_view digest_uri,
                                         std::optional<std::string_view> body);

    /// The outcome of a 407.
    struct verdict {
        enum class kind {
            retry,    ///< a new challenge or a stale nonce was taken in: send the request again
            rejected, ///< the upstream refused the credential (counted by the lockout guard)
            failed,   ///< no usable scheme, downgrade refused or a malformed challenge
        } what = kind::failed;
        std::string message; ///< for the client's 502 and the log; never secret
    };

    /// Takes in a 407's challenges. `sent` tells whether the request carried credentials.
    verdict on_407(upstream_connection& connection, const boost::beast::http::fields& head,
                   bool sent);

    /// Any answer but 407 to a request that carried credentials: the credential works; a
    /// Proxy-Authentication-Info `nextnonce` is applied to the connection's Digest state.
    void on_answer(upstream_connection& connection, const boost::beast::http::fields& head,
                   bool sent);

    /// `connection` will not carry another request (it became a tunnel): its Digest nonce is
    /// kept for the next connection that has none, saving that connection a 407.
    void release_nonce(upstream_connection& connection);

    /// The request carrying credentials got no answer at all (network error, timeout).
    void on_abandoned(bool sent);

    const std::string& credential_name() const { return settings_.credential_name; }

private:
    void wake_waiters();
    std::string paused_message() const; // requires mutex_
    void publish();                     // requires mutex_

    const settings settings_;
    counters& stats_;
    bool retired_ = false;                     // guarded by mutex_
    const config::secret_string basic_header_; ///< `Basic <base64>`, computed once
    mutable std::mutex mutex_;
    auth::lockout_guard guard_;          // guarded by mutex_
    std::optional<auth::scheme> scheme_; // guarded by mutex_
    bool digest_offered_before_ = false; // guarded by mutex_
    struct waiter;
    std::vector<std::shared_ptr<waiter>> waiters_; // guarded by mutex_
    static constexpr std::size_t max_spare_nonces = 64;
    std::vector<auth::digest_state> spare_nonces_; // guarded by mutex_
};

} // namespace authshim::proxycore
