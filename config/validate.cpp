// The top level of the document, `listen`, the keys of later versions, and the helpers every
// section uses.
#include "config/detail_validate.hpp"

#include "config/detail_ip.hpp"
#include "config/detail_parse.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <utility>

namespace authshim::config::detail {

void context::error(const std::string& pointer, std::string what) {
    errors.push_back({origin + ": " + (pointer.empty() ? "/" : pointer), std::move(what)});
}

void context::warning(const std::string& pointer, std::string what) {
    warnings.push_back({origin + ": " + (pointer.empty() ? "/" : pointer), std::move(what)});
}

std::string child(const std::string& pointer, std::string_view key) {
    std::string out = pointer + '/';
    for (char c : key) {
        if (c == '~')
            out += "~0";
        else if (c == '/')
            out += "~1";
        else
            out += c;
    }
    return out;
}

std::string child(const std::string& pointer, std::size_t index) {
    return pointer + '/' + std::to_string(index);
}

std::string describe(const json& value) {
    switch (value.type()) {
    case json::value_t::string: {
        constexpr std::size_t max_bytes = 60;
        std::string text = value.get<std::string>();
        if (text.size() > max_bytes) {
            std::size_t cut = max_bytes;
            // Never cut inside a UTF-8 sequence.
            while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80)
                --cut;
            text = text.substr(0, cut) + "...";
        }
        return json(text).dump(-1, ' ', false, json::error_handler_t::replace);
    }
    case json::value_t::array:
        return value.empty() ? "an empty array" : "an array";
    case json::value_t::object:
        return value.empty() ? "an empty object" : "an object";
    case json::value_t::discarded:
        return "nothing";
    default:
        return value.dump();
    }
}

std::string describe_type(const json& value) {
    switch (value.type()) {
    case json::value_t::string:
        return "a string";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
        return "a number";
    case json::value_t::boolean:
        return "a boolean";
    case json::value_t::null:
        return "null";
    default:
        return describe(value); // containers are described without their contents
    }
}

std::filesystem::path utf8_path(const std::string& text) {
    return std::filesystem::path(std::u8string(text.begin(), text.end()));
}

std::string utf8_string(const std::filesystem::path& path) {
    const std::u8string text = path.u8string();
    return std::string(text.begin(), text.end());
}

namespace {

std::string lowercase(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] =
                std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0u : 1u)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

std::string join(std::initializer_list<std::string_view> words) {
    std::string out;
    for (auto word : words) {
        if (!out.empty()) out += ", ";
        out += word;
    }
    return out;
}

} // namespace

std::string suggest(std::string_view word, std::initializer_list<std::string_view> candidates) {
    const std::string lower = lowercase(word);
    std::string best;
    std::size_t best_distance = 3; // more than two edits is not a near miss
    for (auto candidate : candidates) {
        const std::string other = lowercase(candidate);
        std::size_t distance = edit_distance(lower, other);
        const bool prefix = lower.size() >= 3 && other.size() >= 3 &&
                            (lower.starts_with(other) || other.starts_with(lower));
        if (prefix) distance = std::min<std::size_t>(distance, 1);
        if (distance < best_distance && distance < std::max<std::size_t>(other.size(), 2)) {
            best = std::string(candidate);
            best_distance = distance;
        }
    }
    return best;
}

bool expect_object(context& ctx, const json& value, const std::string& pointer,
                   std::string_view expected) {
    if (value.is_object()) return true;
    ctx.error(pointer, "expected " + std::string(expected) + ", got " + describe(value));
    return false;
}

void check_keys(context& ctx, const json& object, const std::string& pointer,
                std::initializer_list<std::string_view> known) {
    for (const auto& item : object.items()) {
        const std::string& key = item.key();
        if (std::find(known.begin(), known.end(), key) != known.end()) continue;
        std::string what =
            "unknown key " + json(key).dump(-1, ' ', false, json::error_handler_t::replace);
        if (auto near = suggest(key, known); !near.empty())
            what += " (did you mean \"" + near + "\"?)";
        what += "; expected one of: " + join(known);
        ctx.error(child(pointer, key), std::move(what));
    }
}

