#pragma once
/// Turns secret references (config/secret.hpp) into secrets. `env`, `file` and `plain` are
/// handled here on every platform; `dpapi` and `credman` are delegated to a `secret_resolver`,
/// which service/ implements for Windows and injects (the default one refuses them). Error texts
/// name the source (variable, path, kind), never a value.
/// Thread safety: free functions with no shared state; a resolver's own rules apply to it.

#include "config/config.hpp"
#include "config/loader.hpp"
#include "config/secret.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace authshim::config {

/// A resolved secret, or why there is none.
struct secret_result {
    std::optional<secret_string> value; ///< set on success
    std::string error;                  ///< on failure: what went wrong; never holds a secret

    static secret_result success(secret_string secret) { return {std::move(secret), {}}; }
    static secret_result failure(std::string why) { return {std::nullopt, std::move(why)}; }
    explicit operator bool() const noexcept { return value.has_value(); }
};

/// The platform's part of secret resolution. Implementations must not put a secret in an error
/// text. Used from one thread at a time (startup and reload).
class secret_resolver {
public:
    virtual ~secret_resolver() = default;

    /// Decrypts a DPAPI blob (already base64-decoded) to the UTF-8 secret.
    virtual secret_result resolve_dpapi(std::span<const std::uint8_t> blob) const = 0;

    /// Reads the password of a generic Windows Credential Manager entry.
    virtual secret_result resolve_credman(const std::string& target) const = 0;

    /// The value of environment variable `name`, or nothing when it is not set. The default
    /// reads the process environment with std::getenv; Windows overrides it to read UTF-16 and
    /// tests to avoid touching the real environment.
    virtual std::optional<secret_string> read_environment(const std::string& name) const;
};

/// The resolver for platforms without DPAPI or Credential Manager: both answer with an error
/// that says they are only available on Windows.
class default_secret_resolver : public secret_resolver {
public:
    secret_result resolve_dpapi(std::span<const std::uint8_t> blob) const override;
    secret_result resolve_credman(const std::string& target) const override;
};

/// Resolves one reference:
/// - env: the variable must be set and non-empty (errors name the variable);
/// - file: must exist, be a regular file of at most 64 KiB, be private to its owner (POSIX: no
///   group/other permission bits; the mode and `chmod 600` advice are given otherwise), be
///   readable and not empty; exactly one trailing "\n" or "\r\n" is removed, nothing else;
/// - plain: the value itself;
/// - dpapi / credman: delegated to `resolver`.
secret_result resolve_secret(const secret_ref& ref, const secret_resolver& resolver);

/// Resolves every entry of `cfg.credentials` into its `password`, and `cfg.admin.token_source`
/// (when set) into `cfg.admin.token`; each is wiped first and left empty on failure. Returns one
/// error per secret that failed, at `<cfg.source>: /credentials/<name>/password` or
/// `<cfg.source>: /admin/token` (an empty token is an error too); empty when all succeeded.
std::vector<diagnostic> resolve_credentials(config& cfg, const secret_resolver& resolver);

} // namespace authshim::config
