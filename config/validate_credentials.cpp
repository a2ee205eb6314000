// The `credentials` section with its secret sources, and `lockout`. Nothing here may put a
// password (or a DPAPI blob) in a message: values under `password` are only ever described by
// their type.
#include "config/detail_validate.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace authshim::config::detail {
namespace {

constexpr std::string_view secret_example = "{\"env\": \"VAR\"} or {\"file\": \"path\"}";

const json* find(const json& object, std::string_view key) {
    auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
}

bool has_control(std::string_view text) {
    return std::any_of(text.begin(), text.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x20; });
}

/// `<N bytes>`, the form `to_display_json` shows a DPAPI blob in.
bool is_masked_blob(std::string_view text) {
    if (!text.starts_with('<') || !text.ends_with(" bytes>")) return false;
    const std::string_view digits = text.substr(1, text.size() - 8);
    return !digits.empty() &&
           std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<secret_ref> load_env(context& ctx, const json& value, const std::string& at) {
    const std::string expected =
        "expected the name of an environment variable such as \"AUTHSHIM_PASSWORD\", got ";
    if (!value.is_string() || value.get_ref<const std::string&>().empty()) {
        ctx.error(at, expected + describe(value));
        return std::nullopt;
    }
    const auto& name = value.get_ref<const std::string&>();
    if (name.find('=') != std::string::npos || has_control(name)) {
        ctx.error(at, expected + describe(value) +
                          ", which contains '=' or a control character (not a variable name)");
        return std::nullopt;
    }
    return env_secret{name};
}

std::optional<secret_ref> load_plain(context& ctx, const json& value, const std::string& at,
                                     std::string_view noun) {
    const std::string expected = "expected the " + std::string(noun) + " as a string, got ";
    if (!value.is_string()) {
        ctx.error(at, expected + describe_type(value));
        return std::nullopt;
    }
    const auto& text = value.get_ref<const std::string&>();
    if (text.empty()) {
        ctx.error(at, expected + "an empty string");
        return std::nullopt;
    }
    std::string what = "the " + std::string(noun) +
                       " is written in plain text in the configuration file; prefer " +
                       std::string(secret_example) +
                       " (on Windows also {\"dpapi\": ...} or {\"credman\": \"target\"})";
    if (text == "********")
        what += ". It is also the mask that the effective-configuration display shows in place "
                "of a " +
                std::string(noun) + ", not a real " + std::string(noun) + ": copy the original \"" +
                std::string(noun) + "\" instead";
    ctx.warning(at, std::move(what));
    return plain_secret{secret_string(text)};
}

std::optional<secret_ref> load_dpapi(context& ctx, const json& value, const std::string& at) {
    const std::string expected = "expected a base64 DPAPI blob (as written by \"authshim "
                                 "credentials set\" on the Windows machine), got ";
    if (!value.is_string()) {
        ctx.error(at, expected + describe_type(value));
        return std::nullopt;
    }
    const auto& text = value.get_ref<const std::string&>();
    if (is_masked_blob(text)) {
        ctx.error(at, expected + "the masked form that the effective-configuration display shows; "
                                 "copy the blob from the original configuration");
        return std::nullopt;
    }
    auto blob = decode_base64(text);
    if (!blob || blob->empty()) {
        ctx.error(at, expected + (text.empty() ? "an empty string" : "text that is not base64"));
        return std::nullopt;
    }
    return dpapi_secret{std::move(*blob)};
}

std::optional<secret_ref> load_credman(context& ctx, const json& value, const std::string& at) {
    const std::string expected = "expected the target name of a Windows Credential Manager "
                                 "entry such as \"authshim/corp-proxy\", got ";
    // CRED_MAX_GENERIC_TARGET_NAME_LENGTH characters; counted in UTF-8 bytes here, which is
    // never fewer.
    constexpr std::size_t max_target = 32767;
    if (!value.is_string() || value.get_ref<const std::string&>().empty() ||
        has_control(value.get_ref<const std::string&>())) {
        ctx.error(at, expected + describe(value) +
                          (value.is_string() && !value.get_ref<const std::string&>().empty()
                               ? ", which contains a control character"
                               : ""));
        return std::nullopt;
    }
    if (value.get_ref<const std::string&>().size() > max_target) {
        ctx.error(at, expected + "a name longer than 32767 characters");
        return std::nullopt;
    }
    return credman_secret{value.get<std::string>()};
}

void load_credential(context& ctx, const std::string& name, const json& value,
                     const std::string& pointer, std::map<std::string, credential>& out) {
    bool ok = true;
    if (name.empty() || has_control(name)) {
        ctx.error(pointer, "expected a credentials name without control characters such as "
                           "\"machine\", got " +
                               describe(json(name)));
        ok = false;
    }
    if (!value.is_object()) {
        ctx.error(pointer, "expected an object such as {\"username\": \"CORP\\\\svc-proxy\", "
                           "\"password\": {\"env\": \"VAR\"}}, got " +
                               describe_type(value));
        return;
    }
    check_keys(ctx, value, pointer, {"username", "password"});

    credential entry;
    const std::string user_at = child(pointer, "username");
    const std::string user_expected = "expected the user name as a non-empty string such as "
                                      "\"CORP\\\\svc-proxy\"";
    if (const json* user = find(value, "username"); !user) {
        ctx.error(user_at, "missing required key \"username\" (" + user_expected + ")");
        ok = false;
    } else if (!user->is_string() || user->get_ref<const std::string&>().empty()) {
        ctx.error(user_at, user_expected + ", got " + describe(*user));
        ok = false;
    } else if (has_control(user->get_ref<const std::string&>())) {
        ctx.error(user_at, user_expected + ", got a name containing a control character");
        ok = false;
    } else {
        entry.username = user->get<std::string>();
    }

    const std::string password_at = child(pointer, "password");
    if (const json* password = find(value, "password"); !password) {
        ctx.error(password_at, "missing required key \"password\" (expected a secret source such "
                               "as " +
                                   std::string(secret_example) + ")");
        ok = false;
    } else if (auto source = load_secret_ref(ctx, *password, password_at, "password")) {
        entry.password_source = std::move(*source);
    } else {
        ok = false;
    }
    if (ok) out.emplace(name, std::move(entry));
}

} // namespace

