// The real proxy server with other threads around it, the way the service uses it: client
// threads send requests and open tunnels through it while another thread reads its counters and
// endpoints (the admin endpoint's /status and /metrics), another reloads it (upstream address,
// credentials and access log changing under load), and yet another stops it. Written for
// ThreadSanitizer (scripts/tsan.sh runs this binary with -fsanitize=thread), and a plain
// functional check elsewhere: every request is answered 200 and every tunnel carries its bytes.
// POSIX only (socket timeouts through setsockopt with a timeval): TSan, which it is written
// for, runs on Linux; the Windows build's proxy is exercised end to end under Wine.
#if !defined(_WIN32)

#include "proxycore/access_log.hpp"
#include "proxycore/counters.hpp"
#include "proxycore/server.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <sys/time.h>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace cfg = authshim::config;
namespace pc = authshim::proxycore;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// An upstream proxy on its own thread: answers a request without Proxy-Authorization with 407
/// (Digest and Basic offered; any answer is accepted), others with 200 "ok", and a CONNECT with
/// 200 followed by an echo of the tunnel's bytes.
class fake_upstream {
public:
    fake_upstream() : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
        asio::co_spawn(io_, accept(), asio::detached);
        thread_ = std::thread([this] { io_.run(); });
    }
    ~fake_upstream() {
        io_.stop();
        thread_.join();
    }
    fake_upstream(const fake_upstream&) = delete;
    fake_upstream& operator=(const fake_upstream&) = delete;

    cfg::endpoint address() const { return {"127.0.0.1", acceptor_.local_endpoint().port()}; }
    std::uint64_t requests() const { return requests_.load(); }

private:
    asio::awaitable<void> accept() {
        for (;;) {
            auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
            if (ec) co_return;
            asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
        }
    }

    asio::awaitable<void> serve(tcp::socket socket) {
        beast::flat_buffer buffer;
        for (;;) {
            http::request<http::string_body> req;
            auto [ec, n] = co_await http::async_read(socket, buffer, req, use_tuple);
            if (ec) co_return;
            ++requests_;
            http::response<http::string_body> res{http::status::ok, 11};
            if (req[http::field::proxy_authorization].empty()) {
                res.result(http::status::proxy_authentication_required);
                res.insert(http::field::proxy_authenticate,
                           R"(Digest realm="t", nonce="n1", qop="auth")");
                res.insert(http::field::proxy_authenticate, R"(Basic realm="t")");
            } else if (req.method() == http::verb::connect) {
                static constexpr std::string_view established =
                    "HTTP/1.1 200 Connection established\r\n\r\n";
                auto [wec, w] =
                    co_await asio::async_write(socket, asio::buffer(established), use_tuple);
                if (wec) co_return;
                co_await echo(socket, buffer);
                co_return;
            } else {
                res.body() = "ok";
            }
            res.keep_alive(req.keep_alive());
            res.prepare_payload();
            auto [wec, w] = co_await http::async_write(socket, res, use_tuple);
            if (wec || !req.keep_alive()) co_return;
        }
    }

    static asio::awaitable<void> echo(tcp::socket& socket, beast::flat_buffer& buffer) {
        if (buffer.size() != 0) {
            auto [ec, n] = co_await asio::async_write(socket, buffer.data(), use_tuple);
            if (ec) co_return;
        }
        std::array<char, 4096> data{};
        for (;;) {
            auto [ec, n] = co_await socket.async_read_some(asio::buffer(data), use_tuple);
            if (ec) co_return;
            auto [wec, w] =
                co_await asio::async_write(socket, asio::buffer(data.data(), n), use_tuple);
            if (wec) co_return;
        }
    }

    asio::io_context io_{1};
    tcp::acceptor acceptor_;
    std::atomic<std::uint64_t> requests_{0};
    std::thread thread_;
};

cfg::config make_config(const cfg::endpoint& upstream, const std::string& password) {
    cfg::config c;
    c.listen = {{"127.0.0.1", 0}};
    cfg::upstream up;
    up.name = "fake";
    up.address = upstream;
    up.credentials = "svc";
    c.upstreams = {up};
    cfg::credential cred;
    cred.username = "user";
    cred.password_source = cfg::plain_secret{cfg::secret_string(password)};
    cred.password = cfg::secret_string(password);
    c.credentials["svc"] = cred;
    c.timeouts.connect = 5s;
    c.timeouts.upstream_response = 20s;
    c.timeouts.shutdown = 5s;
    c.access.clients = {cfg::cidr{{127, 0, 0, 0}, 8}}; // the loader's defaults
    c.access.connect_ports = {{443, 443}};
    c.admin.listen.reset();
    return c;
}