std::optional<std::uint64_t> get_integer(context& ctx, const json& value,
                                         const std::string& pointer, std::uint64_t min,
                                         std::uint64_t max) {
    const std::string expected =
        "expected an integer from " + std::to_string(min) + " to " + std::to_string(max);
    if (value.is_number_unsigned()) {
        const auto number = value.get<std::uint64_t>();
        if (number >= min && number <= max) return number;
        ctx.error(pointer, expected + ", got " + describe(value) + ", which is out of range");
        return std::nullopt;
    }
    if (value.is_number_integer()) { // only negative numbers are stored signed
        ctx.error(pointer, expected + ", got " + describe(value) + ", which is out of range");
        return std::nullopt;
    }
    if (value.is_number_float()) {
        ctx.error(pointer, expected + ", got " + describe(value) + ", which is not a whole number");
        return std::nullopt;
    }
    if (value.is_string()) {
        ctx.error(pointer, expected + ", got " + describe(value) +
                               ", which is a string (write the number without quotes)");
        return std::nullopt;
    }
    ctx.error(pointer, expected + ", got " + describe(value));
    return std::nullopt;
}

void not_supported(context& ctx, const std::string& pointer, std::string_view name,
                   std::string_view hint) {
    std::string what = std::string(name) + " is not supported by this version of authshim yet";
    if (!hint.empty()) what += " (" + std::string(hint) + ")";
    ctx.error(pointer, std::move(what));
}

namespace {

constexpr std::string_view listen_example = "an IP address and port such as \"127.0.0.1:3128\" "
                                            "or \"[::1]:3128\"";

void load_listen(context& ctx, const json* value, const std::string& pointer,
                 const access_policy& access, std::vector<endpoint>& out) {
    if (!value) {
        out = {endpoint{"127.0.0.1", 3128}};
        return;
    }
    if (!value->is_array()) {
        ctx.error(pointer, "expected an array of addresses such as [\"127.0.0.1:3128\"], got " +
                               describe(*value));
        return;
    }
    if (value->empty()) {
        ctx.error(pointer, "expected at least one address such as \"127.0.0.1:3128\", got an "
                           "empty array");
        return;
    }

    std::vector<std::pair<endpoint, std::vector<std::uint8_t>>> seen; // with the address bytes
    std::vector<std::size_t> seen_index;
    for (std::size_t i = 0; i < value->size(); ++i) {
        const json& item = (*value)[i];
        const std::string at = child(pointer, i);
        if (!item.is_string()) {
            ctx.error(at, "expected " + std::string(listen_example) + ", got " + describe(item));
            continue;
        }
        auto parsed = parse_endpoint(item.get<std::string>(), true);
        if (auto* why = std::get_if<std::string>(&parsed)) {
            ctx.error(at, "expected " + std::string(listen_example) + ", got " + describe(item) +
                              ", which " + *why);
            continue;
        }
        endpoint address = std::get<endpoint>(parsed);
        auto bytes = parse_ip(address.host);
        if (bytes.empty()) {
            ctx.error(at, "expected " + std::string(listen_example) + ", got " + describe(item) +
                              ", which has a host name: listen addresses must be IP addresses");
            continue;
        }

        bool clash = false;
        for (std::size_t k = 0; k < seen.size() && !clash; ++k) {
            const auto& [other, other_bytes] = seen[k];
            if (address.port == 0 || other.port != address.port ||
                other_bytes.size() != bytes.size())
                continue;
            const std::string other_at = child(pointer, seen_index[k]);
            if (other_bytes == bytes) {
                ctx.error(at, "duplicate listen address \"" + address.to_string() +
                                  "\" (already at " + other_at + ")");
                clash = true;
            } else if (is_unspecified(other_bytes) || is_unspecified(bytes)) {
                ctx.error(at, "listen address \"" + address.to_string() + "\" overlaps \"" +
                                  other.to_string() + "\" at " + other_at +
                                  " (a wildcard address already covers every address of its "
                                  "family on that port)");
                clash = true;
            }
        }
        if (clash) continue;

        if (!is_loopback(bytes) && !access.clients_explicit)
            ctx.error(at, "listen address \"" + address.to_string() +
                              "\" is not a loopback address, so \"access.clients\" must be "
                              "given explicitly: authshim must never be an open proxy by "
                              "accident (e.g. \"access\": {\"clients\": [\"10.0.0.0/8\"]})");
        seen.emplace_back(address, std::move(bytes));
        seen_index.push_back(i);
        out.push_back(std::move(address));
    }
}

void load_admin(context& ctx, const json& value, const std::string& pointer) {
    if (!expect_object(ctx, value, pointer, "an object such as {\"listen\": null}")) return;
    check_keys(ctx, value, pointer, {"listen", "token"});
    if (auto it = value.find("listen"); it == value.end()) {
        not_supported(ctx, pointer, "admin",
                      "without \"listen\": null it would listen on 127.0.0.1:3129; write "
                      "\"admin\": {\"listen\": null} or remove \"admin\"");
    } else if (it->is_string()) {
        not_supported(ctx, child(pointer, "listen"), "admin.listen",
                      "only null, no admin endpoint, is accepted");
    } else if (!it->is_null()) {
        ctx.error(child(pointer, "listen"), "expected \"host:port\" or null, got " + describe(*it));
    }
    if (auto it = value.find("token"); it != value.end()) {
        if (it->is_object())
            not_supported(ctx, child(pointer, "token"), "admin.token");
        else
            ctx.error(child(pointer, "token"),
                      "expected a secret source such as {\"env\": \"VAR\"}, got " +
                          describe_type(*it)); // it may be the token itself
    }
}

} // namespace

