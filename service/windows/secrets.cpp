// DPAPI, Credential Manager and environment secrets on Windows. Every buffer that held
// plaintext is wiped before it is freed; error texts never carry a secret byte.
#include "service/windows/secrets.hpp"

#include "service/windows/win32.hpp"

#include <dpapi.h>
#include <wincred.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string_view>
#include <utility>

namespace authshim::service::windows {
namespace {

using config::secret_result;
using config::secret_string;

/// Mixed into every authshim DPAPI blob: a blob made by another program with machine scope
/// does not decrypt as an authshim secret, and ours do not decrypt without it. Never change it:
/// every stored `{"dpapi": ...}` secret would become unreadable.
constexpr std::string_view entropy = "authshim DPAPI secret v1";

DATA_BLOB entropy_blob() {
    // DATA_BLOB wants a non-const pointer; DPAPI only reads the entropy.
    return {static_cast<DWORD>(entropy.size()),
            reinterpret_cast<BYTE*>(const_cast<char*>(entropy.data()))};
}

/// Codes DPAPI gives for data that is not a DPAPI blob, was tampered with, was made with other
/// entropy or on another machine (the machine key does not match).
bool foreign_blob_error(DWORD code) {
    return code == ERROR_INVALID_DATA || code == ERROR_INVALID_PARAMETER ||
           code == static_cast<DWORD>(NTE_BAD_DATA) ||
           code == static_cast<DWORD>(NTE_BAD_KEY_STATE) || code == static_cast<DWORD>(NTE_BAD_KEY);
}

std::string quoted(const std::string& text) {
    return "\"" + text + "\"";
}

/// The account this process runs as, for messages ("LOCAL SERVICE" in the service).
std::string current_account() {
    std::array<wchar_t, 257> name{};
    auto size = static_cast<DWORD>(name.size());
    if (!GetUserNameW(name.data(), &size) || size == 0) return "unknown account";
    return win32::narrow(std::wstring_view(name.data(), size - 1)); // size counts the NUL
}

/// A Credential Manager blob as a UTF-8 secret. cmdkey, the Control Panel and most CredWriteW
/// callers store UTF-16LE; some tools store UTF-8. Almost any even-sized byte string is valid
/// UTF-16, so: a blob with a zero byte (every ASCII character in UTF-16LE has one) is UTF-16LE;
/// else a blob that is valid UTF-8 is taken as it is; else UTF-16LE is tried.
secret_string blob_to_secret(const BYTE* data, std::size_t size) {
    const bool has_zero = std::find(data, data + size, BYTE{0}) != data + size;
    const bool valid_utf8 = size > 0 && MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS,
                                                            reinterpret_cast<const char*>(data),
                                                            static_cast<int>(size), nullptr, 0) > 0;
    if (size >= 2 && size % 2 == 0 && (has_zero || !valid_utf8)) {
        std::wstring wide(size / 2, L'\0');
        std::memcpy(wide.data(), data, size); // the blob need not be 2-byte aligned
        std::size_t length = wide.size();
        if (wide[length - 1] == L'\0') --length; // some writers store the terminator
        const int valid = length == 0 ? 0
                                      : WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS,
                                                            wide.data(), static_cast<int>(length),
                                                            nullptr, 0, nullptr, nullptr);
        if (valid > 0) {
            std::string utf8 = win32::narrow(std::wstring_view(wide.data(), length));
            SecureZeroMemory(wide.data(), wide.size() * sizeof(wchar_t));
            return secret_string(std::move(utf8));
        }
        SecureZeroMemory(wide.data(), wide.size() * sizeof(wchar_t));
    }
    std::string bytes(reinterpret_cast<const char*>(data), size);
    return secret_string(std::move(bytes));
}

} // namespace

std::optional<std::vector<std::uint8_t>> dpapi_protect(const config::secret_string& secret,
                                                       std::string& error) {
    const std::string_view plain = secret.expose();
    // DATA_BLOB wants a non-const pointer; CryptProtectData only reads its input.
    DATA_BLOB in{static_cast<DWORD>(plain.size()),
                 reinterpret_cast<BYTE*>(const_cast<char*>(plain.data()))};
    DATA_BLOB extra = entropy_blob();
    DATA_BLOB out{};
    if (!CryptProtectData(&in, L"authshim secret", &extra, nullptr, nullptr,
                          CRYPTPROTECT_LOCAL_MACHINE | CRYPTPROTECT_UI_FORBIDDEN, &out)) {
        error = "DPAPI could not encrypt the secret (CryptProtectData, machine scope): " +
                win32::last_error_text();
        return std::nullopt;
    }
    std::vector<std::uint8_t> blob(out.pbData, out.pbData + out.cbData);
    LocalFree(out.pbData);
    return blob;
}

