// `authshim reload`: asks the running instance to reload its configuration, through the admin
// endpoint's POST /reload when the config has one (the answer says what changed or why nothing
// did), else through the platform (Windows: SERVICE_CONTROL_PARAMCHANGE to the service).

#include "service/reload_command.hpp"

#include "service/cli.hpp"
#include "service/platform.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <optional>

namespace authshim::service {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct admin_answer {
    unsigned status = 0;
    std::string body;
};

/// POST /reload to `host:port`; nothing and `error` set when no answer came.
std::optional<admin_answer> post_reload(const std::string& host, std::uint16_t port,
                                        const config::secret_string& token, std::string& error) {
    asio::io_context io;
    beast::tcp_stream stream(io);
    boost::system::error_code ec;
    asio::ip::tcp::resolver resolver(io);
    const auto endpoints = resolver.resolve(host, std::to_string(port), ec);
    if (ec) {
        error = ec.message();
        return std::nullopt;
    }
    stream.expires_after(std::chrono::seconds(5));
    stream.connect(endpoints, ec);
    if (ec) {
        error = ec == beast::error::timeout ? "no connection within 5s" : ec.message();
        return std::nullopt;
    }
    http::request<http::string_body> req{http::verb::post, "/reload", 11};
    req.set(http::field::host, host);
    req.set(http::field::user_agent, "authshim-reload");
    if (!token.empty())
        req.set(http::field::authorization, "Bearer " + std::string(token.expose()));
    req.prepare_payload();
    // A reload reads the file and may rebind listeners: allow it some time.
    stream.expires_after(std::chrono::seconds(60));
    http::write(stream, req, ec);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    if (!ec) http::read(stream, buffer, res, ec);
    if (ec) {
        error = ec == beast::error::timeout ? "no answer within 60s" : ec.message();
        return std::nullopt;
    }
    return admin_answer{res.result_int(), std::move(res.body())};
}

} // namespace

int reload_command(std::vector<std::string> args) {
    std::string error;
    const auto file = take_config_option(args, error);
    if (!error.empty() || args.size() > 1 || !file) {
        std::cerr << "authshim: "
                  << (!error.empty()    ? error
                      : args.size() > 1 ? "unknown argument '" + args[1] + "'"
                                        : "'reload' needs --config FILE")
                  << "\nusage: authshim reload --config FILE\n";
        return 2;
    }
    const auto cfg = load_config(*file, std::cerr);
    if (!cfg) {
        std::cerr << "authshim: nothing sent: fix the configuration first (the running instance "
                     "would refuse it too)\n";
        return 1;
    }
    if (!cfg->admin.listen) return reload_without_admin(*cfg, std::cout, std::cerr);

    const auto& admin = *cfg->admin.listen;
    if (admin.port == 0) {
        std::cerr << "authshim: admin.listen is " << admin.to_string()
                  << ": port 0 lets the running instance pick any free port, so `reload` cannot "
                     "know where to ask; give admin.listen a fixed port (or send SIGHUP)\n";
        return 3;
    }
    // A wildcard admin address is reached on the loopback address of its family.
    std::string host = admin.host;
    if (host == "0.0.0.0") host = "127.0.0.1";
    if (host == "::") host = "::1";
    const auto endpoint = config::endpoint{host, admin.port}.to_string();
    std::string failure;
    const auto res = post_reload(host, admin.port, cfg->admin.token, failure);
    if (!res) {
        std::cerr << "authshim: cannot reach the admin endpoint at " << endpoint << " (" << failure
                  << "): is authshim running with this configuration?\n";
        return 3;
    }
    if (res->status == 401) {
        std::cerr << "authshim: the admin endpoint at " << endpoint
                  << " refused the token of admin.token (401): the running instance uses "
                     "another one\n";
        return 1;
    }
    const auto body = nlohmann::json::parse(res->body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
        std::cerr << "authshim: unexpected answer from " << endpoint << ": HTTP " << res->status
                  << "\n";
        return 1;
    }
    auto list = [&body](const char* key) {
        std::vector<std::string> out;
        if (body.contains(key) && body[key].is_array())
            for (const auto& item : body[key])
                if (item.is_string()) out.push_back(item.get<std::string>());
        return out;
    };
    for (const auto& w : list("warnings"))
        std::cerr << "warning: " << w << "\n";
    if (body.value("ok", false)) {
        const auto changes = list("changes");
        std::cout << "authshim: configuration reloaded"
                  << (changes.empty() ? " (nothing changed)" : ":") << "\n";
        for (const auto& c : changes)
            std::cout << "  " << c << "\n";
        return 0;
    }
    for (const auto& e : list("errors"))
        std::cerr << "error: " << e << "\n";
    std::cerr << "authshim: the running instance refused the reload and keeps its previous "
                 "configuration\n";
    return 1;
}

} // namespace authshim::service
