#include "service/admin_server.hpp"

#include "auth/crypto.hpp"
#include "service/platform.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <spdlog/spdlog.h>

// poll() instead of select(): with select, httplib answers 500 to any connection whose
// descriptor is >= FD_SETSIZE (1024), which a busy proxy reaches. Not a platform switch: httplib
// maps it to WSAPoll on Windows itself. (After Asio: on Windows both include winsock2.h.)
#ifndef CPPHTTPLIB_USE_POLL
#define CPPHTTPLIB_USE_POLL
#endif
#include <httplib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace authshim::service {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr std::time_t io_timeout_seconds = 5;       // each read and write on a connection
constexpr std::size_t max_body_bytes = 64 * 1024;   // 413 beyond
constexpr std::size_t max_request_bytes = 1 << 20;  // head + body read for one request
constexpr auto request_deadline = 10s;              // to read one request (plus one read)
constexpr std::size_t keep_alive_max_requests = 10; // per connection
constexpr std::size_t worker_threads = 2;
constexpr std::size_t max_queued_connections = 16; // then the accept loop waits
constexpr auto stop_check_interval = 100ms;        // a waiting read notices stop() this soon
// shutdown() takes SHUT_RDWR / SHUT_WR on POSIX and SD_BOTH / SD_SEND on Windows: the same
// values under different names.
constexpr int shut_both = 2;
constexpr int shut_write = 1;

/// What a connection is doing, for stop(): one that waits for or reads a request is shut down at
/// once; one whose handler runs is left to finish and write its response.
struct connection {
    socket_t socket;
    bool handling = false;    // guarded by the registry's mutex
    bool close_after = false; // close after this response (this connection's thread only)
    bool unread_data = false; // and read what the client still sends first
};

/// The connection whose request the current thread is serving (set around process_request).
thread_local connection* current_connection = nullptr;

class connection_registry {
public:
    bool add(connection& c) {
        std::lock_guard lock(mutex_);
        if (stopping_) return false;
        connections_.insert(&c);
        return true;
    }
    void remove(connection& c) {
        std::lock_guard lock(mutex_);
        connections_.erase(&c);
    }
    void begin_handling(connection& c) {
        std::lock_guard lock(mutex_);
        c.handling = true;
    }
    /// False when the server is stopping: serve no further request on `c`.
    bool end_request(connection& c) {
        std::lock_guard lock(mutex_);
        c.handling = false;
        return !stopping_;
    }
    void stop() {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        // Under the mutex: a connection closes its socket only after remove(), so the descriptor
        // shut down here cannot have been reused.
        for (auto* c : connections_)
            if (!c->handling) ::shutdown(c->socket, shut_both);
    }
    void reset() {
        std::lock_guard lock(mutex_);
        stopping_ = false;
    }
    const std::atomic<bool>& stopping() const { return stopping_; }

private:
    std::mutex mutex_;
    std::atomic<bool> stopping_ = false;
    std::set<connection*> connections_;
};

/// The task queue httplib hands accepted connections to: a fixed number of workers and a bounded
/// queue. When both are full, enqueue() (the accept loop) waits: further clients wait in the
/// kernel's backlog instead of holding descriptors the proxy needs.
class worker_pool final : public httplib::TaskQueue {
public:
    worker_pool(std::size_t threads, const std::atomic<bool>& stopping) : stopping_(stopping) {
        for (std::size_t i = 0; i < threads; ++i)
            threads_.emplace_back([this] { run(); });
    }
    ~worker_pool() override = default;

    void enqueue(std::function<void()> fn) override {
        std::unique_lock lock(mutex_);
        while (jobs_.size() >= max_queued_connections && !stopping_.load())
            room_.wait_for(lock, 50ms);
        jobs_.push_back(std::move(fn));
        work_.notify_one();
    }

