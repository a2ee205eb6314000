#include "service/status.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>

namespace authshim::service {
namespace {

using json = nlohmann::ordered_json;
using proxycore::counters;

std::uint64_t get(const counters::counter& c) {
    return c.load(std::memory_order_relaxed);
}

/// RFC 3339 UTC with milliseconds; null for 0 (never).
json timestamp(std::int64_t unix_ms) {
    if (unix_ms <= 0) return nullptr;
    const auto seconds = unix_ms / 1000;
    // gmtime_r / gmtime_s differ by platform; the C++20 chrono calendar is portable.
    const auto day = std::chrono::floor<std::chrono::days>(
        std::chrono::sys_seconds(std::chrono::seconds(seconds)));
    const std::chrono::year_month_day ymd(day);
    const std::chrono::hh_mm_ss hms(std::chrono::sys_seconds(std::chrono::seconds(seconds)) - day);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", static_cast<int>(ymd.year()),
                       static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                       hms.hours().count(), hms.minutes().count(), hms.seconds().count(),
                       unix_ms % 1000);
}

const char* scheme_name(int scheme) {
    switch (scheme) {
    case 0:
        return "digest";
    case 1:
        return "basic";
    default:
        return nullptr;
    }
}

const char* auth_state_name(int state) {
    switch (state) {
    case 1:
        return "verified";
    case 2:
        return "paused";
    default:
        return "unverified";
    }
}

/// A Prometheus label value: backslash, double quote and line feed escaped.
std::string label(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (const char ch : value) {
        if (ch == '\\')
            out += "\\\\";
        else if (ch == '"')
            out += "\\\"";
        else if (ch == '\n')
            out += "\\n";
        else
            out += ch;
    }
    return out;
}

class exposition {
public:
    void family(std::string_view name, std::string_view type, std::string_view help) {
        out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    }
    void sample(std::string_view name, std::string_view labels, double value) {
        if (labels.empty())
            out_ += fmt::format("{} {}\n", name, value);
        else
            out_ += fmt::format("{}{{{}}} {}\n", name, labels, value);
    }
    void sample(std::string_view name, std::string_view labels, std::uint64_t value) {
        if (labels.empty())
            out_ += fmt::format("{} {}\n", name, value);
        else
            out_ += fmt::format("{}{{{}}} {}\n", name, labels, value);
    }
    /// One family with one sample.
    void single(std::string_view name, std::string_view type, std::string_view help,
                std::string_view labels, std::uint64_t value) {
        family(name, type, help);
        sample(name, labels, value);
    }
    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

} // namespace

upstream_state classify(const counters& c) {
    if (c.auth_state.load(std::memory_order_relaxed) == 2) return upstream_state::paused;
    const auto ok = c.upstream_last_ok_ms.load(std::memory_order_relaxed);
    const auto failed = c.upstream_last_failure_ms.load(std::memory_order_relaxed);
    if (failed > 0 && failed >= ok) return upstream_state::failing;
    if (ok > 0) return upstream_state::ok;
    return upstream_state::unknown;
}

const char* to_string(upstream_state s) {
    switch (s) {
    case upstream_state::ok:
        return "ok";
    case upstream_state::failing:
        return "failing";
    case upstream_state::paused:
        return "paused";
    default:
        return "unknown";
    }
}

std::string render_status_json(const status_facts& facts, const counters& c, std::int64_t now_ms) {
    json root;
    root["version"] = facts.version;
    root["started"] = timestamp(facts.started_ms);
    root["uptime_seconds"] = static_cast<double>(now_ms - facts.started_ms) / 1000.0;
    root["stopping"] = facts.stopping;
    json reload = nullptr;
    if (facts.last_reload.unix_ms > 0)
        reload = {{"time", timestamp(facts.last_reload.unix_ms)},
                  {"trigger", facts.last_reload.trigger},
                  {"ok", facts.last_reload.ok},
                  {"errors", facts.last_reload.errors}};
    root["config"] = {{"path", facts.config_path},
                      {"hash", facts.config_hash},
                      {"loaded", timestamp(facts.config_loaded_ms)},
                      {"reloads", get(c.reloads)},
                      {"reload_failures", get(c.reload_failures)},
                      {"last_reload", std::move(reload)}};
    root["listeners"] = facts.listeners;
    root["admin"] = facts.admin ? json(*facts.admin) : json(nullptr);

    std::uint64_t by_class[6] = {};
    for (std::size_t code = 100; code < c.responses_by_code.size(); ++code)
        by_class[code / 100] += get(c.responses_by_code[code]);
    root["clients"] = {
        {"connections_active", get(c.connections_active)},
        {"connections_accepted", get(c.connections_accepted)},
        {"connections_rejected_limit", get(c.connections_rejected_limit)},
        {"requests", get(c.requests)},
        {"bad_requests", get(c.bad_requests)},
        {"denied",
         {{"client", get(c.denied_client)},
          {"port", get(c.denied_port)},
          {"loop", get(c.denied_loop)},
          {"destination", get(c.denied_destination)}}},
    };

    const auto error = c.last_error();
    const auto paused_until = c.auth_paused_until_ms.load(std::memory_order_relaxed);
    const int auth_state = c.auth_state.load(std::memory_order_relaxed);
    const char* scheme = scheme_name(c.auth_scheme.load(std::memory_order_relaxed));
    json upstream;
    upstream["name"] = facts.upstream_name;
    upstream["address"] = facts.upstream_address;
    upstream["transport"] = facts.upstream_transport;
    upstream["state"] = to_string(classify(c));
    upstream["scheme"] = scheme ? json(scheme) : json(nullptr);
    upstream["credentials"] = facts.credentials ? json(*facts.credentials) : json(nullptr);
    upstream["lockout"] = {
        {"state", facts.credentials ? json(auth_state_name(auth_state)) : json(nullptr)},
        {"paused", auth_state == 2},
        // null while paused: until the credential changes in the config (then reload)
        {"paused_until", auth_state == 2 ? timestamp(paused_until) : json(nullptr)},
    };
    upstream["requests"] = {
        {"1xx", by_class[1]}, {"2xx", by_class[2]},
        {"3xx", by_class[3]}, {"4xx", by_class[4]},
        {"5xx", by_class[5]}, {"without_response", get(c.responses_by_code[0])}};
    upstream["tunnels"] = {{"total", get(c.tunnels)}, {"active", get(c.tunnels_active)}};
    upstream["auth"] = {
        {"407_received", get(c.upstream_407)},
        {"407_answered", get(c.auth_challenges_answered)},
        {"stale_nonces", get(c.auth_stale_nonces)},
        {"rejections", get(c.auth_rejections)},
        {"unusable_challenges", get(c.auth_failures)},
        {"refused_while_paused", get(c.auth_paused_refusals)},
    };
    upstream["connections"] = {
        {"active", get(c.upstream_connections_open) - std::min(get(c.upstream_connections_open),
                                                               get(c.upstream_connections_idle))},
        {"idle", get(c.upstream_connections_idle)},
        {"opened", get(c.upstream_connects)},
        {"connect_failures", get(c.upstream_connect_failures)},
        {"reused", get(c.upstream_reused)},
        {"retries", get(c.upstream_retries)},
        {"timeouts", get(c.upstream_timeouts)},
    };
    upstream["bytes"] = {{"from_clients", get(c.bytes_from_client)},
                         {"to_clients", get(c.bytes_to_client)}};
    upstream["last_answer"] = timestamp(c.upstream_last_ok_ms.load(std::memory_order_relaxed));
    upstream["last_failure"] =
        timestamp(c.upstream_last_failure_ms.load(std::memory_order_relaxed));
    upstream["last_error"] = error.text.empty()
                                 ? json(nullptr)
                                 : json{{"time", timestamp(error.unix_ms)}, {"text", error.text}};
    root["upstreams"] = json::array({std::move(upstream)});
    return root.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string render_metrics(const status_facts& facts, const counters& c) {
    exposition m;
    const std::string up = "upstream=\"" + label(facts.upstream_name) + "\"";

    m.single("authshim_build_info", "gauge", "authshim's version (always 1).",
             "version=\"" + label(facts.version) + "\"", 1);
    m.family("authshim_start_time_seconds", "gauge", "When authshim started (Unix time).");
    m.sample("authshim_start_time_seconds", "", static_cast<double>(facts.started_ms) / 1000.0);
    m.single("authshim_config_reloads_total", "counter", "Configuration reloads applied.", "",
             get(c.reloads));
    m.single("authshim_config_reload_failures_total", "counter",
             "Configuration reloads refused (invalid file, address in use...).", "",
             get(c.reload_failures));

    m.single("authshim_client_connections_accepted_total", "counter",
             "Client connections accepted.", "", get(c.connections_accepted));
    m.single("authshim_client_connections_active", "gauge", "Client connections open now.", "",
             get(c.connections_active));
    m.single("authshim_client_connections_rejected_total", "counter",
             "Client connections answered 503 because of limits.max_connections.",
             "reason=\"limit\"", get(c.connections_rejected_limit));
    m.single("authshim_client_requests_received_total", "counter",
             "Request heads read from clients (refused ones included).", "", get(c.requests));
    m.family("authshim_client_requests_refused_total", "counter",
             "Requests refused by authshim before they went upstream, by reason.");
    m.sample("authshim_client_requests_refused_total", "reason=\"bad_request\"",
             get(c.bad_requests));
    m.sample("authshim_client_requests_refused_total", "reason=\"client_address\"",
             get(c.denied_client));
    m.sample("authshim_client_requests_refused_total", "reason=\"connect_port\"",
             get(c.denied_port));
    m.sample("authshim_client_requests_refused_total", "reason=\"loop\"", get(c.denied_loop));
    m.sample("authshim_client_requests_refused_total", "reason=\"destination\"",
             get(c.denied_destination));

    m.family("authshim_requests_total", "counter",
             "Requests answered, by the status code sent to the client.");
    for (std::size_t code = 100; code < c.responses_by_code.size(); ++code)
        if (const auto n = get(c.responses_by_code[code]))
            m.sample("authshim_requests_total", up + ",code=\"" + std::to_string(code) + "\"", n);
    m.single("authshim_requests_without_response_total", "counter",
             "Requests that ended without a response (the client went away, or a body broke "
             "off after the head was sent).",
             up, get(c.responses_by_code[0]));

    m.family("authshim_request_duration_seconds", "histogram",
             "Time from the request head to the end of the response (tunnels: until "
             "established).");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < c.duration_buckets.size(); ++i) {
        cumulative += get(c.duration_buckets[i]);
        const std::string le = i < counters::duration_bounds.size()
                                   ? fmt::format("{}", counters::duration_bounds[i])
                                   : std::string("+Inf");
        m.sample("authshim_request_duration_seconds_bucket", up + ",le=\"" + le + "\"", cumulative);
    }
    m.sample("authshim_request_duration_seconds_sum", up,
             static_cast<double>(get(c.duration_sum_us)) / 1e6);
    m.sample("authshim_request_duration_seconds_count", up, cumulative);

    m.single("authshim_tunnels_total", "counter", "CONNECT tunnels established.", up,
             get(c.tunnels));
    m.single("authshim_tunnels_active", "gauge", "CONNECT tunnels open now.", up,
             get(c.tunnels_active));
    m.single("authshim_client_received_bytes_total", "counter",
             "Request body and tunnel bytes received from clients.", up, get(c.bytes_from_client));
    m.single("authshim_client_sent_bytes_total", "counter",
             "Response body and tunnel bytes sent to clients.", up, get(c.bytes_to_client));

    m.single("authshim_upstream_connections_open", "gauge", "Open connections to the upstream.", up,
             get(c.upstream_connections_open));
    m.single("authshim_upstream_connections_idle", "gauge",
             "Open connections to the upstream waiting in the pool.", up,
             get(c.upstream_connections_idle));
    m.single("authshim_upstream_connects_total", "counter", "Connections opened to the upstream.",
             up, get(c.upstream_connects));
    m.single("authshim_upstream_connect_failures_total", "counter",
             "Failed connection attempts to the upstream (DNS, refused, TLS, timeout).", up,
             get(c.upstream_connect_failures));
    m.single("authshim_upstream_reused_connections_total", "counter",
             "Requests sent on a pooled connection.", up, get(c.upstream_reused));
    m.single("authshim_upstream_retries_total", "counter",
             "Requests sent again because a pooled connection had been closed.", up,
             get(c.upstream_retries));
    m.single("authshim_upstream_timeouts_total", "counter",
             "Connect or response-header timeouts with the upstream.", up,
             get(c.upstream_timeouts));
    m.family("authshim_upstream_last_success_timestamp_seconds", "gauge",
             "When the upstream last answered (Unix time; 0: never).");
    m.sample("authshim_upstream_last_success_timestamp_seconds", up,
             static_cast<double>(c.upstream_last_ok_ms.load(std::memory_order_relaxed)) / 1000.0);
    m.family("authshim_upstream_last_failure_timestamp_seconds", "gauge",
             "When reaching the upstream last failed (Unix time; 0: never).");
    m.sample("authshim_upstream_last_failure_timestamp_seconds", up,
             static_cast<double>(c.upstream_last_failure_ms.load(std::memory_order_relaxed)) /
                 1000.0);
    m.single("authshim_upstream_up", "gauge",
             "1 unless the upstream's last attempt failed or its credentials are paused.", up,
             classify(c) == upstream_state::failing || classify(c) == upstream_state::paused ? 0
                                                                                             : 1);

    m.single("authshim_upstream_407_total", "counter",
             "407 Proxy Authentication Required answers received from the upstream.", up,
             get(c.upstream_407));
    m.single("authshim_auth_challenges_answered_total", "counter",
             "407 challenges answered with the stored credentials.", up,
             get(c.auth_challenges_answered));
    m.single("authshim_auth_stale_nonces_total", "counter",
             "Digest challenges with stale=true (a new nonce, not a rejection).", up,
             get(c.auth_stale_nonces));
    m.single("authshim_auth_rejections_total", "counter",
             "Times the upstream rejected the stored credentials.", up, get(c.auth_rejections));
    m.single("authshim_auth_unusable_challenges_total", "counter",
             "407s that could not be answered (no common scheme, malformed, downgrade).", up,
             get(c.auth_failures));
    m.single("authshim_auth_paused_refusals_total", "counter",
             "Requests answered 502 because the credentials are paused by the lockout guard.", up,
             get(c.auth_paused_refusals));
    const int auth_state = c.auth_state.load(std::memory_order_relaxed);
    m.single("authshim_auth_paused", "gauge",
             "1 while the lockout guard keeps the credentials from being sent.", up,
             auth_state == 2 ? 1 : 0);
    m.family("authshim_auth_paused_until_timestamp_seconds", "gauge",
             "When paused credentials are tried again (Unix time; 0: not paused, or only once "
             "the credential changes).");
    m.sample("authshim_auth_paused_until_timestamp_seconds", up,
             auth_state == 2
                 ? static_cast<double>(c.auth_paused_until_ms.load(std::memory_order_relaxed)) /
                       1000.0
                 : 0.0);
    if (const char* scheme = scheme_name(c.auth_scheme.load(std::memory_order_relaxed)))
        m.single("authshim_auth_scheme_info", "gauge",
                 "The authentication scheme in use with the upstream (always 1).",
                 up + ",scheme=\"" + scheme + "\"", 1);
    return m.take();
}

} // namespace authshim::service
