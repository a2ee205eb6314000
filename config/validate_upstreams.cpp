// The `upstreams` section: address and transport, the credentials an upstream uses, the schemes
// it may answer with, and the CA bundle for TLS to the proxy.
#include "config/detail_validate.hpp"

#include "config/detail_parse.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace authshim::config::detail {
namespace {

const std::string address_expected = "expected host:port, http://host:port or https://host:port "
                                     "such as \"proxy.corp.example:8080\"";

bool has_control(const std::string& text) {
    return std::any_of(text.begin(), text.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x20; });
}

std::string quote_names(const std::set<std::string>& names) {
    std::string out;
    for (const auto& name : names) {
        if (!out.empty()) out += ", ";
        out += describe(json(name));
    }
    return out;
}

/// `upstreams[].credentials`: null (none) or the name of an entry of `credentials`.
bool load_credentials_ref(context& ctx, const json& value, const std::string& pointer,
                          const std::set<std::string>& names, upstream& out) {
    if (value.is_null()) return true;
    if (!value.is_string()) {
        ctx.error(pointer, "expected the name of a \"credentials\" entry (a string) or null, got " +
                               describe(value));
        return false;
    }
    const std::string& name = value.get_ref<const std::string&>();
    if (!names.contains(name)) {
        std::string what = "there is no \"credentials\" entry named " + describe(value);
        if (names.empty()) {
            what += " (the \"credentials\" section is missing or empty; add e.g. \"credentials\": "
                    "{" +
                    describe(value) +
                    ": {\"username\": \"CORP\\\\user\", \"password\": {\"env\": \"VAR\"}}})";
        } else {
            what += "; known: " + quote_names(names);
        }
        ctx.error(pointer, std::move(what));
        return false;
    }
    out.credentials = name;
    return true;
}

/// `upstreams[].schemes`: a non-empty ordered list of distinct supported scheme names.
bool load_schemes(context& ctx, const json& value, const std::string& pointer, upstream& out) {
    if (!value.is_array()) {
        ctx.error(pointer,
                  "expected an array of scheme names such as [\"digest\", \"basic\"], got " +
                      describe(value));
        return false;
    }
    if (value.empty()) {
        ctx.error(pointer, "expected at least one scheme such as [\"digest\", \"basic\"], got an "
                           "empty array (a 407 could never be answered; omit \"credentials\" to "
                           "use the upstream without authentication)");
        return false;
    }
    static constexpr std::array<std::pair<std::string_view, auth_scheme>, 2> known{{
        {"digest", auth_scheme::digest},
        {"basic", auth_scheme::basic},
    }};
    bool ok = true;
    std::vector<auth_scheme> schemes;
    std::vector<std::size_t> index_of; // where each accepted scheme was found
    for (std::size_t i = 0; i < value.size(); ++i) {
        const json& item = value[i];
        const std::string at = child(pointer, i);
        const std::string expected = "expected \"digest\" or \"basic\", got " + describe(item);
        if (!item.is_string()) {
            ctx.error(at, expected);
            ok = false;
            continue;
        }
        const std::string& name = item.get_ref<const std::string&>();
        if (name == "ntlm" || name == "negotiate") {
            not_supported(ctx, at, "the \"" + name + "\" scheme",
                          "only \"digest\" and \"basic\" are available");
            ok = false;
            continue;
        }
        auto found = std::find_if(known.begin(), known.end(),
                                  [&name](const auto& entry) { return entry.first == name; });
        if (found == known.end()) {
            std::string what = expected;
            if (auto near = suggest(name, {"digest", "basic", "ntlm", "negotiate"}); !near.empty())
                what += " (did you mean \"" + near + "\"?)";
            ctx.error(at, std::move(what));
            ok = false;
            continue;
        }
        if (auto seen = std::find(schemes.begin(), schemes.end(), found->second);
            seen != schemes.end()) {
            ctx.error(
                at, "duplicate scheme " + describe(item) + " (already at " +
                        child(pointer, index_of[static_cast<std::size_t>(seen - schemes.begin())]) +
                        ")");
            ok = false;
            continue;
        }
        schemes.push_back(found->second);
        index_of.push_back(i);
    }
    if (ok) out.schemes = std::move(schemes);
    return ok;
}

