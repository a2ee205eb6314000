#pragma once
/// Windows secret sources: DPAPI (machine scope, authshim's fixed entropy), Credential Manager
/// generic credentials, and the environment read as UTF-16. Windows only. Secrets come back as
/// `secret_string`s; intermediate buffers are wiped. Thread safety: no shared state.

#include "config/secret.hpp"
#include "config/secret_resolver.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace authshim::service::windows {

/// Encrypts `secret` (UTF-8) with DPAPI, machine scope (CRYPTPROTECT_LOCAL_MACHINE |
/// CRYPTPROTECT_UI_FORBIDDEN), with authshim's fixed entropy: any account on this machine can
/// decrypt the result (the config folder's ACL is what protects it), no other machine can. On
/// failure returns nothing and sets `error` (what failed and why; never the secret).
std::optional<std::vector<std::uint8_t>> dpapi_protect(const config::secret_string& secret,
                                                       std::string& error);

/// The Windows resolver:
/// - dpapi: decrypts a blob made by `dpapi_protect` (same entropy);
/// - credman: the password of the generic credential `target` (CRED_TYPE_GENERIC) in the vault
///   of the account the process runs as; a UTF-16LE blob (cmdkey, Control Panel, CredWriteW
///   with a wide string) becomes UTF-8, a blob that is not valid UTF-16 is taken as UTF-8 bytes;
/// - environment: read with GetEnvironmentVariableW, returned as UTF-8.
/// Empty secrets are refused (as `env`, `file` and `plain` are). Error texts name the source
/// and the system's reason, never a secret byte. Stateless: const calls from any thread.
class secret_resolver final : public config::secret_resolver {
public:
    config::secret_result resolve_dpapi(std::span<const std::uint8_t> blob) const override;
    config::secret_result resolve_credman(const std::string& target) const override;
    std::optional<config::secret_string> read_environment(const std::string& name) const override;
};

} // namespace authshim::service::windows