    /// Runs what is queued (connections accepted while stopping close at once), then joins.
    void shutdown() override {
        {
            std::lock_guard lock(mutex_);
            shutdown_ = true;
        }
        work_.notify_all();
        for (auto& thread : threads_)
            thread.join();
    }

private:
    void run() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lock(mutex_);
                work_.wait(lock, [this] { return shutdown_ || !jobs_.empty(); });
                if (jobs_.empty()) return;
                job = std::move(jobs_.front());
                jobs_.pop_front();
            }
            room_.notify_one();
            try {
                job();
            } catch (const std::exception& e) {
                spdlog::error("admin endpoint: a connection failed: {}", e.what());
            } catch (...) {
                spdlog::error("admin endpoint: a connection failed");
            }
        }
    }

    const std::atomic<bool>& stopping_;
    std::mutex mutex_;
    std::condition_variable work_;
    std::condition_variable room_;
    std::deque<std::function<void()>> jobs_;
    bool shutdown_ = false;
    std::vector<std::thread> threads_;
};

/// httplib's Stream over one accepted connection, with what httplib 0.11.4 lacks: a bound on the
/// bytes read for one request (its line readers grow without limit until a line ends, and it
/// takes any number of header lines and any chunked body) and on the time to read it (its
/// timeout is per read). Reads block up to the socket's receive timeout (set by httplib).
class bounded_stream final : public httplib::Stream {
public:
    bounded_stream(socket_t socket, const std::atomic<bool>& stopping)
        : socket_(socket), stopping_(stopping) {}

    /// Waits (up to one read timeout) for the first bytes of the next request.
    bool wait_for_request() { return begin_ < end_ || receive(buffer_.size()) > 0; }

    void begin_request() {
        deadline_ = std::chrono::steady_clock::now() + request_deadline;
        budget_ = max_request_bytes;
    }

    /// Closes gracefully after a response that left part of the request unread: a close with
    /// unread data would reset the connection, and the client could lose the response.
    void linger() {
        ::shutdown(socket_, shut_write);
        const auto until = std::chrono::steady_clock::now() + 1s;
        for (std::size_t left = max_body_bytes; left > 0;) {
            if (std::chrono::steady_clock::now() >= until) break;
            const auto n = receive(std::min(buffer_.size(), left));
            if (n <= 0) break;
            left -= std::min(left, static_cast<std::size_t>(n));
        }
        begin_ = end_ = 0;
    }

    bool is_readable() const override { return true; }
    bool is_writable() const override { return true; }

    ssize_t read(char* ptr, std::size_t size) override {
        if (begin_ == end_) {
            if (budget_ == 0 || std::chrono::steady_clock::now() >= deadline_) return -1;
            const auto n = receive(std::min(buffer_.size(), budget_));
            if (n <= 0) return n;
            budget_ -= static_cast<std::size_t>(n);
        }
        const auto n = std::min(size, end_ - begin_);
        std::memcpy(ptr, buffer_.data() + begin_, n);
        begin_ += n;
        return static_cast<ssize_t>(n);
    }

    ssize_t write(const char* ptr, std::size_t size) override {
        // No MSG_NOSIGNAL (not portable): httplib::Server's constructor ignores SIGPIPE.
        return httplib::detail::send_socket(socket_, ptr, size, 0);
    }

    void get_remote_ip_and_port(std::string& ip, int& port) const override {
        address_of(::getpeername, ip, port);
    }
    void get_local_ip_and_port(std::string& ip, int& port) const override {
        address_of(::getsockname, ip, port);
    }
    socket_t socket() const override { return socket_; }

private:
    ssize_t receive(std::size_t size) {
        // Waits for data in slices, so that a stop is seen within one slice even where
        // shutdown() does not wake a blocked recv (Wine). The socket's read timeout still
        // bounds the recv itself.
        const auto until =
            std::chrono::steady_clock::now() + std::chrono::seconds(io_timeout_seconds);
        for (;;) {
            if (stopping_.load()) return -1;
            if (wait_readable(static_cast<std::uintptr_t>(socket_), stop_check_interval))
                break; // data, closed or an error: recv tells which
            if (std::chrono::steady_clock::now() >= until) return -1;
        }
        const auto n = httplib::detail::read_socket(socket_, buffer_.data(), size, 0);
        begin_ = 0;
        end_ = n > 0 ? static_cast<std::size_t>(n) : 0;
        return n;
    }