secret_result secret_resolver::resolve_dpapi(std::span<const std::uint8_t> blob) const {
    const std::string what =
        "the {\"dpapi\": ...} secret (" + std::to_string(blob.size()) + "-byte blob)";
    if (blob.empty()) return secret_result::failure(what + " is empty");

    // Copied because DATA_BLOB wants a non-const pointer; the blob is ciphertext, not secret.
    std::vector<BYTE> cipher(blob.begin(), blob.end());
    DATA_BLOB in{static_cast<DWORD>(cipher.size()), cipher.data()};
    DATA_BLOB extra = entropy_blob();
    DATA_BLOB out{};
    if (!CryptUnprotectData(&in, nullptr, &extra, nullptr, nullptr, CRYPTPROTECT_UI_FORBIDDEN,
                            &out)) {
        const DWORD code = GetLastError();
        if (foreign_blob_error(code))
            return secret_result::failure(
                what +
                " could not be decrypted on this machine (DPAPI blobs are bound to the "
                "machine that made them; run `authshim credentials set` here): " +
                win32::error_text(code));
        return secret_result::failure(
            what + " could not be decrypted (CryptUnprotectData): " + win32::error_text(code));
    }

    std::string plain(reinterpret_cast<const char*>(out.pbData), out.cbData);
    SecureZeroMemory(out.pbData, out.cbData);
    LocalFree(out.pbData);
    if (plain.empty()) return secret_result::failure(what + " decrypts to an empty value");
    return secret_result::success(secret_string(std::move(plain)));
}

secret_result secret_resolver::resolve_credman(const std::string& target) const {
    const std::string what = "the Credential Manager entry " + quoted(target);
    if (target.empty()) return secret_result::failure("the Credential Manager target is empty");

    const std::wstring wide_target = win32::widen(target);
    CREDENTIALW* credential = nullptr;
    if (!CredReadW(wide_target.c_str(), CRED_TYPE_GENERIC, 0, &credential)) {
        const DWORD code = GetLastError();
        if (code == ERROR_NOT_FOUND)
            return secret_result::failure(
                "there is no generic credential " + quoted(target) +
                " in the Windows Credential Manager of the account this process runs as (" +
                current_account() +
                "): the credential must be stored in the vault of the account the service runs "
                "as (NT AUTHORITY\\LocalService), e.g. with `cmdkey /generic:" +
                target + " /user:USER /pass` run as that account");
        return secret_result::failure("cannot read " + what +
                                      " (CredReadW): " + win32::error_text(code));
    }

    secret_string secret;
    if (credential->CredentialBlob && credential->CredentialBlobSize > 0) {
        secret = blob_to_secret(credential->CredentialBlob, credential->CredentialBlobSize);
        SecureZeroMemory(credential->CredentialBlob, credential->CredentialBlobSize);
    }
    CredFree(credential);
    if (secret.empty()) return secret_result::failure(what + " has an empty password");
    return secret_result::success(std::move(secret));
}

std::optional<config::secret_string>
secret_resolver::read_environment(const std::string& name) const {
    if (name.empty()) return std::nullopt;
    const std::wstring wide_name = win32::widen(name);
    std::vector<wchar_t> buffer(256, L'\0');
    // The value may grow between the size query and the read (another thread): retry a little.
    for (int attempt = 0; attempt < 4; ++attempt) {
        SetLastError(ERROR_SUCCESS);
        const DWORD n = GetEnvironmentVariableW(wide_name.c_str(), buffer.data(),
                                                static_cast<DWORD>(buffer.size()));
        if (n == 0) {
            // 0 is both "not set" (with ERROR_ENVVAR_NOT_FOUND) and "set to an empty value".
            if (GetLastError() != ERROR_SUCCESS) return std::nullopt;
            return secret_string();
        }
        if (n < buffer.size()) {
            std::string utf8 = win32::narrow(std::wstring_view(buffer.data(), n));
            SecureZeroMemory(buffer.data(), buffer.size() * sizeof(wchar_t));
            return secret_string(std::move(utf8));
        }
        // Too small: n is the size needed, terminator included. Wipe before the old buffer goes.
        SecureZeroMemory(buffer.data(), buffer.size() * sizeof(wchar_t));
        buffer = std::vector<wchar_t>(n, L'\0');
    }
    SecureZeroMemory(buffer.data(), buffer.size() * sizeof(wchar_t));
    return std::nullopt;
}

} // namespace authshim::service::windows
