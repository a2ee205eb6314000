#include "service/windows/secrets.hpp"

#include "service/windows/win32.hpp"

#include <dpapi.h>
#include <wincred.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace cfg = authshim::config;
namespace win = authshim::service::windows;
namespace win32 = authshim::service::win32;

namespace {

/// Text that must never appear in an error message.
const std::string canary = "Canary-Pa55w0rd-7f3e9a";
/// The canary with non-ASCII characters (u-umlaut, euro sign) in UTF-8.
const std::string canary_utf8 = canary + " \xC3\xBC\xE2\x82\xAC";

bool contains(const std::vector<std::uint8_t>& bytes, const std::string& needle) {
    return std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end()) != bytes.end();
}

/// A Credential Manager target no other test run uses.
std::string unique_target(const char* what) {
    return std::string("authshim-test/") + what + "/" + std::to_string(GetCurrentProcessId()) +
           "-" + std::to_string(GetTickCount64());
}

/// Writes a generic credential whose blob is `blob`; true on success.
bool write_credential(const std::string& target, const std::vector<BYTE>& blob) {
    std::wstring name = win32::widen(target);
    std::wstring user = L"svc-authshim-test";
    std::vector<BYTE> data = blob;
    CREDENTIALW credential{};
    credential.Type = CRED_TYPE_GENERIC;
    credential.TargetName = name.data();
    credential.CredentialBlobSize = static_cast<DWORD>(data.size());
    credential.CredentialBlob = data.data();
    credential.Persist = CRED_PERSIST_LOCAL_MACHINE;
    credential.UserName = user.data();
    return CredWriteW(&credential, 0) != FALSE;
}

std::vector<BYTE> utf16_bytes(const std::string& utf8) {
    const std::wstring wide = win32::widen(utf8);
    const auto* begin = reinterpret_cast<const BYTE*>(wide.data());
    return {begin, begin + wide.size() * sizeof(wchar_t)};
}

} // namespace

TEST_CASE("windows: DPAPI round trip through dpapi_protect and resolve_dpapi") {
    std::string error;
    const auto blob = win::dpapi_protect(cfg::secret_string(canary_utf8), error);
    REQUIRE(blob);
    CHECK(error.empty());
    CHECK(blob->size() > canary_utf8.size());
    CHECK_FALSE(contains(*blob, canary)); // encrypted, not encoded

    const win::secret_resolver resolver;
    const cfg::secret_result result = resolver.resolve_dpapi(*blob);
    REQUIRE(result);
    CHECK(result.value->expose() == canary_utf8);

    // Through the shared entry point as a config would use it.
    const cfg::secret_result via_ref = cfg::resolve_secret(cfg::dpapi_secret{*blob}, resolver);
    REQUIRE(via_ref);
    CHECK(via_ref.value->expose() == canary_utf8);
}

TEST_CASE("windows: a tampered or foreign DPAPI blob gives a clean error without the secret") {
    std::string error;
    const auto blob = win::dpapi_protect(cfg::secret_string(canary), error);
    REQUIRE(blob);
    const win::secret_resolver resolver;

    SECTION("a flipped byte near the end (ciphertext / signature)") {
        std::vector<std::uint8_t> tampered = *blob;
        tampered[tampered.size() - 30] ^= 0x5A;
        const cfg::secret_result result = resolver.resolve_dpapi(tampered);
        REQUIRE_FALSE(result);
        CHECK(result.error.find("could not be decrypted on this machine") != std::string::npos);
        CHECK(result.error.find("authshim credentials set") != std::string::npos);
        CHECK(result.error.find(canary) == std::string::npos);
    }
    SECTION("bytes that are not a DPAPI blob") {
        const std::vector<std::uint8_t> garbage(canary.begin(), canary.end());
        const cfg::secret_result result = resolver.resolve_dpapi(garbage);
        REQUIRE_FALSE(result);
        CHECK(result.error.find("could not be decrypted on this machine") != std::string::npos);
        CHECK(result.error.find(canary) == std::string::npos);
    }
    SECTION("a truncated blob") {
        const std::vector<std::uint8_t> truncated(blob->begin(), blob->begin() + 40);
        const cfg::secret_result result = resolver.resolve_dpapi(truncated);
        REQUIRE_FALSE(result);
        CHECK(result.error.find("could not be decrypted") != std::string::npos);
    }
    SECTION("an empty blob") {
        const cfg::secret_result result = resolver.resolve_dpapi({});
        REQUIRE_FALSE(result);
        CHECK(result.error.find("empty") != std::string::npos);
    }
}