    template <class Query> void address_of(Query query, std::string& ip, int& port) const {
        asio::ip::tcp::endpoint endpoint;
        auto length = static_cast<socklen_t>(endpoint.capacity());
        if (query(socket_, endpoint.data(), &length) != 0) return;
        endpoint.resize(static_cast<std::size_t>(length));
        ip = endpoint.address().to_string();
        port = endpoint.port();
    }

    socket_t socket_;
    const std::atomic<bool>& stopping_;
    std::array<char, 4096> buffer_{};
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
    std::size_t budget_ = 0;
    std::chrono::steady_clock::time_point deadline_{};
};

/// SO_REUSEADDR, as the proxy's own listeners set it: a restart binds the port even while old
/// connections linger in TIME_WAIT. (httplib's default, SO_REUSEPORT on Linux, would let another
/// process bind the same port and share the admin traffic.)
void reuse_address(socket_t socket) {
    int yes = 1;
    ::setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const char*>(&yes),
                 sizeof(yes));
}

/// Why `address`:`port` cannot be listened on, from the OS (asio: errno / WSAGetLastError
/// through std::system_category): httplib only says that it failed.
std::string bind_failure_reason(const asio::ip::address& address, std::uint16_t port) {
    asio::io_context io;
    asio::ip::tcp::acceptor probe(io);
    const asio::ip::tcp::endpoint endpoint(address, port);
    boost::system::error_code ec;
    boost::system::error_code ignored;
    probe.open(endpoint.protocol(), ec);
    if (!ec && address.is_v6()) probe.set_option(asio::ip::v6_only(false), ignored);
    if (!ec) probe.set_option(asio::ip::tcp::acceptor::reuse_address(true), ignored);
    if (!ec) probe.bind(endpoint, ec);
    if (!ec) probe.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return ec.message();
    return "the address could not be bound (it may have been in use for a moment)";
}

/// Printable ASCII only and at most 100 characters: request text in a log line.
std::string printable(std::string_view text) {
    std::string out;
    for (const char c : text.substr(0, 100))
        out += c >= 0x20 && c < 0x7f ? c : '?';
    if (text.size() > 100) out += "...";
    return out;
}

void set_text(httplib::Response& res, int status, std::string_view text) {
    res.status = status;
    res.set_content(std::string(text) + "\n", "text/plain; charset=utf-8");
}

std::string_view error_text(int status) {
    switch (status) {
    case 400:
        return "bad request";
    case 404:
        return "not found";
    case 413:
        return "request body too large";
    case 414:
        return "request target too long";
    case 416:
        return "range not satisfiable";
    case 500:
        return "internal error";
    default:
        return "error";
    }
}

/// The credentials of `Authorization: Bearer <token>` (scheme case-insensitive), or nothing.
std::optional<std::string_view> bearer_token(std::string_view value) {
    constexpr std::string_view scheme = "bearer";
    if (value.size() <= scheme.size() || (value[scheme.size()] != ' ')) return std::nullopt;
    for (std::size_t i = 0; i < scheme.size(); ++i)
        if ((value[i] | 0x20) != scheme[i]) return std::nullopt;
    value.remove_prefix(scheme.size());
    while (!value.empty() && value.front() == ' ')
        value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
        value.remove_suffix(1);
    return value;
}

/// Equal-length digests compared without stopping at the first difference.
bool same_digest(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    unsigned char difference = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        difference |= static_cast<unsigned char>(a[i] ^ b[i]);
    return difference == 0;
}

/// The configured token, kept as its SHA-256 only: comparing digests takes the same time
/// whatever the length of what a client sends.
struct token_state {
    bool required = false;
    std::optional<std::string> digest; ///< nothing (hashing failed): every token is refused
};

using handler_member = std::function<admin_response()> admin_handlers::*;

struct route {
    std::string_view path;
    bool post; ///< POST only; otherwise GET and HEAD
    bool needs_token;
    handler_member handler;
};

