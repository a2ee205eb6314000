// Resolving secret references: env, file and plain here; dpapi and credman through the
// injected platform resolver.
#include "config/secret_resolver.hpp"

#include "config/detail_validate.hpp"
#include "config/file_permissions.hpp"

#include <array>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <system_error>
#include <type_traits>
#include <utility>

namespace authshim::config {
namespace {

/// A password or token file is a line; anything this large is the wrong file.
constexpr std::uintmax_t max_secret_file_bytes = 64 * 1024;

std::string quoted(const std::string& text) {
    return detail::describe(detail::json(text));
}

secret_result read_env(const env_secret& ref, const secret_resolver& resolver) {
    std::optional<secret_string> value = resolver.read_environment(ref.variable);
    const std::string name = "environment variable " + quoted(ref.variable);
    if (!value) return secret_result::failure(name + " is not set");
    if (value->empty()) return secret_result::failure(name + " is empty");
    return secret_result::success(std::move(*value));
}

secret_result read_file(const file_secret& ref) {
    const std::string name = detail::utf8_string(ref.path);
    const std::string head = "cannot read the secret from the file \"" + name + "\": ";

    std::error_code ec;
    const auto status = std::filesystem::status(ref.path, ec);
    if (status.type() == std::filesystem::file_type::not_found)
        return secret_result::failure(head + "it does not exist");
    if (ec) return secret_result::failure(head + ec.message());
    if (std::filesystem::is_directory(status))
        return secret_result::failure(head + "it is a directory, expected a file");
    if (!std::filesystem::is_regular_file(status))
        return secret_result::failure(head + "it is not a regular file");
    if (auto problem = secret_file_access_problem(ref.path))
        return secret_result::failure("refusing to read the secret: " + *problem);

    const auto size = std::filesystem::file_size(ref.path, ec);
    if (!ec && size > max_secret_file_bytes)
        return secret_result::failure(head + "it is larger than 64 KiB, expected a file holding "
                                             "only the secret");

    errno = 0;
    std::ifstream stream(ref.path, std::ios::binary);
    if (!stream) {
        // The standard library opens files with fopen/_wfopen, which report the cause in errno.
        const int error = errno != 0 ? errno : EACCES;
        return secret_result::failure(head + std::generic_category().message(error));
    }

    std::string text;
    // Reserved up front so that no reallocation leaves a copy behind in freed memory.
    text.reserve(static_cast<std::size_t>(max_secret_file_bytes) + 1);
    std::array<char, 4096> buffer{};
    bool too_large = false;
    while (stream.read(buffer.data(), buffer.size()) || stream.gcount() > 0) {
        const auto count = static_cast<std::size_t>(stream.gcount());
        if (text.size() + count > max_secret_file_bytes) {
            too_large = true;
            break;
        }
        text.append(buffer.data(), count);
    }
    const bool bad = stream.bad();
    wipe(buffer.data(), buffer.size());
    if (too_large || bad) {
        wipe(text);
        return secret_result::failure(head + (too_large ? "it is larger than 64 KiB, expected a "
                                                          "file holding only the secret"
                                                        : "a read error occurred"));
    }

    // Editors end the last line; that line break is not part of the secret. Exactly one.
    if (text.ends_with("\r\n"))
        text.resize(text.size() - 2);
    else if (text.ends_with('\n'))
        text.resize(text.size() - 1);
    if (text.empty()) {
        wipe(text);
        return secret_result::failure(head + "it is empty");
    }
    return secret_result::success(secret_string(std::move(text)));
}

} // namespace

std::optional<secret_string> secret_resolver::read_environment(const std::string& name) const {
    const char* value = std::getenv(name.c_str());
    if (!value) return std::nullopt;
    return secret_string(value);
}

secret_result default_secret_resolver::resolve_dpapi(std::span<const std::uint8_t>) const {
    return secret_result::failure(
        "{\"dpapi\": ...} secrets can only be decrypted on Windows, by the account that "
        "encrypted them; on this system use {\"env\": \"VAR\"} or {\"file\": \"path\"}");
}

secret_result default_secret_resolver::resolve_credman(const std::string&) const {
    return secret_result::failure(
        "{\"credman\": ...} secrets live in the Windows Credential Manager, which is only "
        "available on Windows; on this system use {\"env\": \"VAR\"} or {\"file\": \"path\"}");
}

secret_result resolve_secret(const secret_ref& ref, const secret_resolver& resolver) {
    return std::visit(
        [&resolver](const auto& source) -> secret_result {
            using source_type = std::decay_t<decltype(source)>;
            if constexpr (std::is_same_v<source_type, env_secret>) {
                return read_env(source, resolver);
            } else if constexpr (std::is_same_v<source_type, file_secret>) {
                return read_file(source);
            } else if constexpr (std::is_same_v<source_type, plain_secret>) {
                if (source.value.empty()) return secret_result::failure("the value is empty");
                return secret_result::success(source.value);
            } else if constexpr (std::is_same_v<source_type, dpapi_secret>) {
                return resolver.resolve_dpapi(source.blob);
            } else {
                static_assert(std::is_same_v<source_type, credman_secret>);
                return resolver.resolve_credman(source.target);
            }
        },
        ref);
}

std::vector<diagnostic> resolve_credentials(config& cfg, const secret_resolver& resolver) {
    const std::string origin =
        cfg.source.empty() ? std::string("(config)") : detail::utf8_string(cfg.source);
    std::vector<diagnostic> errors;
    for (auto& [name, entry] : cfg.credentials) {
        entry.password.clear();
        secret_result result = resolve_secret(entry.password_source, resolver);
        if (result) {
            entry.password = std::move(*result.value);
            continue;
        }
        // A resolver is not ours: an empty answer still has to say something.
        if (result.error.empty()) result.error = "the secret could not be resolved";
        const std::string pointer = detail::child(detail::child("/credentials", name), "password");
        errors.push_back({origin + ": " + pointer, std::move(result.error)});
    }

    // The admin endpoint's token comes from the same kinds of source, read the same way (a
    // `{"file"}` token gets the same permission check as a password file).
    cfg.admin.token.clear();
    if (cfg.admin.token_source) {
        secret_result result = resolve_secret(*cfg.admin.token_source, resolver);
        // env, file and plain never give an empty secret; a platform resolver might.
        if (result && result.value->empty())
            result = secret_result::failure("the admin token is empty");
        if (result) {
            cfg.admin.token = std::move(*result.value);
        } else {
            if (result.error.empty()) result.error = "the admin token could not be resolved";
            errors.push_back({origin + ": /admin/token", std::move(result.error)});
        }
    }
    return errors;
}

} // namespace authshim::config
