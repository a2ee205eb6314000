// The `access`, `timeouts`, `limits` and `log` sections, and the duration and path helpers.
#include "config/detail_validate.hpp"

#include "config/detail_ip.hpp"
#include "config/detail_parse.hpp"

#include <algorithm>
#include <array>
#include <system_error>
#include <utility>

namespace authshim::config::detail {
namespace {

const json* find(const json& object, std::string_view key) {
    auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
}

void load_clients(context& ctx, const json& value, const std::string& pointer,
                  std::vector<cidr>& out) {
    const std::string expected = "an address block such as \"10.0.0.0/8\", \"192.0.2.7\" or "
                                 "\"fd00::/8\"";
    if (!value.is_array()) {
        ctx.error(pointer, "expected an array of address blocks such as [\"127.0.0.0/8\", "
                           "\"::1/128\"], got " +
                               describe(value));
        return;
    }
    if (value.empty()) {
        ctx.error(pointer, "expected at least one address block such as \"127.0.0.0/8\", got an "
                           "empty array (no client could connect)");
        return;
    }
    for (std::size_t i = 0; i < value.size(); ++i) {
        const json& item = value[i];
        const std::string at = child(pointer, i);
        if (!item.is_string()) {
            ctx.error(at, "expected " + expected + ", got " + describe(item));
            continue;
        }
        auto parsed = parse_cidr(item.get<std::string>());
        if (auto* why = std::get_if<std::string>(&parsed)) {
            ctx.error(at, "expected " + expected + ", got " + describe(item) + ", which " + *why);
            continue;
        }
        cidr block = std::get<cidr>(std::move(parsed));
        if (block.prefix_length == 0)
            ctx.warning(at, "\"" + block.to_string() + "\" lets every " +
                                (block.address.size() == 4 ? "IPv4" : "IPv6") +
                                " client use authshim and its credentials");
        out.push_back(std::move(block));
    }
}

void load_connect_ports(context& ctx, const json& value, const std::string& pointer,
                        std::vector<port_range>& out) {
    const std::string expected = "a port number such as 443 or a range such as \"8000-8080\"";
    if (!value.is_array()) {
        ctx.error(pointer, "expected an array of ports and ranges such as [443, \"8443-8445\"], "
                           "got " +
                               describe(value));
        return;
    }
    for (std::size_t i = 0; i < value.size(); ++i) {
        const json& item = value[i];
        const std::string at = child(pointer, i);
        if (item.is_string()) {
            auto parsed = parse_port_range(item.get<std::string>());
            if (auto* range = std::get_if<port_range>(&parsed)) {
                out.push_back(*range);
                continue;
            }
            std::string why = std::get<std::string>(parsed);
            if (std::holds_alternative<std::uint16_t>(parse_port(item.get<std::string>(), false)))
                why = "is a string (write a single port as a number, without quotes)";
            ctx.error(at, "expected " + expected + ", got " + describe(item) + ", which " + why);
        } else if (item.is_number()) {
            if (auto port = get_integer(ctx, item, at, 1, 65535))
                out.push_back(
                    {static_cast<std::uint16_t>(*port), static_cast<std::uint16_t>(*port)});
        } else {
            ctx.error(at, "expected " + expected + ", got " + describe(item));
        }
    }
}

void load_destinations(context& ctx, const json& value, const std::string& pointer,
                       std::vector<destination_pattern>& out) {
    const std::string expected =
        "a host pattern such as \"crl.example.com\", \"*.example.com\" (its sub-domains) or "
        "\"10.0.0.0/8\" (IP addresses in the block)";
    if (value.is_null()) return; // no allow-list, as when the key is absent
    if (!value.is_array()) {
        ctx.error(pointer, "expected an array of host patterns such as [\"*.example.com\", "
                           "\"10.0.0.0/8\"] (or null for every destination), got " +
                               describe(value));
        return;
    }
    if (value.empty()) {
        ctx.error(pointer, "expected at least one host pattern such as \"*.example.com\", got an "
                           "empty array (no destination could be reached; leave "
                           "access.destinations out, or null, to allow every destination)");
        return;
    }
    for (std::size_t i = 0; i < value.size(); ++i) {
        const json& item = value[i];
        const std::string at = child(pointer, i);
        if (!item.is_string()) {
            ctx.error(at, "expected " + expected + ", got " + describe(item));
            continue;
        }
        auto parsed = parse_destination(item.get_ref<const std::string&>());
        if (auto* why = std::get_if<std::string>(&parsed)) {
            ctx.error(at, "expected " + expected + ", got " + describe(item) + ", which " + *why);
            continue;
        }
        auto pattern = std::get<destination_pattern>(std::move(parsed));
        const auto same = std::find(out.begin(), out.end(), pattern);
        if (same != out.end()) {
            ctx.warning(at, "\"" + pattern.to_string() + "\" is listed twice (also at " +
                                child(pointer, static_cast<std::size_t>(same - out.begin())) + ")");
            continue;
        }
        if (pattern.type == destination_pattern::kind::address && pattern.block.prefix_length == 0)
            ctx.warning(at,
                        "\"" + pattern.to_string() + "\" lets clients reach every " +
                            (pattern.block.address.size() == 4
                                 ? std::string("IPv4 address")
                                 : std::string("IP address (IPv4 ones too, as ::ffff:a.b.c.d)")) +
                            " given as a literal");
        if (pattern.type == destination_pattern::kind::subdomains &&
            pattern.name.find('.') == std::string::npos)
            ctx.warning(at, "\"" + pattern.to_string() +
                                "\" lets clients reach every name under the top-level domain \"" +
                                pattern.name + "\"");
        out.push_back(std::move(pattern));
    }
}

void load_access_log(context& ctx, const json& value, const std::string& pointer,
                     const std::optional<std::filesystem::path>& log_file,
                     std::optional<access_log_settings>& out) {
    const std::string path_expected = "expected a file path such as \"logs/access.jsonl\"";
    if (value.is_boolean() && !value.get<bool>()) {
        out.reset();
        return;
    }
    access_log_settings settings;
    std::string file_at = pointer;
    if (value.is_string()) {
        auto path = get_path(ctx, value, pointer, path_expected + " (or false for no access log)");
        if (!path) return;
        settings.file = std::move(*path);
    } else if (value.is_object()) {
        check_keys(ctx, value, pointer, {"file", "query", "max_bytes", "max_files"});
        bool ok = true;
        file_at = child(pointer, "file");
        if (const json* file = find(value, "file"); !file) {
            ctx.error(file_at, "missing required key \"file\" (" + path_expected + ")");
            ok = false;
        } else if (auto path = get_path(ctx, *file, file_at, path_expected)) {
            settings.file = std::move(*path);
        } else {
            ok = false;
        }
        if (const json* query = find(value, "query")) {
            const bool is_text = query->is_string();
            const std::string text = is_text ? query->get<std::string>() : std::string();
            if (is_text && text == "redact") {
                settings.redact_query = true;
            } else if (is_text && text == "keep") {
                settings.redact_query = false;
            } else {
                std::string what = "expected \"redact\" (log the path with \"?...\" in place of "
                                   "its query, which may carry tokens) or \"keep\", got " +
                                   describe(*query);
                if (is_text)
                    if (auto near = suggest(text, {"redact", "keep"}); !near.empty())
                        what += " (did you mean \"" + near + "\"?)";
                ctx.error(child(pointer, "query"), std::move(what));
                ok = false;
            }
        }
        if (const json* item = find(value, "max_bytes")) {
            if (auto number =
                    get_integer(ctx, *item, child(pointer, "max_bytes"), 65'536, 1'099'511'627'776))
                settings.max_bytes = *number;
            else
                ok = false;
        }
        if (const json* item = find(value, "max_files")) {
            if (auto number = get_integer(ctx, *item, child(pointer, "max_files"), 1, 100))
                settings.max_files = static_cast<unsigned>(*number);
            else
                ok = false;
        }
        if (!ok) return;
    } else {
        ctx.error(
            pointer,
            "expected false (no access log), a file path such as \"logs/access.jsonl\" or "
            "an object such as {\"file\": \"logs/access.jsonl\", \"query\": \"redact\"}, "
            "got " +
                describe(value) +
                (value.is_boolean() ? " (there is no default access log file: name one)" : ""));
        return;
    }

    if (log_file && *log_file == settings.file) {
        ctx.error(file_at, "the access log \"" + utf8_string(settings.file) +
                               "\" is the same file as \"log.file\": two writers on one file "
                               "would mix their lines and rotate it under each other; give the "
                               "access log its own file such as \"logs/access.jsonl\"");
        return;
    }
    out = std::move(settings);
}

} // namespace

std::optional<std::chrono::milliseconds>
get_duration(context& ctx, const json& value, const std::string& pointer, std::string_view expected,
             std::chrono::milliseconds min, std::chrono::milliseconds max) {
    if (!value.is_string()) {
        ctx.error(pointer, std::string(expected) + ", got " + describe(value) +
                               (value.is_number() ? ", which has no unit" : ""));
        return std::nullopt;
    }
    auto parsed = parse_duration(value.get<std::string>());
    if (auto* why = std::get_if<std::string>(&parsed)) {
        ctx.error(pointer, std::string(expected) + ", got " + describe(value) + ", which " + *why);
        return std::nullopt;
    }
    const auto duration = std::get<std::chrono::milliseconds>(parsed);
    if (duration < min || duration > max) {
        const std::string range = "expected a duration from " + format_duration(min) + " to " +
                                  format_duration(max) + ", got " + describe(value);
        ctx.error(pointer,
                  range +
                      (duration > max ? ", which is longer than " : ", which is shorter than ") +
                      format_duration(duration > max ? max : min));
        return std::nullopt;
    }
    return duration;
}

std::optional<std::filesystem::path>
get_path(context& ctx, const json& value, const std::string& pointer, std::string_view expected) {
    if (!value.is_string() || value.get_ref<const std::string&>().empty()) {
        ctx.error(pointer, std::string(expected) + ", got " + describe(value));
        return std::nullopt;
    }
    const auto& text = value.get_ref<const std::string&>();
    if (text.find('\0') != std::string::npos) {
        ctx.error(pointer, std::string(expected) + ", got a path containing a NUL character");
        return std::nullopt;
    }
    if (text.back() == '/' || text.back() == '\\') {
        ctx.error(pointer,
                  std::string(expected) + ", got " + describe(value) + ", which names a directory");
        return std::nullopt;
    }
    std::filesystem::path path = utf8_path(text);
    if (path.is_relative()) path = ctx.base_dir / path;
    std::error_code ec;
    if (auto absolute = std::filesystem::absolute(path, ec); !ec) path = absolute;
    return path.lexically_normal();
}

void load_access(context& ctx, const json* value, const std::string& pointer, access_policy& out) {
    const bool object = value && expect_object(ctx, *value, pointer,
                                               "an object such as {\"clients\": "
                                               "[\"127.0.0.0/8\"], \"connect_ports\": [443]}");
    if (object) check_keys(ctx, *value, pointer, {"clients", "connect_ports", "destinations"});

    const json* clients = object ? find(*value, "clients") : nullptr;
    out.clients_explicit = clients != nullptr;
    if (clients)
        load_clients(ctx, *clients, child(pointer, "clients"), out.clients);
    else
        out.clients = {cidr{{127, 0, 0, 0}, 8},
                       cidr{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128}};

    const json* ports = object ? find(*value, "connect_ports") : nullptr;
    if (ports)
        load_connect_ports(ctx, *ports, child(pointer, "connect_ports"), out.connect_ports);
    else
        out.connect_ports = {port_range{443, 443}};

    if (const json* destinations = object ? find(*value, "destinations") : nullptr)
        load_destinations(ctx, *destinations, child(pointer, "destinations"), out.destinations);
}

void load_timeouts(context& ctx, const json* value, const std::string& pointer, timeouts& out) {
    if (!value) return;
    if (!expect_object(ctx, *value, pointer, "an object such as {\"connect\": \"5s\"}")) return;
    check_keys(ctx, *value, pointer,
               {"connect", "client_header", "upstream_response", "tunnel_idle", "shutdown"});

    const std::array<std::pair<std::string_view, std::chrono::milliseconds*>, 5> fields{{
        {"connect", &out.connect},
        {"client_header", &out.client_header},
        {"upstream_response", &out.upstream_response},
        {"tunnel_idle", &out.tunnel_idle},
        {"shutdown", &out.shutdown},
    }};
    const std::string expected = "expected a duration such as \"15s\" or \"5m\" (a whole number "
                                 "and ms, s, m or h)";
    for (const auto& [key, target] : fields)
        if (const json* item = find(*value, key))
            if (auto duration = get_duration(ctx, *item, child(pointer, key), expected,
                                             std::chrono::milliseconds(1), std::chrono::hours(24)))
                *target = *duration;
}

void load_limits(context& ctx, const json* value, const std::string& pointer, limits& out) {
    if (!value) return;
    if (!expect_object(ctx, *value, pointer, "an object such as {\"max_connections\": 4096}"))
        return;
    check_keys(ctx, *value, pointer, {"max_connections", "max_header_bytes", "replay_body"});

    if (const json* item = find(*value, "max_connections"))
        if (auto number = get_integer(ctx, *item, child(pointer, "max_connections"), 1, 1'000'000))
            out.max_connections = static_cast<std::size_t>(*number);
    if (const json* item = find(*value, "max_header_bytes"))
        if (auto number =
                get_integer(ctx, *item, child(pointer, "max_header_bytes"), 1024, 16'777'216))
            out.max_header_bytes = static_cast<std::size_t>(*number);
    if (const json* item = find(*value, "replay_body"))
        if (auto number = get_integer(ctx, *item, child(pointer, "replay_body"), 0, 67'108'864))
            out.replay_body = static_cast<std::size_t>(*number);
}

void load_log(context& ctx, const json* value, const std::string& pointer, logging& out) {
    if (!value) return;
    if (!expect_object(ctx, *value, pointer, "an object such as {\"level\": \"info\"}")) return;
    check_keys(ctx, *value, pointer, {"level", "file", "access", "event_log"});

    if (const json* item = find(*value, "level")) {
        static constexpr std::array<std::pair<std::string_view, log_level>, 6> levels{{
            {"trace", log_level::trace},
            {"debug", log_level::debug},
            {"info", log_level::info},
            {"warn", log_level::warn},
            {"error", log_level::error},
            {"off", log_level::off},
        }};
        bool found = false;
        for (const auto& [name, level] : levels) {
            if (item->is_string() && item->get_ref<const std::string&>() == name) {
                out.level = level;
                found = true;
            }
        }
        if (!found) {
            std::string what = "expected one of \"trace\", \"debug\", \"info\", \"warn\", "
                               "\"error\", \"off\", got " +
                               describe(*item);
            if (item->is_string()) {
                auto near = suggest(item->get_ref<const std::string&>(),
                                    {"trace", "debug", "info", "warn", "error", "off"});
                if (!near.empty()) what += " (did you mean \"" + near + "\"?)";
            }
            ctx.error(child(pointer, "level"), std::move(what));
        }
    }

    if (const json* item = find(*value, "file"))
        if (auto path = get_path(ctx, *item, child(pointer, "file"),
                                 "expected a file path such as \"logs/authshim.log\" (omit "
                                 "\"file\" to log to stderr)"))
            out.file = std::move(*path);

    if (const json* item = find(*value, "access"))
        load_access_log(ctx, *item, child(pointer, "access"), out.file, out.access);
    if (const json* item = find(*value, "event_log")) {
        if (!item->is_boolean())
            ctx.error(child(pointer, "event_log"),
                      "expected true or false, got " + describe(*item));
        else
            out.event_log = item->get<bool>();
    }
}

} // namespace authshim::config::detail
