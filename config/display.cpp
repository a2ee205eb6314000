// The effective configuration as JSON that loads again to the same configuration.
#include "config/loader.hpp"

#include "config/detail_validate.hpp"

#include <nlohmann/json.hpp>

namespace authshim::config {
namespace {

using ordered = nlohmann::ordered_json;

/// The largest unit that represents `value` exactly: 5m, not 300s; 250ms stays 250ms.
std::string format_duration(std::chrono::milliseconds value) {
    const auto ms = value.count();
    if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
    if (ms != 0 && ms % 1'000 == 0) return std::to_string(ms / 1'000) + "s";
    return std::to_string(ms) + "ms";
}

ordered format_port_range(const port_range& range) {
    if (range.low == range.high) return range.low;
    return std::to_string(range.low) + '-' + std::to_string(range.high);
}

std::string format_upstream_address(const upstream& up) {
    // Plain HTTP is written without a scheme, as in the documentation's examples.
    if (up.transport == upstream_transport::http) return up.address.to_string();
    return to_string(up.transport) + "://" + up.address.to_string();
}

} // namespace

std::string to_display_json(const config& cfg) {
    ordered root = ordered::object();

    ordered listen = ordered::array();
    for (const auto& address : cfg.listen)
        listen.push_back(address.to_string());
    root["listen"] = std::move(listen);

    // No secrets are held by this version; `credentials` and `admin.token` arrive with theirs
    // masked.
    ordered upstreams = ordered::array();
    for (const auto& up : cfg.upstreams)
        upstreams.push_back({{"name", up.name}, {"address", format_upstream_address(up)}});
    root["upstreams"] = std::move(upstreams);

    ordered clients = ordered::array();
    for (const auto& block : cfg.access.clients)
        clients.push_back(block.to_string());
    ordered ports = ordered::array();
    for (const auto& range : cfg.access.connect_ports)
        ports.push_back(format_port_range(range));
    root["access"] = {{"clients", std::move(clients)}, {"connect_ports", std::move(ports)}};

    root["timeouts"] = {
        {"connect", format_duration(cfg.timeouts.connect)},
        {"client_header", format_duration(cfg.timeouts.client_header)},
        {"upstream_response", format_duration(cfg.timeouts.upstream_response)},
        {"tunnel_idle", format_duration(cfg.timeouts.tunnel_idle)},
        {"shutdown", format_duration(cfg.timeouts.shutdown)},
    };
    root["limits"] = {
        {"max_connections", cfg.limits.max_connections},
        {"max_header_bytes", cfg.limits.max_header_bytes},
    };

    // What this version does for the keys that later versions build: no access log, no Event
    // Log, no admin endpoint. Spelled out so that the effective behaviour is visible.
    ordered log = {{"level", to_string(cfg.log.level)}};
    if (cfg.log.file) log["file"] = detail::utf8_string(*cfg.log.file);
    log["access"] = false;
    log["event_log"] = false;
    root["log"] = std::move(log);
    root["admin"] = {{"listen", nullptr}};

    return root.dump(2, ' ', false, ordered::error_handler_t::replace);
}

} // namespace authshim::config
