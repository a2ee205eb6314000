#pragma once
/// Secrets as a type. `secret_string` holds a password or token: it has no stream operator, no
/// formatter and no conversion, so it cannot reach a log line, an error text or the status
/// endpoint by accident; the only way to the bytes is the explicit, greppable `expose()`. Its
/// buffer is wiped when it is destroyed, moved from or assigned to.
/// `secret_ref` is where a configured secret comes from (`{"env": ...}`, `{"file": ...}`, ...);
/// config/secret_resolver.hpp turns one into a `secret_string`.
/// Thread safety: plain values; const access from several threads is safe.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace authshim::config {

/// Overwrites every byte of `text`'s buffer (up to its capacity) in a way the compiler cannot
/// remove, then empties it. The capacity is kept.
void wipe(std::string& text) noexcept;

/// Overwrites `size` bytes at `data` in a way the compiler cannot remove.
void wipe(void* data, std::size_t size) noexcept;

class secret_string {
public:
    secret_string() noexcept = default;
    /// Copies `text`; the caller wipes its own copy if it has one.
    explicit secret_string(std::string_view text) : value_(text) {}
    explicit secret_string(const char* text) : value_(text) {}
    /// Takes `text` over and wipes what is left in it (a short string's bytes stay in the
    /// moved-from object's inline buffer otherwise).
    explicit secret_string(std::string&& text) noexcept;

    secret_string(const secret_string& other) : value_(other.value_) {}
    secret_string(secret_string&& other) noexcept;
    secret_string& operator=(const secret_string& other);
    secret_string& operator=(secret_string&& other) noexcept;
    ~secret_string();

    /// The secret itself. Valid until this object is changed or destroyed. Every call site is
    /// a place where the secret leaves this type: keep them few and never log what they give.
    std::string_view expose() const noexcept { return value_; }

    bool empty() const noexcept { return value_.empty(); }
    /// The length is not treated as secret (it is used for `<N bytes>`-style remarks).
    std::size_t size() const noexcept { return value_.size(); }

    /// Wipes the value and leaves this empty.
    void clear() noexcept;

    /// Equality in time that depends on the lengths only, never on where the contents differ
    /// (used to notice that a credential changed).
    friend bool operator==(const secret_string& a, const secret_string& b) noexcept;

    /// Deliberately not streamable (and so not formattable through fmt's ostream support).
    friend std::ostream& operator<<(std::ostream&, const secret_string&) = delete;

private:
    std::string value_;
};

/// `{"env": "VAR"}`: the value of an environment variable.
struct env_secret {
    std::string variable;
    friend bool operator==(const env_secret&, const env_secret&) = default;
};

/// `{"file": "path"}`: the contents of a file (one trailing line break removed). `path` is
/// absolute, resolved against the config file's directory.
struct file_secret {
    std::filesystem::path path;
    friend bool operator==(const file_secret&, const file_secret&) = default;
};

/// `{"plain": "..."}`: the value written in the config file itself (accepted with a warning).
struct plain_secret {
    secret_string value;
    friend bool operator==(const plain_secret&, const plain_secret&) = default;
};

/// `{"dpapi": "<base64>"}`: a Windows DPAPI blob, kept decoded. The blob is encrypted, but it is
/// still never shown (only its size).
struct dpapi_secret {
    std::vector<std::uint8_t> blob;
    friend bool operator==(const dpapi_secret&, const dpapi_secret&) = default;
};

/// `{"credman": "target"}`: a generic credential in the Windows Credential Manager.
struct credman_secret {
    std::string target;
    friend bool operator==(const credman_secret&, const credman_secret&) = default;
};

/// Where a secret comes from. The reference itself (variable name, path, target) is not
/// secret and may be shown; a `plain_secret` and a `dpapi_secret` blob never are.
using secret_ref =
    std::variant<env_secret, file_secret, plain_secret, dpapi_secret, credman_secret>;

/// `"env"`, `"file"`, `"plain"`, `"dpapi"` or `"credman"`: the key used in the config file.
std::string_view secret_kind_name(const secret_ref& ref) noexcept;

} // namespace authshim::config