TEST_CASE("windows: a DPAPI blob made without authshim's entropy is refused") {
    // Another program's machine-scope blob must not decrypt as an authshim secret.
    std::string plain = canary;
    DATA_BLOB in{static_cast<DWORD>(plain.size()), reinterpret_cast<BYTE*>(plain.data())};
    DATA_BLOB out{};
    REQUIRE(CryptProtectData(&in, nullptr, nullptr, nullptr, nullptr,
                             CRYPTPROTECT_LOCAL_MACHINE | CRYPTPROTECT_UI_FORBIDDEN, &out));
    const std::vector<std::uint8_t> blob(out.pbData, out.pbData + out.cbData);
    LocalFree(out.pbData);

    const cfg::secret_result result = win::secret_resolver{}.resolve_dpapi(blob);
    REQUIRE_FALSE(result);
    CHECK(result.error.find("could not be decrypted on this machine") != std::string::npos);
    CHECK(result.error.find(canary) == std::string::npos);
}

TEST_CASE("windows: Credential Manager generic credentials are read as UTF-8") {
    const win::secret_resolver resolver;

    SECTION("a UTF-16LE blob (cmdkey, Control Panel)") {
        const std::string target = unique_target("utf16");
        REQUIRE(write_credential(target, utf16_bytes(canary_utf8)));
        const cfg::secret_result result = resolver.resolve_credman(target);
        CHECK(CredDeleteW(win32::widen(target).c_str(), CRED_TYPE_GENERIC, 0));
        REQUIRE(result);
        CHECK(result.value->expose() == canary_utf8);
    }
    SECTION("a UTF-16LE blob that includes the terminator") {
        const std::string target = unique_target("utf16z");
        std::vector<BYTE> blob = utf16_bytes(canary);
        blob.push_back(0);
        blob.push_back(0);
        REQUIRE(write_credential(target, blob));
        const cfg::secret_result result = resolver.resolve_credman(target);
        CHECK(CredDeleteW(win32::widen(target).c_str(), CRED_TYPE_GENERIC, 0));
        REQUIRE(result);
        CHECK(result.value->expose() == canary);
    }
    SECTION("a blob of odd size is taken as UTF-8 bytes") {
        const std::string target = unique_target("utf8");
        const std::string value = canary + "x"; // 23 bytes
        REQUIRE(value.size() % 2 == 1);
        REQUIRE(write_credential(target, std::vector<BYTE>(value.begin(), value.end())));
        const cfg::secret_result result = resolver.resolve_credman(target);
        CHECK(CredDeleteW(win32::widen(target).c_str(), CRED_TYPE_GENERIC, 0));
        REQUIRE(result);
        CHECK(result.value->expose() == value);
    }
    SECTION("an empty password is refused") {
        const std::string target = unique_target("empty");
        REQUIRE(write_credential(target, {}));
        const cfg::secret_result result = resolver.resolve_credman(target);
        CHECK(CredDeleteW(win32::widen(target).c_str(), CRED_TYPE_GENERIC, 0));
        REQUIRE_FALSE(result);
        CHECK(result.error.find(target) != std::string::npos);
        CHECK(result.error.find("empty") != std::string::npos);
    }
}

TEST_CASE("windows: a missing Credential Manager target is named, with how to store it") {
    const std::string target = unique_target("missing");
    const cfg::secret_result result = win::secret_resolver{}.resolve_credman(target);
    REQUIRE_FALSE(result);
    CHECK(result.error.find('"' + target + '"') != std::string::npos);
    CHECK(result.error.find("LocalService") != std::string::npos);
    CHECK(result.error.find("cmdkey /generic:" + target) != std::string::npos);
}

TEST_CASE("windows: environment variables are read as UTF-16 and returned as UTF-8") {
    const win::secret_resolver resolver;
    const std::string name = "AUTHSHIM_TEST_SECRET_" + std::to_string(GetCurrentProcessId());
    const std::wstring wide_name = win32::widen(name);

    SECTION("set") {
        REQUIRE(SetEnvironmentVariableW(wide_name.c_str(), win32::widen(canary_utf8).c_str()));
        const auto value = resolver.read_environment(name);
        REQUIRE(value);
        CHECK(value->expose() == canary_utf8);
    }
    SECTION("longer than the first buffer") {
        const std::string long_value(5000, 'k');
        REQUIRE(SetEnvironmentVariableW(wide_name.c_str(), win32::widen(long_value).c_str()));
        const auto value = resolver.read_environment(name);
        REQUIRE(value);
        CHECK(value->expose() == long_value);
    }
    SECTION("set to an empty value") {
        REQUIRE(SetEnvironmentVariableW(wide_name.c_str(), L""));
        const auto value = resolver.read_environment(name);
        REQUIRE(value);
        CHECK(value->empty());
        const cfg::secret_result result = cfg::resolve_secret(cfg::env_secret{name}, resolver);
        REQUIRE_FALSE(result);
        CHECK(result.error.find("is empty") != std::string::npos);
    }
    SECTION("not set") {
        SetEnvironmentVariableW(wide_name.c_str(), nullptr);
        CHECK_FALSE(resolver.read_environment(name));
        const cfg::secret_result result = cfg::resolve_secret(cfg::env_secret{name}, resolver);
        REQUIRE_FALSE(result);
        CHECK(result.error.find("is not set") != std::string::npos);
    }
    SetEnvironmentVariableW(wide_name.c_str(), nullptr);
}
