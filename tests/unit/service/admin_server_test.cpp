#include "service/admin_server.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

// As in service/admin_server.cpp (the same inline functions in both).
#ifndef CPPHTTPLIB_USE_POLL
#define CPPHTTPLIB_USE_POLL
#endif
#include <httplib.h>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace svc = authshim::service;
namespace cfg = authshim::config;
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

/// Handlers that count their calls; /status can be made slow or failing.
struct fake_handlers {
    std::atomic<int> healthz{0};
    std::atomic<int> status{0};
    std::atomic<int> metrics{0};
    std::atomic<int> reload{0};
    std::atomic<bool> status_entered{false};
    std::atomic<bool> status_finished{false};
    std::chrono::milliseconds status_delay{0};
    std::function<void()> status_throws; ///< called inside the status handler when set

    svc::admin_handlers make() {
        svc::admin_handlers h;
        h.healthz = [this] {
            ++healthz;
            return svc::admin_response{200, "text/plain; charset=utf-8", "ok\n"};
        };
        h.status = [this] {
            ++status;
            status_entered = true;
            if (status_delay.count() > 0) std::this_thread::sleep_for(status_delay);
            if (status_throws) status_throws();
            status_finished = true;
            return svc::admin_response{200, "application/json", R"({"state":"running"})"};
        };
        h.metrics = [this] {
            ++metrics;
            return svc::admin_response{200, "text/plain; version=0.0.4", "authshim_up 1\n"};
        };
        h.reload = [this] {
            ++reload;
            return svc::admin_response{202, "application/json", R"({"reloaded":true})"};
        };
        return h;
    }
    int total() const { return healthz + status + metrics + reload; }
};

const cfg::endpoint any_loopback_port{"127.0.0.1", 0};

httplib::Client client_of(const svc::admin_server& server) {
    const auto endpoint = server.local_endpoint();
    httplib::Client client(endpoint.host, endpoint.port);
    client.set_connection_timeout(5s);
    client.set_read_timeout(10s);
    client.set_write_timeout(5s);
    return client;
}

httplib::Headers bearer(const std::string& token) {
    return {{"Authorization", "Bearer " + token}};
}

/// Sends `request` as it is and returns what comes back until the server closes (or `limit`).
std::string raw_exchange(const svc::admin_server& server, const std::string& request,
                         std::chrono::milliseconds limit = 10s) {
    asio::io_context io;
    tcp::socket socket(io);
    const auto endpoint = server.local_endpoint();
    socket.connect({asio::ip::make_address(endpoint.host), endpoint.port});
    std::string response;
    std::array<char, 4096> buffer{};
    std::function<void()> read_more = [&] {
        socket.async_read_some(asio::buffer(buffer),
                               [&](boost::system::error_code ec, std::size_t n) {
                                   response.append(buffer.data(), n);
                                   if (!ec) read_more();
                               });
    };
    read_more();
    asio::async_write(socket, asio::buffer(request), [](boost::system::error_code, std::size_t) {});
    io.run_for(limit);
    return response;
}

/// Restores the default logger when the test ends.
struct captured_log {
    /// A sink whose text is read under the sink's own mutex: the admin server's threads log
    /// while a test reads (the request line is logged after the response is sent; TSan saw the
    /// unguarded read race with it).
    class sink final : public spdlog::sinks::base_sink<std::mutex> {
    public:
        std::string text() {
            std::lock_guard lock(mutex_);
            return stream_.str();
        }

    protected:
        void sink_it_(const spdlog::details::log_msg& msg) override {
            spdlog::memory_buf_t formatted;
            formatter_->format(msg, formatted);
            stream_.write(formatted.data(), static_cast<std::streamsize>(formatted.size()));
        }
        void flush_() override {}

    private:
        std::ostringstream stream_;
    };
    std::shared_ptr<sink> sink_ = std::make_shared<sink>();
    std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
    captured_log() {
        auto logger = std::make_shared<spdlog::logger>("admin-test", sink_);
        logger->set_level(spdlog::level::debug);
        spdlog::set_default_logger(logger);
    }
    std::string str() { return sink_->text(); }
    ~captured_log() { spdlog::set_default_logger(previous); }
    captured_log(const captured_log&) = delete;
    captured_log& operator=(const captured_log&) = delete;
};

} // namespace