void load_upstream(context& ctx, const json& value, const std::string& pointer,
                   const std::set<std::string>& credential_names, std::vector<upstream>& out) {
    if (!expect_object(ctx, value, pointer,
                       "an object such as {\"address\": \"proxy.corp.example:8080\"}"))
        return;
    check_keys(ctx, value, pointer, {"name", "address", "ca_file", "credentials", "schemes"});

    upstream result;
    bool ok = true;
    if (auto it = value.find("name"); it != value.end()) {
        const std::string at = child(pointer, "name");
        if (!it->is_string() || it->get_ref<const std::string&>().empty() ||
            has_control(it->get_ref<const std::string&>())) {
            ctx.error(at, "expected a non-empty name without control characters such as "
                          "\"corp\", got " +
                              describe(*it));
            ok = false;
        } else {
            result.name = it->get<std::string>();
        }
    }

    const std::string address_at = child(pointer, "address");
    bool address_known = false;
    if (auto it = value.find("address"); it == value.end()) {
        ctx.error(address_at, "missing required key \"address\" (" + address_expected + ")");
        ok = false;
    } else if (!it->is_string()) {
        ctx.error(address_at, address_expected + ", got " + describe(*it));
        ok = false;
    } else {
        auto parsed = parse_upstream_address(it->get<std::string>());
        if (auto* why = std::get_if<std::string>(&parsed)) {
            // The text may hold a password (user:password@host): never repeat it then.
            const bool secret = it->get_ref<const std::string&>().find('@') != std::string::npos;
            ctx.error(address_at,
                      address_expected + ", got " +
                          (secret ? std::string("an address that") : describe(*it) + ", which") +
                          " " + *why);
            ok = false;
        } else {
            result.transport = std::get<upstream>(parsed).transport;
            result.address = std::get<upstream>(parsed).address;
            address_known = true;
        }
    }

    if (auto it = value.find("ca_file"); it != value.end() && !it->is_null()) {
        const std::string at = child(pointer, "ca_file");
        if (auto path = get_path(ctx, *it, at,
                                 "expected the path of a PEM file of CA certificates such as "
                                 "\"corp-proxy-ca.pem\" (or null for the system's trust store)")) {
            result.ca_file = std::move(*path);
            if (address_known && result.transport != upstream_transport::https) {
                ctx.error(at, "\"ca_file\" is only used for TLS to the upstream proxy: write the "
                              "address as https://host:port, or remove \"ca_file\"");
                ok = false;
            }
        } else {
            ok = false;
        }
    }

    if (auto it = value.find("credentials"); it != value.end())
        ok = load_credentials_ref(ctx, *it, child(pointer, "credentials"), credential_names,
                                  result) &&
             ok;
    if (auto it = value.find("schemes"); it != value.end())
        ok = load_schemes(ctx, *it, child(pointer, "schemes"), result) && ok;
    if (ok) out.push_back(std::move(result));
}

} // namespace

void load_upstreams(context& ctx, const json* value, const std::string& pointer,
                    const std::set<std::string>& credential_names, std::vector<upstream>& out) {
    const std::string expected = "an array with exactly one upstream such as "
                                 "[{\"address\": \"proxy.corp.example:8080\"}]";
    if (!value) {
        ctx.error(pointer, "missing required key \"upstreams\" (expected " + expected + ")");
        return;
    }
    if (!value->is_array()) {
        ctx.error(pointer, "expected " + expected + ", got " + describe(*value));
        return;
    }
    if (value->size() != 1)
        ctx.error(pointer,
                  "exactly one upstream is supported until failover exists, got " +
                      (value->empty() ? std::string("none") : std::to_string(value->size())));
    for (std::size_t i = 0; i < value->size(); ++i)
        load_upstream(ctx, (*value)[i], child(pointer, i), credential_names, out);
}

} // namespace authshim::config::detail
