// The top level of the document, `listen`, `admin`, and the helpers every section uses.
#include "config/detail_validate.hpp"
#include "config/winhttp_bypass.hpp"

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

constexpr std::string_view admin_listen_example =
    "an IP address and port such as \"127.0.0.1:3129\" or \"[::1]:3129\", or null for no admin "
    "endpoint";

/// A listening address with its IP bytes (4 or 16).
struct listen_address {
    endpoint address;
    std::vector<std::uint8_t> bytes;
};

/// One address to listen on: an IP literal and a port (0: ephemeral). `expected` starts every
/// message; `role` names what must be an IP address ("listen addresses").
std::optional<listen_address> get_listen_address(context& ctx, const json& item,
                                                 const std::string& at, std::string_view expected,
                                                 std::string_view role) {
    const std::string head = "expected " + std::string(expected) + ", got " + describe(item);
    if (!item.is_string()) {
        ctx.error(at, head);
        return std::nullopt;
    }
    auto parsed = parse_endpoint(item.get<std::string>(), true);
    if (auto* why = std::get_if<std::string>(&parsed)) {
        ctx.error(at, head + ", which " + *why);
        return std::nullopt;
    }
    endpoint address = std::get<endpoint>(parsed);
    auto bytes = parse_ip(address.host);
    if (bytes.empty()) {
        ctx.error(at,
                  head + ", which has a host name: " + std::string(role) + " must be IP addresses");
        return std::nullopt;
    }
    return listen_address{std::move(address), std::move(bytes)};
}

/// How two addresses to listen on collide: not at all, the same address, or one is the
/// wildcard of the other's family. A port of 0 (ephemeral) never collides.
enum class clash { none, same, wildcard };

clash find_clash(const listen_address& a, const listen_address& b) {
    if (a.address.port == 0 || a.address.port != b.address.port || a.bytes.size() != b.bytes.size())
        return clash::none;
    if (a.bytes == b.bytes) return clash::same;
    if (is_unspecified(a.bytes) || is_unspecified(b.bytes)) return clash::wildcard;
    return clash::none;
}