void validate_document(context& ctx, const json& document, config& out) {
    if (!document.is_object()) {
        ctx.error("", "expected a JSON object at the top level such as {\"upstreams\": "
                      "[{\"address\": \"proxy.corp.example:8080\"}]}, got " +
                          describe(document));
        return;
    }
    check_keys(ctx, document, "",
               {"listen", "upstreams", "access", "timeouts", "limits", "log", "credentials",
                "lockout", "admin"});

    auto find = [&document](std::string_view key) -> const json* {
        auto it = document.find(key);
        return it == document.end() ? nullptr : &*it;
    };

    // `access` first: whether `access.clients` was given decides which listen addresses pass.
    load_access(ctx, find("access"), "/access", out.access);
    load_listen(ctx, find("listen"), "/listen", out.access, out.listen);
    // The upstreams name credentials: the names are known before either is validated, so that
    // a reference to an entry with its own errors is not reported twice.
    const json* credentials = find("credentials");
    std::set<std::string> credential_names;
    if (credentials && credentials->is_object())
        for (const auto& item : credentials->items())
            credential_names.insert(item.key());
    load_upstreams(ctx, find("upstreams"), "/upstreams", credential_names, out.upstreams);
    load_credentials(ctx, credentials, "/credentials", out.credentials);
    load_timeouts(ctx, find("timeouts"), "/timeouts", out.timeouts);
    load_limits(ctx, find("limits"), "/limits", out.limits);
    load_lockout(ctx, find("lockout"), "/lockout", out.lockout);
    load_log(ctx, find("log"), "/log", out.log);

    // An entry nobody uses is most likely a typo in an upstream's "credentials" (reported there)
    // or left over; either way it is harmless.
    std::set<std::string> used;
    if (const json* upstreams = find("upstreams"); upstreams && upstreams->is_array()) {
        for (const json& up : *upstreams) {
            if (!up.is_object()) continue;
            if (auto it = up.find("credentials"); it != up.end() && it->is_string())
                used.insert(it->get<std::string>());
        }
    }
    for (const auto& entry : out.credentials)
        if (!used.contains(entry.first))
            ctx.warning(child("/credentials", entry.first),
                        "credentials " + describe(json(entry.first)) +
                            " are not used by any upstream (name them in an upstream's "
                            "\"credentials\", or remove the entry)");

    if (const json* admin = find("admin")) load_admin(ctx, *admin, "/admin");
}

} // namespace authshim::config::detail