TEST_CASE("admin endpoint: routes and methods without a token", "[admin]") {
    fake_handlers fake;
    svc::admin_server server(fake.make());
    REQUIRE_FALSE(server.start(any_loopback_port, {}));
    const auto endpoint = server.local_endpoint();
    CHECK(endpoint.host == "127.0.0.1");
    CHECK(endpoint.port != 0);
    auto client = client_of(server);

    SECTION("GET and HEAD on the read-only endpoints") {
        auto res = client.Get("/healthz");
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK(res->body == "ok\n");
        CHECK(res->get_header_value("Content-Type") == "text/plain; charset=utf-8");
        CHECK(res->get_header_value("Cache-Control") == "no-store");

        res = client.Get("/status");
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK(res->body == R"({"state":"running"})");
        CHECK(res->get_header_value("Content-Type") == "application/json");

        res = client.Get("/metrics");
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK(res->get_header_value("Content-Type") == "text/plain; version=0.0.4");
        CHECK(res->body == "authshim_up 1\n");

        res = client.Head("/status");
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK(res->body.empty());
        CHECK(res->get_header_value("Content-Length") ==
              std::to_string(std::string(R"({"state":"running"})").size()));
        CHECK(res->get_header_value("Cache-Control") == "no-store");

        CHECK(fake.healthz == 1);
        CHECK(fake.status == 2);
        CHECK(fake.metrics == 1);
        CHECK(fake.reload == 0);
    }

    SECTION("POST /reload, with or without a (small) body") {
        auto res = client.Post("/reload", "", "text/plain");
        REQUIRE(res);
        CHECK(res->status == 202);
        CHECK(res->body == R"({"reloaded":true})");
        CHECK(res->get_header_value("Cache-Control") == "no-store");
        res = client.Post("/reload", "please", "text/plain");
        REQUIRE(res);
        CHECK(res->status == 202);
        // Neither Content-Length nor Transfer-Encoding: no body (not "read until the client
        // closes", which would wait for the read timeout).
        const auto started = std::chrono::steady_clock::now();
        const auto raw =
            raw_exchange(server, "POST /reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        CHECK(raw.rfind("HTTP/1.1 202 ", 0) == 0);
        CHECK(std::chrono::steady_clock::now() - started < 3s);
        CHECK(fake.reload == 3);
    }

    SECTION("query strings are ignored") {
        auto res = client.Get("/status?verbose=1&x=%20");
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK(fake.status == 1);
    }

    SECTION("unknown paths: 404 with a short text body") {
        for (const char* path : {"/", "/nope", "/status/", "/STATUS", "/healthz/x", "//status"}) {
            auto res = client.Get(path);
            REQUIRE(res);
            CHECK(res->status == 404);
            CHECK(res->body == "not found\n");
            CHECK(res->get_header_value("Cache-Control") == "no-store");
        }
        auto res = client.Post("/nope", "x", "text/plain");
        REQUIRE(res);
        CHECK(res->status == 404);
        CHECK(fake.total() == 0);
    }

    SECTION("other methods on known paths: 405 with Allow") {
        for (const char* path : {"/healthz", "/status", "/metrics"}) {
            auto res = client.Post(path, "x", "text/plain");
            REQUIRE(res);
            CHECK(res->status == 405);
            CHECK(res->get_header_value("Allow") == "GET, HEAD");
            CHECK(res->get_header_value("Cache-Control") == "no-store");
            res = client.Put(path, "x", "text/plain");
            REQUIRE(res);
            CHECK(res->status == 405);
            res = client.Delete(path);
            REQUIRE(res);
            CHECK(res->status == 405);
            res = client.Patch(path, "x", "text/plain");
            REQUIRE(res);
            CHECK(res->status == 405);
            res = client.Options(path);
            REQUIRE(res);
            CHECK(res->status == 405);
            CHECK(res->get_header_value("Allow") == "GET, HEAD");
        }
        std::vector<httplib::Result> answers;
        answers.push_back(client.Get("/reload"));
        answers.push_back(client.Head("/reload"));
        answers.push_back(client.Put("/reload"));
        for (auto& res : answers) {
            REQUIRE(res);
            CHECK(res->status == 405);
            CHECK(res->get_header_value("Allow") == "POST");
        }
        const auto trace = raw_exchange(server, "TRACE /status HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(trace.rfind("HTTP/1.1 405 ", 0) == 0);
        CHECK(trace.find("Allow: GET, HEAD\r\n") != std::string::npos);
        CHECK(fake.total() == 0);
    }

    SECTION("keep-alive: several requests on one connection") {
        client.set_keep_alive(true);
        for (int i = 0; i < 5; ++i) {
            auto res = client.Get("/healthz");
            REQUIRE(res);
            CHECK(res->status == 200);
        }
        CHECK(fake.healthz == 5);
    }
}

TEST_CASE("admin endpoint: bearer token", "[admin]") {
    fake_handlers fake;
    svc::admin_server server(fake.make());
    REQUIRE_FALSE(server.start(any_loopback_port, cfg::secret_string("s3cret-token")));
    auto client = client_of(server);

    SECTION("/healthz never needs it") {
        auto res = client.Get("/healthz");
        REQUIRE(res);
        CHECK(res->status == 200);
        res = client.Get("/healthz", bearer("wrong"));
        REQUIRE(res);
        CHECK(res->status == 200);
    }

    SECTION("missing: 401 with WWW-Authenticate, handlers not called") {
        std::vector<httplib::Result> answers;
        answers.push_back(client.Get("/status"));
        answers.push_back(client.Head("/status"));
        answers.push_back(client.Get("/metrics"));
        answers.push_back(client.Post("/reload", "", "text/plain"));
        for (auto& res : answers) {
            REQUIRE(res);
            CHECK(res->status == 401);
            CHECK(res->get_header_value("WWW-Authenticate") == R"(Bearer realm="authshim")");
            CHECK(res->get_header_value("Cache-Control") == "no-store");
        }
        CHECK(fake.total() == 0);
    }

    SECTION("wrong: 401 whose body never echoes what was sent") {
        const std::string sent = "guess-Zq9-s3cret-token";
        for (const auto& headers :
             {bearer(sent), bearer("s3cret-token-and-more"), bearer("s3cret-toke"), bearer(""),
              httplib::Headers{{"Authorization", "Basic czNjcmV0LXRva2Vu"}},
              httplib::Headers{{"Authorization", "Bearers3cret-token"}},
              httplib::Headers{{"Authorization", "Bearer s3cret-token"},
                               {"Authorization", "Bearer s3cret-token"}}}) {
            auto res = client.Get("/status", headers);
            REQUIRE(res);
            CHECK(res->status == 401);
            CHECK(res->get_header_value("WWW-Authenticate") == R"(Bearer realm="authshim")");
            CHECK(res->body.find("guess") == std::string::npos);
            CHECK(res->body.find("s3cret") == std::string::npos);
        }
        auto res = client.Post("/reload", bearer(sent), "body", "text/plain");
        REQUIRE(res);
        CHECK(res->status == 401);
        CHECK(fake.total() == 0);
    }

    SECTION("right: 200 (scheme name in any case)") {
        auto res = client.Get("/status", bearer("s3cret-token"));
        REQUIRE(res);
        CHECK(res->status == 200);
        res = client.Get("/metrics", {{"Authorization", "bearer s3cret-token"}});
        REQUIRE(res);
        CHECK(res->status == 200);
        res = client.Post("/reload", bearer("s3cret-token"), "", "text/plain");
        REQUIRE(res);
        CHECK(res->status == 202);
        CHECK(fake.status == 1);
        CHECK(fake.metrics == 1);
        CHECK(fake.reload == 1);
    }

    SECTION("405 comes before the token check (Allow is not secret)") {
        auto res = client.Delete("/status");
        REQUIRE(res);
        CHECK(res->status == 405);
    }

    SECTION("set_token replaces it for the next request; empty: none required") {
        server.set_token(cfg::secret_string("next-token"));
        auto res = client.Get("/status", bearer("s3cret-token"));
        REQUIRE(res);
        CHECK(res->status == 401);
        res = client.Get("/status", bearer("next-token"));
        REQUIRE(res);
        CHECK(res->status == 200);
        server.set_token({});
        res = client.Get("/status");
        REQUIRE(res);
        CHECK(res->status == 200);
        server.set_token(cfg::secret_string("again"));
        res = client.Get("/metrics");
        REQUIRE(res);
        CHECK(res->status == 401);
    }

    SECTION("set_token while requests are served") {
        std::atomic<bool> done{false};
        std::thread changer([&] {
            for (int i = 0; !done; ++i)
                server.set_token(cfg::secret_string(i % 2 ? "s3cret-token" : "other"));
        });
        for (int i = 0; i < 50; ++i) {
            auto res = client.Get("/status", bearer("s3cret-token"));
            REQUIRE(res);
            CHECK((res->status == 200 || res->status == 401));
        }
        done = true;
        changer.join();
    }
}

TEST_CASE("admin endpoint: requests are logged at debug without secrets", "[admin]") {
    captured_log log;
    fake_handlers fake;
    {
        svc::admin_server server(fake.make());
        REQUIRE_FALSE(server.start(any_loopback_port, cfg::secret_string("s3cret-token")));
        auto client = client_of(server);
        REQUIRE(client.Get("/status?q=1", bearer("s3cret-token")));
        REQUIRE(client.Get("/metrics", bearer("wrong-guess")));
    }
    const auto text = log.str();
    CHECK(text.find("GET /status -> 200 (client 127.0.0.1)") != std::string::npos);
    CHECK(text.find("GET /metrics -> 401") != std::string::npos);
    CHECK(text.find("s3cret") == std::string::npos);
    CHECK(text.find("wrong-guess") == std::string::npos);
}

TEST_CASE("admin endpoint: a handler that throws answers 500", "[admin]") {
    captured_log log;
    fake_handlers fake;
    svc::admin_server server(fake.make());
    REQUIRE_FALSE(server.start(any_loopback_port, {}));
    auto client = client_of(server);

    fake.status_throws = [] { throw std::runtime_error("the counters are gone"); };
    auto res = client.Get("/status");
    REQUIRE(res);
    CHECK(res->status == 500);
    CHECK(res->body == "internal error\n");
    CHECK(log.str().find("the counters are gone") != std::string::npos);

    fake.status_throws = [] { throw 42; };
    res = client.Get("/status");
    REQUIRE(res);
    CHECK(res->status == 500);

    res = client.Get("/healthz");
    REQUIRE(res);
    CHECK(res->status == 200);
}

TEST_CASE("admin endpoint: a missing handler answers 500", "[admin]") {
    svc::admin_handlers only_healthz;
    only_healthz.healthz = [] { return svc::admin_response{}; };
    svc::admin_server server(std::move(only_healthz));
    REQUIRE_FALSE(server.start(any_loopback_port, {}));
    auto client = client_of(server);
    auto res = client.Get("/metrics");
    REQUIRE(res);
    CHECK(res->status == 500);
    res = client.Get("/healthz");
    REQUIRE(res);
    CHECK(res->status == 200);
}

TEST_CASE("admin endpoint: cannot bind", "[admin]") {
    fake_handlers fake;
    svc::admin_server server(fake.make());

    SECTION("port in use: the message names the address, nothing runs") {
        asio::io_context io;
        tcp::acceptor holder(io);
        const tcp::endpoint loopback(asio::ip::make_address("127.0.0.1"), 0);
        holder.open(loopback.protocol());
        holder.bind(loopback);
        holder.listen();
        const auto port = holder.local_endpoint().port();
        // Where SO_REUSEADDR lets a second socket bind a port in use (Windows), the admin
        // endpoint could bind too: nothing to check there.
        tcp::acceptor second(io);
        boost::system::error_code ec;
        second.open(loopback.protocol());
        second.set_option(tcp::acceptor::reuse_address(true));
        second.bind({loopback.address(), port}, ec);
        second.close();
        if (!ec) {
            WARN("this platform lets SO_REUSEADDR bind a port in use: skipped");
            return;
        }
        const auto where = "127.0.0.1:" + std::to_string(port);
        const auto error = server.start({"127.0.0.1", port}, {});
        REQUIRE(error);
        const auto prefix = "cannot listen on " + where + " for the admin endpoint: ";
        CHECK(error->rfind(prefix, 0) == 0);
        CHECK(error->size() > prefix.size() + 3); // the OS's reason
        CHECK(server.local_endpoint() == cfg::endpoint{});
        server.stop(); // harmless
        // Still usable, on a free port.
        REQUIRE_FALSE(server.start(any_loopback_port, {}));
        auto res = client_of(server).Get("/healthz");
        REQUIRE(res);
        CHECK(res->status == 200);
    }

    SECTION("not an IP literal") {
        const auto error = server.start({"localhost", 3129}, {});
        REQUIRE(error);
        CHECK(*error ==
              "cannot listen on localhost:3129 for the admin endpoint: not an IP address");
        CHECK(server.local_endpoint() == cfg::endpoint{});
    }

    SECTION("an address this host does not have") {
        const auto error = server.start({"192.0.2.1", 0}, {}); // TEST-NET-1
        REQUIRE(error);
        CHECK(error->rfind("cannot listen on 192.0.2.1:0 for the admin endpoint: ", 0) == 0);
    }
}

TEST_CASE("admin endpoint: IPv6 loopback", "[admin]") {
    {
        asio::io_context io;
        tcp::acceptor probe(io);
        boost::system::error_code ec;
        probe.open(tcp::v6(), ec);
        if (!ec) probe.bind({asio::ip::make_address("::1"), 0}, ec);
        if (ec) {
            WARN("no IPv6 loopback here: skipped (" << ec.message() << ")");
            return;
        }
    }
    fake_handlers fake;
    svc::admin_server server(fake.make());
    REQUIRE_FALSE(server.start({"::1", 0}, cfg::secret_string("t")));
    const auto endpoint = server.local_endpoint();
    CHECK(endpoint.host == "::1");
    CHECK(endpoint.port != 0);
    CHECK(endpoint.to_string() == "[::1]:" + std::to_string(endpoint.port));
    auto client = client_of(server);
    auto res = client.Get("/healthz");
    REQUIRE(res);
    CHECK(res->status == 200);
    res = client.Get("/status", bearer("t"));
    REQUIRE(res);
    CHECK(res->status == 200);
}

TEST_CASE("admin endpoint: stop", "[admin]") {
    fake_handlers fake;
    svc::admin_server server(fake.make());
    REQUIRE_FALSE(server.start(any_loopback_port, {}));

    SECTION("while a slow handler runs: it finishes and its response is sent") {
        fake.status_delay = 700ms;
        int status = 0;
        std::thread request([&] {
            auto client = client_of(server);
            if (auto res = client.Get("/status")) status = res->status;
        });
        while (!fake.status_entered)
            std::this_thread::sleep_for(1ms);
        server.stop();
        CHECK(fake.status_finished);
        request.join();
        CHECK(status == 200);
        CHECK(server.local_endpoint() == cfg::endpoint{});
    }

    SECTION("idle connections do not hold it up") {
        asio::io_context io;
        std::vector<tcp::socket> idle;
        const auto endpoint = server.local_endpoint();
        for (int i = 0; i < 4; ++i) {
            idle.emplace_back(io);
            idle.back().connect({asio::ip::make_address(endpoint.host), endpoint.port});
        }
        // One that sent half a request.
        asio::write(idle.back(), asio::buffer(std::string("GET /healthz HTTP/1.1\r\nHo")));
        std::this_thread::sleep_for(100ms); // accepted and waiting
        const auto started = std::chrono::steady_clock::now();
        server.stop();
        CHECK(std::chrono::steady_clock::now() - started < 2s);
        CHECK(fake.total() == 0);
    }

    SECTION("idempotent, and the port is closed") {
        const auto endpoint = server.local_endpoint();
        server.stop();
        server.stop();
        asio::io_context io;
        tcp::socket socket(io);
        boost::system::error_code ec;
        socket.connect({asio::ip::make_address(endpoint.host), endpoint.port}, ec);
        CHECK(ec);
    }
}

TEST_CASE("admin endpoint: start again", "[admin]") {
    fake_handlers fake;
    svc::admin_server server(fake.make());
    REQUIRE_FALSE(server.start(any_loopback_port, {}));
    const auto first = server.local_endpoint();
    {
        auto client = client_of(server);
        client.set_keep_alive(true); // the server closes: TIME_WAIT on its side
        REQUIRE(client.Get("/healthz"));
    }

    SECTION("after stop, on the same port") {
        server.stop();
        REQUIRE_FALSE(server.start(first, cfg::secret_string("t2")));
        CHECK(server.local_endpoint() == first);
        auto res = client_of(server).Get("/status");
        REQUIRE(res);
        CHECK(res->status == 401);
        res = client_of(server).Get("/status", bearer("t2"));
        REQUIRE(res);
        CHECK(res->status == 200);
    }

    SECTION("while running: rebinds") {
        REQUIRE_FALSE(server.start(any_loopback_port, {}));
        CHECK(server.local_endpoint().port != 0);
        auto res = client_of(server).Get("/healthz");
        REQUIRE(res);
        CHECK(res->status == 200);
    }

    SECTION("a new admin_server on the port of a stopped one") {
        server.stop();
        svc::admin_server other(fake.make());
        REQUIRE_FALSE(other.start(first, {}));
        auto res = client_of(other).Get("/healthz");
        REQUIRE(res);
        CHECK(res->status == 200);
    }
}

TEST_CASE("admin endpoint: concurrent requests", "[admin]") {
    fake_handlers fake;
    svc::admin_server server(fake.make());
    REQUIRE_FALSE(server.start(any_loopback_port, {}));
    constexpr int clients = 8;
    constexpr int requests = 10;
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
        threads.emplace_back([&, c] {
            auto client = client_of(server);
            client.set_keep_alive(c % 2 == 0);
            for (int i = 0; i < requests; ++i) {
                auto res = client.Get(i % 2 ? "/healthz" : "/metrics");
                if (res && res->status == 200) ++ok;
            }
        });
    }
    for (auto& thread : threads)
        thread.join();
    CHECK(ok == clients * requests);
    CHECK(fake.healthz + fake.metrics == clients * requests);
}

TEST_CASE("admin endpoint: limits", "[admin]") {
    fake_handlers fake;
    svc::admin_server server(fake.make());
    REQUIRE_FALSE(server.start(any_loopback_port, {}));
    auto client = client_of(server);
    const auto still_serving = [&] {
        auto res = client_of(server).Get("/healthz");
        return res && res->status == 200;
    };

    SECTION("a body over 64 KiB: 413, and the server keeps serving") {
        auto res = client.Post("/reload", std::string(100 * 1024, 'x'), "text/plain");
        REQUIRE(res);
        CHECK(res->status == 413);
        CHECK(res->get_header_value("Connection") == "close");
        CHECK(fake.reload == 0);
        CHECK(still_serving());
        res = client.Post("/reload", std::string(64 * 1024, 'x'), "text/plain");
        REQUIRE(res);
        CHECK(res->status == 202);
    }

    SECTION("an endless request line is cut off") {
        const auto reply =
            raw_exchange(server, "GET /" + std::string(3 << 20, 'a') + " HTTP/1.1\r\n\r\n");
        CHECK(reply.find(" 200 ") == std::string::npos);
        CHECK(still_serving());
    }

    SECTION("endless header lines are cut off") {
        std::string request = "GET /healthz HTTP/1.1\r\n";
        for (int i = 0; i < 40000; ++i)
            request += "X-Filler-" + std::to_string(i) + ": 0123456789012345678901234567\r\n";
        request += "\r\n";
        const auto reply = raw_exchange(server, request);
        CHECK(reply.find(" 200 ") == std::string::npos);
        CHECK(fake.healthz == 0);
        CHECK(still_serving());
    }

    SECTION("a chunked body over 64 KiB: 413 too") {
        const auto chunked = [](int chunks) {
            std::string request = "POST /reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n";
            for (int i = 0; i < chunks; ++i)
                request += "1000\r\n" + std::string(0x1000, 'y') + "\r\n";
            return request + "0\r\n\r\n";
        };
        CHECK(raw_exchange(server, chunked(16)).rfind("HTTP/1.1 202 ", 0) == 0); // 64 KiB
        CHECK(raw_exchange(server, chunked(17)).rfind("HTTP/1.1 413 ", 0) == 0);
        CHECK(raw_exchange(server, chunked(400)).rfind("HTTP/1.1 413 ", 0) == 0); // 1.6 MB
        CHECK(fake.reload == 1);
        CHECK(still_serving());
    }

    SECTION("garbage: 400") {
        const auto reply = raw_exchange(server, "HELLO\r\n\r\n");
        CHECK(reply.rfind("HTTP/1.1 400 ", 0) == 0);
        CHECK(still_serving());
    }

    SECTION("a GET with a body on a keep-alive connection closes it after the answer") {
        const auto reply = raw_exchange(
            server, "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                    "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(reply.rfind("HTTP/1.1 200 ", 0) == 0);
        CHECK(reply.find("Connection: close\r\n") != std::string::npos);
        CHECK(fake.healthz == 1);
    }

    SECTION("pipelined requests are all answered") {
        const auto reply = raw_exchange(server, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                                                "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                                                "HEAD /healthz HTTP/1.1\r\nHost: x\r\n"
                                                "Connection: close\r\n\r\n");
        std::size_t answers = 0;
        for (auto at = reply.find("HTTP/1.1 200 "); at != std::string::npos;
             at = reply.find("HTTP/1.1 200 ", at + 1))
            ++answers;
        CHECK(answers == 3);
    }
}
