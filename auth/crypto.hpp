#pragma once
/// The only door to OpenSSL in auth/: message digests (EVP), the random generator and secure
/// clearing. Free functions without shared state; thread-safe (OpenSSL 3 is).

#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace authshim::auth::crypto {

enum class hash_kind {
    md5,
    sha256,
    sha512_256, ///< FIPS 180-4 SHA-512/256 (its own initial values), not SHA-512 cut short
};

/// Lowercase hex of H(parts[0] ":" parts[1] ":" ...), fed to the digest piece by piece so the
/// joined text (which may hold a password) is never built. Empty when the digest is unavailable
/// (e.g. MD5 under a FIPS-only provider) or OpenSSL fails.
std::optional<std::string> hex_hash(hash_kind kind, std::initializer_list<std::string_view> parts);

/// Fills `out` from OpenSSL's CSPRNG; false when it cannot.
bool random_bytes(std::span<unsigned char> out) noexcept;

/// Overwrites the string's bytes (in a way the compiler keeps), then empties it.
void cleanse(std::string& secret) noexcept;

} // namespace authshim::auth::crypto