/// `listen`. `seen` gets every accepted address with the pointer it was written at.
void load_listen(context& ctx, const json* value, const std::string& pointer,
                 const access_policy& access, std::vector<endpoint>& out,
                 std::vector<std::pair<listen_address, std::string>>& seen) {
    if (!value) {
        out = {endpoint{"127.0.0.1", 3128}};
        // Where it was not written: an empty pointer (see `listen_place`).
        seen.push_back({listen_address{out.front(), parse_ip(out.front().host)}, {}});
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

    for (std::size_t i = 0; i < value->size(); ++i) {
        const std::string at = child(pointer, i);
        auto item = get_listen_address(ctx, (*value)[i], at, listen_example, "listen addresses");
        if (!item) continue;
        const endpoint& address = item->address;

        bool clashed = false;
        for (std::size_t k = 0; k < seen.size() && !clashed; ++k) {
            const auto& [other, other_at] = seen[k];
            switch (find_clash(*item, other)) {
            case clash::none:
                continue;
            case clash::same:
                ctx.error(at, "duplicate listen address \"" + address.to_string() +
                                  "\" (already at " + other_at + ")");
                break;
            case clash::wildcard:
                ctx.error(at, "listen address \"" + address.to_string() + "\" overlaps \"" +
                                  other.address.to_string() + "\" at " + other_at +
                                  " (a wildcard address already covers every address of its "
                                  "family on that port)");
                break;
            }
            clashed = true;
        }
        if (clashed) continue;

        if (!is_loopback(item->bytes) && !access.clients_explicit)
            ctx.error(at, "listen address \"" + address.to_string() +
                              "\" is not a loopback address, so \"access.clients\" must be "
                              "given explicitly: authshim must never be an open proxy by "
                              "accident (e.g. \"access\": {\"clients\": [\"10.0.0.0/8\"]})");
        out.push_back(address);
        seen.emplace_back(std::move(*item), at);
    }
}

/// "at /listen/1", or for the default listen address (no pointer) where it comes from.
std::string listen_place(const std::string& at) {
    return at.empty() ? std::string("the default of \"listen\"") : "at " + at;
}

/// `admin`: where the admin endpoint listens (default 127.0.0.1:3129, null: nowhere) and the
/// token it requires. Needs the `listen` addresses, which it must not take.
void load_admin(context& ctx, const json* value, const std::string& pointer,
                const std::vector<std::pair<listen_address, std::string>>& listen,
                admin_settings& out) {
    const bool object =
        value && expect_object(ctx, *value, pointer,
                               "an object such as {\"listen\": \"127.0.0.1:3129\"} or "
                               "{\"listen\": null}");
    if (value && !object) return; // reported; the default would only add confusing errors
    if (object) check_keys(ctx, *value, pointer, {"listen", "token"});

    auto find_key = [&](std::string_view key) -> const json* {
        if (!object) return nullptr;
        auto it = value->find(key);
        return it == value->end() ? nullptr : &*it;
    };

    // The token first: whether one is given decides which listen addresses pass.
    const std::string token_at = child(pointer, "token");
    const json* token = find_key("token");
    const bool token_given = token && !token->is_null();
    if (token_given)
        // A bare string may be the token itself: load_secret_ref describes it by type only.
        if (auto source = load_secret_ref(ctx, *token, token_at, "token"))
            out.token_source = std::move(*source);

    const std::string listen_at = child(pointer, "listen");
    const json* listen_value = find_key("listen");
    std::optional<listen_address> address;
    if (!listen_value) {
        out.listen = admin_settings{}.listen; // the default, 127.0.0.1:3129
        address = listen_address{*out.listen, parse_ip(out.listen->host)};
    } else if (listen_value->is_null()) {
        out.listen.reset();
        if (token_given)
            ctx.warning(token_at, "\"admin.token\" is set but \"admin.listen\" is null: there is "
                                  "no admin endpoint, so the token is not used");
        return;
    } else {
        address = get_listen_address(ctx, *listen_value, listen_at, admin_listen_example,
                                     "admin addresses");
        if (!address) return;
        out.listen = address->address;
    }

    if (listen_value && !is_loopback(address->bytes) && !token_given)
        ctx.error(listen_at,
                  "admin address \"" + address->address.to_string() +
                      "\" is not a loopback address, so \"admin.token\" is required: the admin "
                      "endpoint can reload the configuration and shows traffic counters; give a "
                      "token (e.g. \"token\": {\"env\": \"AUTHSHIM_ADMIN_TOKEN\"}) or listen on "
                      "a loopback address such as \"127.0.0.1:3129\"");

    for (const auto& [other, other_at] : listen) {
        const clash kind = find_clash(*address, other);
        if (kind == clash::none) continue;
        const std::string shown = "\"" + address->address.to_string() + "\"";
        if (!listen_value) {
            // The default was not written: say so where the clashing address was written.
            ctx.error(other_at, "listen address \"" + other.address.to_string() + "\" " +
                                    (kind == clash::same ? "is also" : "overlaps") +
                                    " the admin endpoint's default address " + shown +
                                    "; choose another port, or move the admin endpoint with "
                                    "\"admin\": {\"listen\": \"127.0.0.1:<port>\"} (or "
                                    "{\"listen\": null} for none)");
        } else if (kind == clash::same) {
            ctx.error(listen_at, "admin address " + shown + " is also a listen address (" +
                                     listen_place(other_at) +
                                     "): the proxy and the admin endpoint need their own ports");
        } else {
            ctx.error(listen_at, "admin address " + shown + " overlaps listen address \"" +
                                     other.address.to_string() + "\" (" + listen_place(other_at) +
                                     "; a wildcard address covers every address of its family "
                                     "on that port): the proxy and the admin endpoint need "
                                     "their own ports");
        }
        break;
    }
}

/// `winhttp`: {"bypass": "<local>;*.corp.example"}.
void load_winhttp(context& ctx, const json* value, const std::string& pointer,
                  winhttp_options& out) {
    if (!value) return;
    if (!expect_object(ctx, *value, pointer,
                       "an object such as {\"bypass\": \"<local>;*.corp.example\"}"))
        return;
    check_keys(ctx, *value, pointer, {"bypass"});
    const auto bypass = value->find("bypass");
    if (bypass == value->end()) return;
    const std::string at = child(pointer, "bypass");
    if (!bypass->is_string()) {
        ctx.error(at, "expected a bypass list such as \"<local>;*.corp.example\" (entries "
                      "separated by ';'), got " +
                          describe(*bypass));
        return;
    }
    std::string error;
    if (!validate_winhttp_bypass(bypass->get_ref<const std::string&>(), &error)) {
        ctx.error(at, error);
        return;
    }
    out.bypass = bypass->get<std::string>();
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
                "lockout", "admin", "winhttp"});

    auto find = [&document](std::string_view key) -> const json* {
        auto it = document.find(key);
        return it == document.end() ? nullptr : &*it;
    };

    // `access` first: whether `access.clients` was given decides which listen addresses pass.
    load_access(ctx, find("access"), "/access", out.access);
    std::vector<std::pair<listen_address, std::string>> listening;
    load_listen(ctx, find("listen"), "/listen", out.access, out.listen, listening);
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

    load_admin(ctx, find("admin"), "/admin", listening, out.admin);
    load_winhttp(ctx, find("winhttp"), "/winhttp", out.winhttp);
}

} // namespace authshim::config::detail
