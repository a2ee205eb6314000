// The effective configuration as JSON that loads again to the same configuration, secrets
// masked.
#include "config/loader.hpp"

#include "config/detail_parse.hpp"
#include "config/detail_validate.hpp"

#include <nlohmann/json.hpp>

#include <type_traits>

namespace authshim::config {
namespace {

using ordered = nlohmann::ordered_json;

ordered format_port_range(const port_range& range) {
    if (range.low == range.high) return range.low;
    return std::to_string(range.low) + '-' + std::to_string(range.high);
}

std::string format_upstream_address(const upstream& up) {
    // Plain HTTP is written without a scheme, as in the documentation's examples.
    if (up.transport == upstream_transport::http) return up.address.to_string();
    return to_string(up.transport) + "://" + up.address.to_string();
}

/// A secret source as the config spells it, with what must not be shown masked: a plain
/// password becomes `********`, a DPAPI blob `<N bytes>`. References (variable, path, target)
/// are not secrets and are shown.
ordered format_secret_ref(const secret_ref& ref) {
    return std::visit(
        [](const auto& source) -> ordered {
            using source_type = std::decay_t<decltype(source)>;
            if constexpr (std::is_same_v<source_type, env_secret>)
                return {{"env", source.variable}};
            else if constexpr (std::is_same_v<source_type, file_secret>)
                return {{"file", detail::utf8_string(source.path)}};
            else if constexpr (std::is_same_v<source_type, plain_secret>)
                return {{"plain", "********"}};
            else if constexpr (std::is_same_v<source_type, dpapi_secret>)
                return {{"dpapi", "<" + std::to_string(source.blob.size()) + " bytes>"}};
            else
                return {{"credman", source.target}};
        },
        ref);
}

ordered format_upstream(const upstream& up) {
    ordered out = {{"name", up.name}, {"address", format_upstream_address(up)}};
    // The CA bundle only means something for TLS to the proxy; null is the system's store.
    if (up.transport == upstream_transport::https)
        out["ca_file"] = up.ca_file ? ordered(detail::utf8_string(*up.ca_file)) : ordered(nullptr);
    out["credentials"] = up.credentials ? ordered(*up.credentials) : ordered(nullptr);
    ordered schemes = ordered::array();
    for (auto scheme : up.schemes)
        schemes.push_back(to_string(scheme));
    out["schemes"] = std::move(schemes);
    return out;
}

/// `log.access` in its object form, every default written out.
ordered format_access_log(const access_log_settings& settings) {
    return {
        {"file", detail::utf8_string(settings.file)},
        {"query", settings.redact_query ? "redact" : "keep"},
        {"max_bytes", settings.max_bytes},
        {"max_files", settings.max_files},
    };
}

} // namespace

std::string to_display_json(const config& cfg) {
    ordered root = ordered::object();

    ordered listen = ordered::array();
    for (const auto& address : cfg.listen)
        listen.push_back(address.to_string());
    root["listen"] = std::move(listen);

    ordered upstreams = ordered::array();
    for (const auto& up : cfg.upstreams)
        upstreams.push_back(format_upstream(up));
    root["upstreams"] = std::move(upstreams);

    // Never the resolved `password`: only where it comes from, masked where that is the value.
    ordered credentials = ordered::object();
    for (const auto& [name, entry] : cfg.credentials)
        credentials[name] = {{"username", entry.username},
                             {"password", format_secret_ref(entry.password_source)}};
    root["credentials"] = std::move(credentials);

    ordered clients = ordered::array();
    for (const auto& block : cfg.access.clients)
        clients.push_back(block.to_string());
    ordered ports = ordered::array();
    for (const auto& range : cfg.access.connect_ports)
        ports.push_back(format_port_range(range));
    // null: no allow-list (every destination), as the loader reads it.
    ordered destinations = nullptr;
    if (!cfg.access.destinations.empty()) {
        destinations = ordered::array();
        for (const auto& pattern : cfg.access.destinations)
            destinations.push_back(pattern.to_string());
    }
    root["access"] = {{"clients", std::move(clients)},
                      {"connect_ports", std::move(ports)},
                      {"destinations", std::move(destinations)}};

    root["timeouts"] = {
        {"connect", detail::format_duration(cfg.timeouts.connect)},
        {"client_header", detail::format_duration(cfg.timeouts.client_header)},
        {"upstream_response", detail::format_duration(cfg.timeouts.upstream_response)},
        {"tunnel_idle", detail::format_duration(cfg.timeouts.tunnel_idle)},
        {"shutdown", detail::format_duration(cfg.timeouts.shutdown)},
    };
    root["limits"] = {
        {"max_connections", cfg.limits.max_connections},
        {"max_header_bytes", cfg.limits.max_header_bytes},
        {"replay_body", cfg.limits.replay_body},
    };
    root["lockout"] = {
        {"max_rejections", cfg.lockout.max_rejections},
        {"retry_after", cfg.lockout.retry_after
                            ? ordered(detail::format_duration(*cfg.lockout.retry_after))
                            : ordered(nullptr)},
    };

    ordered log = {{"level", to_string(cfg.log.level)}};
    if (cfg.log.file) log["file"] = detail::utf8_string(*cfg.log.file);
    log["access"] = cfg.log.access ? format_access_log(*cfg.log.access) : ordered(false);
    log["event_log"] = cfg.log.event_log;
    root["log"] = std::move(log);

    // Never the resolved `token`: only where it comes from, masked like a password.
    root["admin"] = {
        {"listen", cfg.admin.listen ? ordered(cfg.admin.listen->to_string()) : ordered(nullptr)},
        {"token",
         cfg.admin.token_source ? format_secret_ref(*cfg.admin.token_source) : ordered(nullptr)},
    };
    root["winhttp"] = {{"bypass", cfg.winhttp.bypass}};

    return root.dump(2, ' ', false, ordered::error_handler_t::replace);
}

} // namespace authshim::config