constexpr std::array routes = {
    route{"/healthz", false, false, &admin_handlers::healthz},
    route{"/status", false, true, &admin_handlers::status},
    route{"/metrics", false, true, &admin_handlers::metrics},
    route{"/reload", true, true, &admin_handlers::reload},
};

const route* find_route(std::string_view path) {
    for (const auto& r : routes)
        if (r.path == path) return &r;
    return nullptr;
}

bool has_body(const httplib::Request& req) {
    return req.has_header("Transfer-Encoding") ||
           req.get_header_value<std::uint64_t>("Content-Length") > 0;
}

class http_server;

/// Everything the server and its threads share (admin_server::impl is this).
struct server_state {
    admin_handlers handlers;
    std::mutex token_mutex;
    std::shared_ptr<const token_state> token = std::make_shared<token_state>();
    connection_registry connections;

    std::unique_ptr<http_server> server;
    std::thread listener;
    config::endpoint bound;
    std::mutex listen_mutex;
    std::condition_variable listen_wakeup;
    bool stopping = false; ///< guarded by listen_mutex

    bool token_accepted(const httplib::Request& req);
    void respond(const route& r, const httplib::Request& req, httplib::Response& res);
    void run_listener();
};

class http_server final : public httplib::Server {
public:
    explicit http_server(server_state& owner) : owner_(owner) {
        new_task_queue = [&owner] {
            return new worker_pool(worker_threads, owner.connections.stopping());
        };
        set_socket_options(reuse_address);
        set_keep_alive_max_count(keep_alive_max_requests);
        set_keep_alive_timeout(io_timeout_seconds);
        set_read_timeout(io_timeout_seconds, 0);
        set_write_timeout(io_timeout_seconds, 0);
        set_payload_max_length(max_body_bytes);
        set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
            return pre_route(req, res);
        });
        // POST /reload, once pre_route let it through: its body is read and dropped (it has no
        // use), up to max_body_bytes whatever the framing (httplib checks Content-Length only).
        Post("/reload", [this](const httplib::Request& req, httplib::Response& res,
                               const httplib::ContentReader& read_body) {
            std::size_t size = 0;
            const bool read = read_body([&size](const char*, std::size_t n) {
                size += n;
                return size <= max_body_bytes;
            });
            if (read) {
                owner_.respond(*find_route("/reload"), req, res);
            } else {
                if (auto* conn = current_connection) conn->unread_data = true;
                const int status = size > max_body_bytes || res.status == 413 ? 413 : 400;
                set_text(res, status, error_text(status));
            }
        });
        set_error_handler([](const httplib::Request&, httplib::Response& res) {
            if (res.body.empty()) set_text(res, res.status, error_text(res.status));
        });
        set_exception_handler(
            [](const httplib::Request&, httplib::Response& res, const std::exception_ptr&) {
                spdlog::error("admin endpoint: a request failed unexpectedly");
                set_text(res, 500, "internal error");
            });
        set_post_routing_handler([](const httplib::Request&, httplib::Response& res) {
            res.headers.erase("Cache-Control");
            res.set_header("Cache-Control", "no-store");
            res.set_header("X-Content-Type-Options", "nosniff");
            auto* conn = current_connection;
            if (conn && res.status >= 400) conn->close_after = true;
            // httplib's own refusals: where the request ends is unknown.
            if (conn && (res.status == 400 || res.status == 413 || res.status == 414))
                conn->unread_data = true;
            if (conn && conn->close_after) {
                res.headers.erase("Keep-Alive");
                res.headers.erase("Connection");
                res.set_header("Connection", "close");
            }
        });
        // Never the headers: Authorization holds the token.
        set_logger([](const httplib::Request& req, const httplib::Response& res) {
            spdlog::debug("admin endpoint: {} {} -> {} (client {})", printable(req.method),
                          printable(req.path), res.status, req.remote_addr);
        });
    }

    /// The listening socket's port, or -1. `host` must be an IP literal.
    int bind(const std::string& host, std::uint16_t port) {
        std::lock_guard lock(owner_.listen_mutex);
        if (port == 0) return bind_to_any_port(host, AI_NUMERICHOST);
        return bind_to_port(host, port, AI_NUMERICHOST) ? port : -1;
    }

    /// Closes the listening socket (the accept loop then ends). Call with listen_mutex held.
    /// Unlike httplib's stop(), also right after bind or between two accept loops.
    void halt() {
        const socket_t socket = svr_sock_.exchange(INVALID_SOCKET);
        if (socket == INVALID_SOCKET) return;
        ::shutdown(socket, shut_both);
        httplib::detail::close_socket(socket);
    }

    /// After an accept loop ended by itself: httplib closed the socket but kept its number.
    /// Call with listen_mutex held.
    void forget_closed_socket() { svr_sock_ = INVALID_SOCKET; }

