#include "service/windows/acl.hpp"

#include "service/windows/win32.hpp"

#include <aclapi.h>
#include <sddl.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
namespace win = authshim::service::windows;
namespace win32 = authshim::service::win32;

namespace {

/// Whether this process may take ownership for Administrators and rewrite DACLs at will
/// (an elevated administrator, as `authshim service install` runs).
bool elevated_administrator() {
    std::array<BYTE, SECURITY_MAX_SID_SIZE> sid{};
    auto size = static_cast<DWORD>(sid.size());
    BOOL member = FALSE;
    return CreateWellKnownSid(WinBuiltinAdministratorsSid, nullptr, sid.data(), &size) &&
           CheckTokenMembership(nullptr, sid.data(), &member) && member;
}

/// Upstream Wine keeps no file ACLs: SetNamedSecurityInfoW succeeds but changes neither the DACL
/// nor the owner (at most the Unix mode bits), and a DACL read back is made up from the Unix
/// mode (owner: full control, Everyone: the "other" bits). What Windows stores cannot be
/// checked there.
bool running_under_wine() {
    const HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    return ntdll && GetProcAddress(ntdll, "wine_get_version") != nullptr;
}

/// The local name of Everyone (S-1-1-0): "Everyone" on English systems, localized elsewhere.
std::string everyone_name() {
    std::array<BYTE, SECURITY_MAX_SID_SIZE> sid{};
    auto size = static_cast<DWORD>(sid.size());
    std::array<wchar_t, 256> name{}, domain{};
    auto name_size = static_cast<DWORD>(name.size());
    auto domain_size = static_cast<DWORD>(domain.size());
    SID_NAME_USE use{};
    if (!CreateWellKnownSid(WinWorldSid, nullptr, sid.data(), &size) ||
        !LookupAccountSidW(nullptr, sid.data(), name.data(), &name_size, domain.data(),
                           &domain_size, &use))
        return "S-1-1-0";
    return win32::narrow(name.data());
}

/// A new empty folder under the temp folder, removed at the end of the test.
struct temp_folder {
    fs::path path;
    temp_folder() {
        path = fs::temp_directory_path() /
               ("authshim-acl-test-" + std::to_string(GetCurrentProcessId()) + "-" +
                std::to_string(GetTickCount64()));
        fs::remove_all(path);
    }
    ~temp_folder() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

/// The SID in `sid`'s string form as Windows itself writes it.
std::string windows_sid_string(std::vector<std::uint8_t> sid) {
    wchar_t* text = nullptr;
    if (!ConvertSidToStringSidW(sid.data(), &text)) return "(ConvertSidToStringSidW failed)";
    std::string out = win32::narrow(text);
    LocalFree(text);
    return out;
}

/// Gives `file` a NULL DACL (everyone may do anything).
DWORD set_null_dacl(const fs::path& file) {
    std::wstring name = file.native();
    return SetNamedSecurityInfoW(name.data(), SE_FILE_OBJECT,
                                 DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                                 nullptr, nullptr, nullptr, nullptr);
}

/// Adds an "Everyone: read" ACE to `file`'s DACL.
DWORD grant_everyone_read(const fs::path& file) {
    PACL old_dacl = nullptr;
    PSECURITY_DESCRIPTOR descriptor = nullptr;
    DWORD rc = GetNamedSecurityInfoW(file.c_str(), SE_FILE_OBJECT, DACL_SECURITY_INFORMATION,
                                     nullptr, nullptr, &old_dacl, nullptr, &descriptor);
    if (rc != ERROR_SUCCESS) return rc;
    std::array<BYTE, SECURITY_MAX_SID_SIZE> everyone{};
    auto size = static_cast<DWORD>(everyone.size());
    CreateWellKnownSid(WinWorldSid, nullptr, everyone.data(), &size);
    EXPLICIT_ACCESSW entry{};
    entry.grfAccessPermissions = FILE_GENERIC_READ;
    entry.grfAccessMode = GRANT_ACCESS;
    entry.grfInheritance = NO_INHERITANCE;
    entry.Trustee.TrusteeForm = TRUSTEE_IS_SID;
    entry.Trustee.TrusteeType = TRUSTEE_IS_WELL_KNOWN_GROUP;
    entry.Trustee.ptstrName = reinterpret_cast<LPWSTR>(everyone.data());
    PACL new_dacl = nullptr;
    rc = SetEntriesInAclW(1, &entry, old_dacl, &new_dacl);
    LocalFree(descriptor);
    if (rc != ERROR_SUCCESS) return rc;
    std::wstring name = file.native();
    rc = SetNamedSecurityInfoW(name.data(), SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, nullptr,
                               nullptr, new_dacl, nullptr);
    LocalFree(new_dacl);
    return rc;
}

/// The folder's DACL as (SID string, mask, flags) plus whether it is protected.
struct dacl_view {
    bool is_protected = false;
    struct entry {
        std::string sid;
        DWORD mask;
        BYTE flags;
    };
    std::vector<entry> entries;
};

dacl_view read_dacl(const fs::path& path) {
    dacl_view view;
    PACL dacl = nullptr;
    PSECURITY_DESCRIPTOR descriptor = nullptr;
    if (GetNamedSecurityInfoW(path.c_str(), SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, nullptr,
                              nullptr, &dacl, nullptr, &descriptor) != ERROR_SUCCESS)
        return view;
    SECURITY_DESCRIPTOR_CONTROL control = 0;
    DWORD revision = 0;
    GetSecurityDescriptorControl(descriptor, &control, &revision);
    view.is_protected = (control & SE_DACL_PROTECTED) != 0;
    for (DWORD i = 0; dacl && i < dacl->AceCount; ++i) {
        void* raw = nullptr;
        if (!GetAce(dacl, i, &raw)) continue;
        auto* ace = static_cast<ACCESS_ALLOWED_ACE*>(raw);
        if (ace->Header.AceType != ACCESS_ALLOWED_ACE_TYPE) continue;
        auto* sid = static_cast<BYTE*>(static_cast<void*>(&ace->SidStart));
        view.entries.push_back(
            {windows_sid_string({sid, sid + GetLengthSid(sid)}), ace->Mask, ace->Header.AceFlags});
    }
    LocalFree(descriptor);
    return view;
}

/// Checks that `folder` has restrict_folder's DACL, with `service_mask` for the service SID.
void check_restricted_dacl(const fs::path& folder, DWORD service_mask) {
    const std::string admins = "S-1-5-32-544";
    const std::string system = "S-1-5-18";
    const std::string service = win::sid_to_string(win::service_sid(L"authshim"));
    const dacl_view view = read_dacl(folder);
    CHECK(view.is_protected);
    REQUIRE(view.entries.size() == 3);
    for (const auto& entry : view.entries) {
        INFO(entry.sid << " mask " << entry.mask << " flags " << int{entry.flags});
        CHECK((entry.flags & (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE)) ==
              (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE));
        if (entry.sid == service)
            CHECK(entry.mask == service_mask);
        else
            CHECK(((entry.sid == admins || entry.sid == system) && entry.mask == FILE_ALL_ACCESS));
    }
}

} // namespace

/// The file's owner counts as a reader unless it is Administrators or SYSTEM. An elevated
/// admin's files are owned by Administrators on Windows: nothing more than Everyone is reported.
/// Under Wine the owner is the Unix user's account (S-1-5-21-0-0-0-1000): reported as the owner.
void check_owner_entry(const std::vector<std::string>& readers) {
    const auto owners = std::count_if(readers.begin(), readers.end(), [](const std::string& r) {
        return r.find("(the file's owner") != std::string::npos;
    });
    if (running_under_wine()) {
        CHECK(owners == 1);
        CHECK(readers.size() == 2);
    } else {
        CHECK(owners == 0);
        CHECK(readers.size() == 1);
    }
}

TEST_CASE("windows: service_sid matches the SIDs Windows documents") {
    // NT SERVICE\TrustedInstaller, as shown on every Windows system file.
    const std::string trusted_installer =
        "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464";
    CHECK(win::sid_to_string(win::service_sid(L"TrustedInstaller")) == trusted_installer);
    // Windows upper-cases the name first.
    CHECK(win::sid_to_string(win::service_sid(L"trustedinstaller")) == trusted_installer);
    CHECK(win::sid_to_string(win::service_sid(L"TRUSTEDINSTALLER")) == trusted_installer);
    CHECK(win::service_sid(L"authshim") == win::service_sid(L"AuthShim"));

    const auto authshim = win::service_sid(L"authshim");
    REQUIRE(authshim.size() == 32);
    CHECK(IsValidSid(const_cast<std::uint8_t*>(authshim.data())));
    // Our formatting agrees with the system's.
    CHECK(win::sid_to_string(authshim) == windows_sid_string(authshim));
    CHECK(win::sid_to_string(authshim).rfind("S-1-5-80-", 0) == 0);
}

TEST_CASE("windows: sid_to_string formats well-known SIDs and rejects malformed ones") {
    CHECK(win::sid_to_string({1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0}) ==
          "S-1-5-32-544");
    CHECK(win::sid_to_string({1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0}) == "S-1-5-18");
    CHECK(win::sid_to_string({1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}) == "S-1-1-0");
    CHECK(win::sid_to_string({}).empty());
    CHECK(win::sid_to_string({1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0}).empty()); // too short
    CHECK(win::sid_to_string({2, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0}).empty()); // revision
}

TEST_CASE("windows: restrict_folder leaves a file readable only by admins, SYSTEM and the "
          "service") {
    if (!elevated_administrator()) {
        WARN("skipped: needs an elevated administrator (as `authshim service install` is)");
        return;
    }
    temp_folder folder;
    const fs::path config = folder.path / "config";
    // Created with its parents when missing.
    REQUIRE_FALSE(win::restrict_folder(config, win::folder_use::config));
    REQUIRE(fs::is_directory(config));

    // No `return` inside a SECTION: Catch2 would never reach (and run) the sections after it.
    SECTION("the folder's DACL") {
        if (running_under_wine())
            WARN("skipped under Wine: it stores no file ACLs (see running_under_wine)");
        else
            check_restricted_dacl(config, FILE_GENERIC_READ | FILE_GENERIC_EXECUTE);
    }
    SECTION("the logs variant lets the service modify") {
        const fs::path logs = folder.path / "logs";
        REQUIRE_FALSE(win::restrict_folder(logs, win::folder_use::logs));
        REQUIRE(fs::is_directory(logs));
        if (running_under_wine())
            WARN("skipped under Wine: it stores no file ACLs (see running_under_wine)");
        else
            check_restricted_dacl(logs, FILE_GENERIC_READ | FILE_GENERIC_WRITE |
                                            FILE_GENERIC_EXECUTE | DELETE);
    }
    SECTION("a file inside inherits it; an Everyone ACE is then reported") {
        const fs::path file = config / "authshim.json";
        std::ofstream(file) << "{}\n";
        REQUIRE(fs::exists(file));

        std::string error;
        const auto before = win::readers_besides_admins(file, error);
        CHECK(error.empty());
        if (running_under_wine())
            WARN("not checked under Wine (it stores no file ACLs): no other readers after "
                 "restrict_folder; Wine reports the Unix mode's 'other' bits as Everyone");
        else
            CHECK(before.empty());

        REQUIRE(grant_everyone_read(file) == ERROR_SUCCESS);
        const auto readers = win::readers_besides_admins(file, error);
        CHECK(error.empty());
        CHECK(std::count(readers.begin(), readers.end(), everyone_name()) == 1);
        check_owner_entry(readers);
    }
    SECTION("a NULL DACL is reported as Everyone") {
        const fs::path file = config / "open.json";
        std::ofstream(file) << "{}\n";
        REQUIRE(set_null_dacl(file) == ERROR_SUCCESS);
        std::string error;
        const auto readers = win::readers_besides_admins(file, error);
        CHECK(error.empty());
        REQUIRE(!readers.empty());
        // Windows keeps the NULL DACL; Wine reads back a DACL made from the mode (0777 now).
        if (running_under_wine()) {
            CHECK(std::count(readers.begin(), readers.end(), everyone_name()) == 1);
            check_owner_entry(readers);
        } else {
            CHECK(readers[0] == "Everyone (no DACL)");
        }
    }
}

TEST_CASE("windows: readers_besides_admins reports an ACL it cannot read") {
    std::string error;
    const auto readers =
        win::readers_besides_admins(fs::temp_directory_path() / "authshim-no-such-file", error);
    CHECK(readers.empty());
    CHECK(error.find("authshim-no-such-file") != std::string::npos);
}