std::optional<std::vector<std::uint8_t>> decode_base64(std::string_view text) {
    auto value_of = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::size_t padding = 0;
    while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=')
        ++padding;
    if (padding > 0 && text.size() % 4 != 0) return std::nullopt;
    const std::string_view body = text.substr(0, text.size() - padding);
    if (body.size() % 4 == 1) return std::nullopt;

    std::vector<std::uint8_t> out;
    out.reserve(body.size() / 4 * 3 + 2);
    std::uint32_t bits = 0;
    int count = 0;
    for (char c : body) {
        const int v = value_of(c);
        if (v < 0) return std::nullopt;
        bits = (bits << 6) | static_cast<std::uint32_t>(v);
        if (++count == 4) {
            out.push_back(static_cast<std::uint8_t>(bits >> 16));
            out.push_back(static_cast<std::uint8_t>(bits >> 8));
            out.push_back(static_cast<std::uint8_t>(bits));
            bits = 0;
            count = 0;
        }
    }
    // A partial group: its unused low bits must be zero (one spelling per blob).
    if (count == 2) {
        if ((bits & 0x0f) != 0) return std::nullopt;
        out.push_back(static_cast<std::uint8_t>(bits >> 4));
    } else if (count == 3) {
        if ((bits & 0x03) != 0) return std::nullopt;
        out.push_back(static_cast<std::uint8_t>(bits >> 10));
        out.push_back(static_cast<std::uint8_t>(bits >> 2));
    }
    return out;
}

std::optional<secret_ref> load_secret_ref(context& ctx, const json& value,
                                          const std::string& pointer, std::string_view noun) {
    static constexpr std::array<std::string_view, 5> kinds{"env", "file", "plain", "dpapi",
                                                           "credman"};
    if (!value.is_object()) {
        std::string what = "expected a secret source such as " + std::string(secret_example) +
                           ", got " + describe_type(value);
        if (value.is_string())
            what += " (to keep the " + std::string(noun) +
                    " in this file write {\"plain\": \"...\"}; better, keep it out of the file "
                    "with env or file)";
        ctx.error(pointer, std::move(what));
        return std::nullopt;
    }
    const std::size_t errors_before = ctx.errors.size();
    check_keys(ctx, value, pointer, {"env", "file", "plain", "dpapi", "credman"});
    if (ctx.errors.size() != errors_before) return std::nullopt;
    if (value.size() != 1) {
        std::string what = "expected exactly one of \"env\", \"file\", \"plain\", \"dpapi\", "
                           "\"credman\", got ";
        if (value.empty()) {
            what += "an empty object";
        } else {
            std::string keys;
            for (const auto& item : value.items())
                keys += (keys.empty() ? "\"" : ", \"") + item.key() + "\"";
            what += keys;
        }
        ctx.error(pointer, std::move(what));
        return std::nullopt;
    }

    const auto item = value.items().begin();
    const std::string& kind = item.key();
    const std::string at = child(pointer, kind);
    if (kind == kinds[0]) return load_env(ctx, item.value(), at);
    if (kind == kinds[1]) {
        auto path = get_path(ctx, item.value(), at,
                             "expected the path of a file holding the secret such as "
                             "\"secrets/proxy-password\"");
        if (!path) return std::nullopt;
        return file_secret{std::move(*path)};
    }
    if (kind == kinds[2]) return load_plain(ctx, item.value(), at, noun);
    if (kind == kinds[3]) return load_dpapi(ctx, item.value(), at);
    return load_credman(ctx, item.value(), at);
}

void load_credentials(context& ctx, const json* value, const std::string& pointer,
                      std::map<std::string, credential>& out) {
    if (!value) return;
    if (!value->is_object()) {
        ctx.error(pointer, "expected an object of named credentials such as {\"machine\": "
                           "{\"username\": ..., \"password\": ...}}, got " +
                               describe_type(*value));
        return;
    }
    for (const auto& item : value->items())
        load_credential(ctx, item.key(), item.value(), child(pointer, item.key()), out);
}

void load_lockout(context& ctx, const json* value, const std::string& pointer,
                  lockout_policy& out) {
    if (!value) return;
    if (!expect_object(ctx, *value, pointer,
                       "an object such as {\"max_rejections\": 1, \"retry_after\": null}"))
        return;
    check_keys(ctx, *value, pointer, {"max_rejections", "retry_after"});

    if (const json* item = find(*value, "max_rejections"))
        if (auto number = get_integer(ctx, *item, child(pointer, "max_rejections"), 1, 100))
            out.max_rejections = static_cast<unsigned>(*number);
    if (const json* item = find(*value, "retry_after"); item && !item->is_null())
        out.retry_after =
            get_duration(ctx, *item, child(pointer, "retry_after"),
                         "expected a duration such as \"30m\" (a whole number and ms, s, m or h), "
                         "or null to wait until the credential changes",
                         std::chrono::seconds(1), std::chrono::hours(24));
}

} // namespace authshim::config::detail