private:
    httplib::Server::HandlerResponse pre_route(const httplib::Request& req,
                                               httplib::Response& res) {
        using result = httplib::Server::HandlerResponse;
        const auto* r = find_route(req.path);
        const bool get = req.method == "GET" || req.method == "HEAD";
        auto* conn = current_connection;
        if (conn && has_body(req) && (!r || !r->post || req.method != "POST"))
            conn->close_after = conn->unread_data = true; // a body nobody reads
        if (!r) {
            set_text(res, 404, "not found");
            return result::Handled;
        }
        if (r->post ? req.method != "POST" : !get) {
            res.set_header("Allow", r->post ? "POST" : "GET, HEAD");
            set_text(res, 405, "method not allowed");
            return result::Handled;
        }
        if (r->needs_token && !owner_.token_accepted(req)) {
            // Never echoes what was sent.
            res.set_header("WWW-Authenticate", "Bearer realm=\"authshim\"");
            set_text(res, 401,
                     req.has_header("Authorization") ? "invalid credentials"
                                                     : "a bearer token is required");
            if (conn && has_body(req)) conn->unread_data = true;
            return result::Handled;
        }
        if (r->post) return result::Unhandled; // read (and limit) the body first
        owner_.respond(*r, req, res);
        return result::Handled;
    }

    bool process_and_close_socket(socket_t socket) override {
        connection conn{socket};
        auto ok = false;
        if (owner_.connections.add(conn)) {
            try {
                ok = serve(conn);
            } catch (const std::exception& e) {
                spdlog::error("admin endpoint: a connection failed: {}", e.what());
            }
            current_connection = nullptr;
            owner_.connections.remove(conn);
        }
        ::shutdown(socket, shut_both);
        httplib::detail::close_socket(socket);
        return ok;
    }

    /// httplib's keep-alive loop, over a bounded_stream kept for the whole connection.
    bool serve(connection& conn) {
        bounded_stream stream(conn.socket, owner_.connections.stopping());
        const std::function<void(httplib::Request&)> setup = [](httplib::Request& req) {
            req.ranges.clear(); // whole responses only
            // RFC 9112 §6.3: a request without Content-Length or Transfer-Encoding has no body;
            // httplib would read a POST's body until the client closes.
            if (!req.has_header("Content-Length") && !req.has_header("Transfer-Encoding"))
                req.set_header("Content-Length", "0");
        };
        auto ok = false;
        for (auto left = keep_alive_max_count_; left > 0; --left) {
            if (!stream.wait_for_request()) break;
            stream.begin_request();
            auto closed = false;
            current_connection = &conn;
            ok = process_request(stream, left == 1, closed, setup);
            current_connection = nullptr;
            if (!owner_.connections.end_request(conn) || !ok || closed) break;
            if (conn.close_after) {
                if (conn.unread_data) stream.linger();
                break;
            }
        }
        return ok;
    }

    server_state& owner_;
};

bool server_state::token_accepted(const httplib::Request& req) {
    std::shared_ptr<const token_state> expected;
    {
        std::lock_guard lock(token_mutex);
        expected = token;
    }
    if (!expected->required) return true;
    if (req.get_header_value_count("Authorization") != 1) return false;
    const auto value = req.get_header_value("Authorization");
    const auto presented = bearer_token(value);
    if (!presented || !expected->digest) return false;
    const auto digest = auth::crypto::hex_hash(auth::crypto::hash_kind::sha256, {*presented});
    return digest && same_digest(*digest, *expected->digest);
}