void set_timeouts(tcp::socket& socket) {
    timeval tv{};
    tv.tv_sec = 30; // a hang fails the exchange instead of the whole test binary
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

struct client_tally {
    std::atomic<int> ok{0};
    std::atomic<int> tunnels_ok{0};
    std::atomic<int> failed{0};
    std::mutex mutex;
    std::string first_failure; // guarded by mutex

    void fail(const std::string& what) {
        ++failed;
        std::lock_guard lock(mutex);
        if (first_failure.empty()) first_failure = what;
    }
};

/// `count` GETs on keep-alive connections (a new one every 8 requests), and a CONNECT tunnel
/// on its own connection every 5th request.
void run_client(std::uint16_t port, int id, int count, client_tally& tally) {
    asio::io_context io;
    const tcp::endpoint proxy(asio::ip::make_address("127.0.0.1"), port);
    std::unique_ptr<tcp::socket> socket;
    beast::flat_buffer buffer;
    for (int i = 0; i < count; ++i) {
        try {
            if (i % 5 == 4) {
                tcp::socket tunnel(io);
                tunnel.connect(proxy);
                set_timeouts(tunnel);
                const std::string request =
                    "CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n";
                asio::write(tunnel, asio::buffer(request));
                beast::flat_buffer tb;
                http::response_parser<http::empty_body> parser;
                parser.skip(true); // a 2xx answer to CONNECT has no body
                http::read_header(tunnel, tb, parser);
                if (parser.get().result() != http::status::ok) {
                    tally.fail("CONNECT answered " + std::to_string(parser.get().result_int()));
                    continue;
                }
                const std::string ping = "ping " + std::to_string(id) + "/" + std::to_string(i);
                asio::write(tunnel, asio::buffer(ping));
                std::string echoed(ping.size(), '\0');
                const std::size_t early = std::min(tb.size(), echoed.size());
                asio::buffer_copy(asio::buffer(echoed), tb.data(), early);
                asio::read(tunnel, asio::buffer(echoed.data() + early, echoed.size() - early));
                if (echoed == ping)
                    ++tally.tunnels_ok;
                else
                    tally.fail("the tunnel echoed something else");
                continue;
            }
            if (!socket || i % 8 == 0) {
                socket = std::make_unique<tcp::socket>(io);
                socket->connect(proxy);
                set_timeouts(*socket);
                buffer.clear();
            }
            http::request<http::empty_body> req{
                http::verb::get,
                "http://origin.test/" + std::to_string(id) + "/" + std::to_string(i), 11};
            req.set(http::field::host, "origin.test");
            http::write(*socket, req);
            http::response<http::string_body> res;
            http::read(*socket, buffer, res);
            if (res.result() == http::status::ok && res.body() == "ok")
                ++tally.ok;
            else
                tally.fail("GET answered " + std::to_string(res.result_int()) + ": " + res.body());
            if (!res.keep_alive()) socket.reset();
        } catch (const std::exception& e) {
            tally.fail(std::string("exchange failed: ") + e.what());
            socket.reset();
        }
    }
}

/// Reads what the admin endpoint reads, as fast as it can, until told to stop. Returns how often;
/// `requests_seen` gets the largest request count read, `checksum` everything read.
std::uint64_t read_counters(const pc::server& srv, const std::atomic<bool>& stop,
                            std::uint64_t& requests_seen, std::uint64_t& checksum) {
    std::uint64_t reads = 0;
    while (!stop.load()) {
        const pc::counters& s = srv.stats();
        std::uint64_t sum = s.requests.load() + s.connections_active.load() +
                            s.tunnels_active.load() + s.upstream_connections_open.load() +
                            s.upstream_connections_idle.load() + s.reloads.load() +
                            s.upstream_407.load() + s.duration_sum_us.load();
        for (const auto& c : s.responses_by_code)
            sum += c.load(std::memory_order_relaxed);
        sum += static_cast<std::uint64_t>(s.auth_state.load() + s.auth_scheme.load());
        sum += s.last_error().text.size();
        sum += srv.local_endpoints().size();
        requests_seen = std::max(requests_seen, s.requests.load());
        checksum += sum;
        ++reads;
        std::this_thread::yield();
    }
    return reads;
}

/// A fresh directory under the system temp dir, removed at the end of the test.
struct temp_dir {
    std::filesystem::path path;
    temp_dir() {
        const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
        path = std::filesystem::temp_directory_path() /
               ("authshim-server-threads-" + std::to_string(stamp));
        std::filesystem::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

/// Opens an access log at `file`; on failure null, with the reason in `error`. (No Catch2 macros:
/// it runs on the reload thread too.)
std::shared_ptr<pc::access_log> open_log(const std::filesystem::path& file, std::string& error) {
    cfg::access_log_settings settings;
    settings.file = file;
    return pc::access_log::open(settings, error);
}

} // namespace

TEST_CASE("server: requests, tunnels, counters, reloads and stop on different threads",
          "[server][threads]") {
    const auto level = spdlog::get_level();
    spdlog::set_level(spdlog::level::err);
    temp_dir dir;
    fake_upstream upstream_a;
    fake_upstream upstream_b;

    std::string log_error;
    auto first_log = open_log(dir.path / "a.jsonl", log_error);
    INFO(log_error);
    REQUIRE(first_log);
    pc::server srv(make_config(upstream_a.address(), "first"), first_log);
    REQUIRE(srv.bind().empty());
    const auto endpoints = srv.local_endpoints();
    REQUIRE(endpoints.size() == 1);
    const std::uint16_t port = endpoints[0].port();
    std::thread runner([&srv] { srv.run(); });

    std::atomic<bool> stop_reading{false};
    std::uint64_t reads = 0;
    std::uint64_t requests_seen = 0;
    std::uint64_t checksum = 0;
    std::thread reader([&] { reads = read_counters(srv, stop_reading, requests_seen, checksum); });

    // Reloads while clients are served: another upstream (new pool), other credentials (new
    // authentication state), another access log, and back.
    std::atomic<bool> clients_done{false};
    std::vector<std::string> reload_errors;
    int reloads = 0;
    std::thread reloader([&] {
        for (int i = 0; !clients_done.load() || i < 4; ++i) {
            const auto& target = i % 2 == 0 ? upstream_b : upstream_a;
            const std::string password = i % 3 == 0 ? "second" : "first";
            const auto log_file = dir.path / (i % 2 == 0 ? "b.jsonl" : "a.jsonl");
            std::string error;
            auto log = open_log(log_file, error);
            if (!log) reload_errors.push_back(error);
            auto outcome = srv.reload(make_config(target.address(), password), log, {});
            for (auto& e : outcome.errors)
                reload_errors.push_back(std::move(e));
            ++reloads;
            std::this_thread::sleep_for(20ms);
        }
    });

    constexpr int clients = 3;
    constexpr int per_client = 30;
    client_tally tally;
    std::vector<std::thread> client_threads;
    for (int id = 0; id < clients; ++id)
        client_threads.emplace_back([&, id] { run_client(port, id, per_client, tally); });
    for (auto& t : client_threads)
        t.join();
    clients_done = true;
    reloader.join();

    // Stopped from yet another thread, while the reader still reads.
    std::thread stopper([&srv] { srv.request_stop(); });
    stopper.join();
    runner.join();
    stop_reading = true;
    reader.join();
    spdlog::set_level(level);

    CHECK(reload_errors.empty());
    CHECK(reloads >= 4);
    CHECK(reads > 0);
    CHECK(checksum > 0);
    CHECK(requests_seen <= static_cast<std::uint64_t>(clients * per_client));
    INFO("first failure: " << tally.first_failure);
    CHECK(tally.failed.load() == 0);
    constexpr int tunnels = clients * (per_client / 5);
    CHECK(tally.tunnels_ok.load() == tunnels);
    CHECK(tally.ok.load() == clients * per_client - tunnels);
    const auto& s = srv.stats();
    CHECK(s.requests.load() == static_cast<std::uint64_t>(clients * per_client));
    CHECK(s.reloads.load() == static_cast<std::uint64_t>(reloads));
    CHECK(s.connections_active.load() == 0);
    CHECK(s.tunnels_active.load() == 0);
    CHECK(upstream_a.requests() + upstream_b.requests() >= static_cast<std::uint64_t>(tunnels));
}

#endif // !defined(_WIN32)