void server_state::respond(const route& r, const httplib::Request& req, httplib::Response& res) {
    if (auto* conn = current_connection) connections.begin_handling(*conn);
    try {
        const auto& handler = handlers.*(r.handler);
        if (!handler) throw std::runtime_error("no handler is set");
        auto answer = handler();
        if (answer.status < 200 || answer.status > 599)
            throw std::runtime_error("invalid status " + std::to_string(answer.status));
        res.status = answer.status;
        res.set_content(std::move(answer.body), answer.content_type);
    } catch (const std::exception& e) {
        spdlog::error("admin endpoint: {} {} failed: {}", req.method, r.path, e.what());
        set_text(res, 500, "internal error");
    } catch (...) {
        spdlog::error("admin endpoint: {} {} failed", req.method, r.path);
        set_text(res, 500, "internal error");
    }
}

void server_state::run_listener() {
    for (;;) {
        server->listen_after_bind();
        std::unique_lock lock(listen_mutex);
        if (stopping) return;
        // accept() failed in a way httplib gives up on (it retries EMFILE and EINTR only).
        server->forget_closed_socket();
        spdlog::warn("admin endpoint: accepting connections on {} failed; listening again",
                     bound.to_string());
        for (;;) {
            if (listen_wakeup.wait_for(lock, 1s, [this] { return stopping; })) return;
            if (server->bind_to_port(bound.host, bound.port, AI_NUMERICHOST)) break;
            spdlog::warn("admin endpoint: cannot listen on {} again yet", bound.to_string());
        }
    }
}

} // namespace

struct admin_server::impl : server_state {};

admin_server::admin_server(admin_handlers handlers) : impl_(std::make_unique<impl>()) {
    impl_->handlers = std::move(handlers);
}

admin_server::~admin_server() {
    stop();
}

std::optional<std::string> admin_server::start(const config::endpoint& listen,
                                               config::secret_string token) {
    stop();
    set_token(std::move(token));
    const auto fail = [&](const std::string& reason) {
        return "cannot listen on " + listen.to_string() + " for the admin endpoint: " + reason;
    };
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(listen.host, ec);
    if (ec) return fail("not an IP address");

    impl_->connections.reset();
    impl_->stopping = false;
    auto server = std::make_unique<http_server>(*impl_);
    const int port = server->bind(listen.host, listen.port);
    if (port <= 0) {
        std::lock_guard lock(impl_->listen_mutex);
        server->halt();
        return fail(bind_failure_reason(address, listen.port));
    }
    impl_->bound = config::endpoint{listen.host, static_cast<std::uint16_t>(port)};
    impl_->server = std::move(server);
    try {
        impl_->listener = std::thread([impl = impl_.get()] { impl->run_listener(); });
    } catch (const std::system_error& e) {
        {
            std::lock_guard lock(impl_->listen_mutex);
            impl_->server->halt();
        }
        impl_->server.reset();
        return fail(e.what());
    }
    return std::nullopt;
}

void admin_server::stop() {
    if (!impl_->server) return;
    impl_->connections.stop();
    {
        std::lock_guard lock(impl_->listen_mutex);
        impl_->stopping = true;
        impl_->server->halt();
    }
    impl_->listen_wakeup.notify_all();
    if (impl_->listener.joinable()) impl_->listener.join();
    impl_->server.reset();
    impl_->bound = {};
}

config::endpoint admin_server::local_endpoint() const {
    return impl_->bound;
}

void admin_server::set_token(config::secret_string token) {
    auto state = std::make_shared<token_state>();
    state->required = !token.empty();
    if (state->required) {
        state->digest = auth::crypto::hex_hash(auth::crypto::hash_kind::sha256, {token.expose()});
        if (!state->digest)
            spdlog::error("admin endpoint: cannot hash the token; every token is refused");
    }
    std::lock_guard lock(impl_->token_mutex);
    impl_->token = std::move(state);
}

} // namespace authshim::service
