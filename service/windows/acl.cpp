// Service SIDs, folder DACLs and the "who else can read this" check, with the Win32 security API.
#include "service/windows/acl.hpp"

#include "service/windows/win32.hpp"

#include <aclapi.h>
#include <bcrypt.h>

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <ostream>
#include <string>
#include <system_error>

namespace authshim::service::windows {
namespace {

constexpr std::wstring_view authshim_service = L"authshim";

/// A well-known SID (Administrators, SYSTEM, ...) in a buffer of the largest SID size.
struct well_known_sid {
    std::array<BYTE, SECURITY_MAX_SID_SIZE> bytes{};
    bool ok = false;

    explicit well_known_sid(WELL_KNOWN_SID_TYPE type) {
        auto size = static_cast<DWORD>(bytes.size());
        ok = CreateWellKnownSid(type, nullptr, bytes.data(), &size) != FALSE;
    }
    PSID get() noexcept { return bytes.data(); }
};

/// Windows upper-cases the service name (RtlUpcaseUnicodeString) before hashing it; the
/// invariant locale's mapping is the same, without depending on the user's locale.
std::wstring upper_case(std::wstring_view text) {
    if (text.empty()) return {};
    std::wstring out(text.size(), L'\0');
    const int n = LCMapStringEx(LOCALE_NAME_INVARIANT, LCMAP_UPPERCASE, text.data(),
                                static_cast<int>(text.size()), out.data(),
                                static_cast<int>(out.size()), nullptr, nullptr, 0);
    if (n <= 0) {
        // Cannot happen for valid input; ASCII is what service names are made of anyway.
        out.assign(text);
        for (auto& c : out)
            if (c >= L'a' && c <= L'z') c = static_cast<wchar_t>(c - L'a' + L'A');
        return out;
    }
    out.resize(static_cast<std::size_t>(n));
    return out;
}

/// Whether the bytes of `sid` equal the SID at `other`.
bool same_sid(const std::vector<std::uint8_t>& sid, PSID other) {
    if (sid.empty() || !other || !IsValidSid(other)) return false;
    return GetLengthSid(other) == sid.size() &&
           std::equal(sid.begin(), sid.end(), static_cast<const BYTE*>(other));
}

std::vector<std::uint8_t> sid_bytes(PSID sid) {
    if (!sid || !IsValidSid(sid)) return {};
    const auto* begin = static_cast<const std::uint8_t*>(sid);
    return {begin, begin + GetLengthSid(sid)};
}

/// "DOMAIN\name", "name" when there is no domain (Everyone), else the SID string.
std::string account_name(PSID sid) {
    std::vector<wchar_t> name(256), domain(256);
    for (int attempt = 0; attempt < 2; ++attempt) {
        auto name_size = static_cast<DWORD>(name.size());
        auto domain_size = static_cast<DWORD>(domain.size());
        SID_NAME_USE use{};
        if (LookupAccountSidW(nullptr, sid, name.data(), &name_size, domain.data(), &domain_size,
                              &use)) {
            const std::string account = win32::narrow(name.data());
            const std::string where = win32::narrow(domain.data());
            return where.empty() ? account : where + "\\" + account;
        }
        if (GetLastError() != ERROR_INSUFFICIENT_BUFFER) break;
        name.resize(std::max<std::size_t>(name_size, name.size()) + 1);
        domain.resize(std::max<std::size_t>(domain_size, domain.size()) + 1);
    }
    return sid_to_string(sid_bytes(sid));
}

std::string path_text(const std::filesystem::path& path) {
    return "\"" + win32::narrow(path.native()) + "\"";
}

} // namespace

std::vector<std::uint8_t> service_sid(std::wstring_view service_name) {
    std::wstring upper = upper_case(service_name);

    BCRYPT_ALG_HANDLE sha1 = nullptr;
    if (!BCRYPT_SUCCESS(BCryptOpenAlgorithmProvider(&sha1, BCRYPT_SHA1_ALGORITHM, nullptr, 0)))
        return {};
    std::array<UCHAR, 20> digest{};
    const NTSTATUS status = BCryptHash(sha1, nullptr, 0, reinterpret_cast<PUCHAR>(upper.data()),
                                       static_cast<ULONG>(upper.size() * sizeof(wchar_t)),
                                       digest.data(), static_cast<ULONG>(digest.size()));
    BCryptCloseAlgorithmProvider(sha1, 0);
    if (!BCRYPT_SUCCESS(status)) return {};

    // Revision 1, six sub-authorities, authority 5 (NT AUTHORITY), then 80
    // (SECURITY_SERVICE_ID_BASE_RID) and the digest: sub-authorities are stored as little-endian
    // 32-bit words, which is exactly how Windows reads the digest, so its bytes go in as they are.
    std::vector<std::uint8_t> sid{1, 6, 0, 0, 0, 0, 0, 5, 80, 0, 0, 0};
    sid.insert(sid.end(), digest.begin(), digest.end());
    return sid;
}

std::string sid_to_string(const std::vector<std::uint8_t>& sid) {
    if (sid.size() < 8 || sid[0] != 1) return {};
    const std::size_t count = sid[1];
    if (count > SID_MAX_SUB_AUTHORITIES || sid.size() != 8 + 4 * count) return {};

    std::uint64_t authority = 0;
    for (std::size_t i = 2; i < 8; ++i)
        authority = (authority << 8) | sid[i];
    std::array<char, 32> number{};
    // Windows writes authorities of 2^32 and above in hex.
    if (authority >= (std::uint64_t{1} << 32))
        std::snprintf(number.data(), number.size(), "0x%012" PRIX64, authority);
    else
        std::snprintf(number.data(), number.size(), "%" PRIu64, authority);

    std::string text = "S-1-";
    text += number.data();
    for (std::size_t i = 0; i < count; ++i) {
        const std::size_t at = 8 + 4 * i;
        const std::uint32_t word = std::uint32_t{sid[at]} | (std::uint32_t{sid[at + 1]} << 8) |
                                   (std::uint32_t{sid[at + 2]} << 16) |
                                   (std::uint32_t{sid[at + 3]} << 24);
        text += "-" + std::to_string(word);
    }
    return text;
}

std::optional<std::string> restrict_folder(const std::filesystem::path& folder, folder_use use) {
    const std::string head = "cannot restrict access to the folder " + path_text(folder) + ": ";

    std::error_code ec;
    std::filesystem::create_directories(folder, ec);
    if (ec) return head + "creating it failed: " + ec.message();
    // A junction or symbolic link (someone could create one before the install) would make
    // the ACL below land on its target.
    if (is_reparse_point(folder))
        return head + "it is a junction or symbolic link, not a folder; remove it (as an "
                      "administrator) and install again";

    well_known_sid administrators(WinBuiltinAdministratorsSid);
    well_known_sid system(WinLocalSystemSid);
    std::vector<std::uint8_t> service = service_sid(authshim_service);
    if (!administrators.ok || !system.ok)
        return head + "CreateWellKnownSid failed: " + win32::last_error_text();
    if (service.empty()) return head + "the SID of NT SERVICE\\authshim could not be computed";

    constexpr DWORD full_control = FILE_ALL_ACCESS;
    constexpr DWORD read_execute = FILE_GENERIC_READ | FILE_GENERIC_EXECUTE;
    // "Modify" in the Explorer dialog: read, write, execute, delete.
    constexpr DWORD modify = FILE_GENERIC_READ | FILE_GENERIC_WRITE | FILE_GENERIC_EXECUTE | DELETE;

    std::array<EXPLICIT_ACCESSW, 3> entries{};
    const std::array<std::pair<PSID, DWORD>, 3> grants{{
        {administrators.get(), full_control},
        {system.get(), full_control},
        {service.data(), use == folder_use::config ? read_execute : modify},
    }};
    for (std::size_t i = 0; i < entries.size(); ++i) {
        entries[i].grfAccessPermissions = grants[i].second;
        entries[i].grfAccessMode = SET_ACCESS;
        entries[i].grfInheritance = SUB_CONTAINERS_AND_OBJECTS_INHERIT;
        entries[i].Trustee.TrusteeForm = TRUSTEE_IS_SID;
        entries[i].Trustee.TrusteeType = TRUSTEE_IS_WELL_KNOWN_GROUP;
        entries[i].Trustee.ptstrName = static_cast<LPWSTR>(grants[i].first);
    }

    PACL acl = nullptr;
    const DWORD built =
        SetEntriesInAclW(static_cast<ULONG>(entries.size()), entries.data(), nullptr, &acl);
    if (built != ERROR_SUCCESS)
        return head + "building the ACL failed (SetEntriesInAclW): " + win32::error_text(built);

    // Protected: nothing is inherited from %ProgramData% (where Users may read and create).
    // The owner becomes Administrators too: whoever created the folder first (a user could
    // create it before the install) would otherwise keep the owner's right to rewrite the DACL.
    std::wstring name = folder.native();
    const DWORD set = SetNamedSecurityInfoW(name.data(), SE_FILE_OBJECT,
                                            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION |
                                                PROTECTED_DACL_SECURITY_INFORMATION,
                                            administrators.get(), nullptr, acl, nullptr);
    LocalFree(acl);
    if (set != ERROR_SUCCESS)
        return head + "SetNamedSecurityInfoW failed (run as an administrator, elevated): " +
               win32::error_text(set);

    // What is already in the folder (a config file a user wrote before the install, say) gets
    // Administrators as owner and no ACEs of its own, inheriting only the folder's.
    ACL empty{};
    if (!InitializeAcl(&empty, sizeof empty, ACL_REVISION))
        return head + "InitializeAcl failed: " + win32::last_error_text();
    std::vector<std::string> problems;
    for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
        const std::filesystem::path child = entry.path();
        if (is_reparse_point(child)) {
            problems.push_back(path_text(child) + " is a junction or symbolic link; remove it");
            continue;
        }
        std::wstring child_name = child.native();
        const DWORD reset =
            SetNamedSecurityInfoW(child_name.data(), SE_FILE_OBJECT,
                                  OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION |
                                      UNPROTECTED_DACL_SECURITY_INFORMATION,
                                  administrators.get(), nullptr, &empty, nullptr);
        if (reset != ERROR_SUCCESS)
            problems.push_back("cannot reset the owner and ACL of " + path_text(child) + ": " +
                               win32::error_text(reset));
    }
    if (ec) problems.push_back("cannot list it: " + ec.message());
    if (!problems.empty()) {
        std::string all = head;
        for (std::size_t i = 0; i < problems.size(); ++i)
            all += (i ? "; " : "") + problems[i];
        return all;
    }
    return std::nullopt;
}

bool is_reparse_point(const std::filesystem::path& path) {
    const DWORD attributes = GetFileAttributesW(path.c_str());
    return attributes != INVALID_FILE_ATTRIBUTES &&
           (attributes & FILE_ATTRIBUTE_REPARSE_POINT) != 0;
}

std::optional<std::string> remove_tree(const std::filesystem::path& folder, std::size_t& removed) {
    const DWORD attributes = GetFileAttributesW(folder.c_str());
    if (attributes == INVALID_FILE_ATTRIBUTES) {
        const DWORD error = GetLastError();
        if (error == ERROR_FILE_NOT_FOUND || error == ERROR_PATH_NOT_FOUND) return std::nullopt;
        return "cannot read " + path_text(folder) + ": " + win32::error_text(error);
    }
    auto remove_one = [&removed](const std::filesystem::path& path,
                                 DWORD attrs) -> std::optional<std::string> {
        if (attrs & FILE_ATTRIBUTE_READONLY)
            SetFileAttributesW(path.c_str(), attrs & ~DWORD{FILE_ATTRIBUTE_READONLY});
        const bool ok = (attrs & FILE_ATTRIBUTE_DIRECTORY) ? RemoveDirectoryW(path.c_str())
                                                           : DeleteFileW(path.c_str());
        if (!ok) return "cannot remove " + path_text(path) + ": " + win32::last_error_text();
        ++removed;
        return std::nullopt;
    };
    // A link is removed itself; what it points to is never entered.
    if ((attributes & FILE_ATTRIBUTE_REPARSE_POINT) || !(attributes & FILE_ATTRIBUTE_DIRECTORY))
        return remove_one(folder, attributes);

    WIN32_FIND_DATAW found{};
    const std::wstring pattern = (folder / L"*").native();
    HANDLE search = FindFirstFileExW(pattern.c_str(), FindExInfoBasic, &found,
                                     FindExSearchNameMatch, nullptr, 0);
    if (search == INVALID_HANDLE_VALUE) {
        if (GetLastError() != ERROR_FILE_NOT_FOUND)
            return "cannot list " + path_text(folder) + ": " + win32::last_error_text();
    } else {
        std::optional<std::string> problem;
        do {
            const std::wstring_view name = found.cFileName;
            if (name == L"." || name == L"..") continue;
            problem = remove_tree(folder / found.cFileName, removed);
        } while (!problem && FindNextFileW(search, &found));
        FindClose(search);
        if (problem) return problem;
    }
    return remove_one(folder, attributes);
}

std::vector<std::string> readers_besides_admins(const std::filesystem::path& file,
                                                std::string& error) {
    PSID owner = nullptr;
    PACL dacl = nullptr;
    PSECURITY_DESCRIPTOR descriptor = nullptr;
    const DWORD got = GetNamedSecurityInfoW(file.c_str(), SE_FILE_OBJECT,
                                            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                                            &owner, nullptr, &dacl, nullptr, &descriptor);
    if (got != ERROR_SUCCESS) {
        error = "cannot read the access control list of " + path_text(file) + ": " +
                win32::error_text(got);
        return {};
    }
    struct free_descriptor {
        PSECURITY_DESCRIPTOR d;
        ~free_descriptor() { LocalFree(d); }
    } guard{descriptor};

    if (!dacl) return {"Everyone (no DACL)"};

    well_known_sid administrators(WinBuiltinAdministratorsSid);
    well_known_sid system(WinLocalSystemSid);
    well_known_sid creator_owner(WinCreatorOwnerSid);
    well_known_sid owner_rights(WinCreatorOwnerRightsSid);
    const std::vector<std::uint8_t> service = service_sid(authshim_service);
    const std::vector<std::uint8_t> trusted_installer = service_sid(L"TrustedInstaller");
    const std::vector<std::uint8_t> owner_sid = sid_bytes(owner);
    auto admin_or_system = [&](PSID sid) {
        return (administrators.ok && EqualSid(sid, administrators.get())) ||
               (system.ok && EqualSid(sid, system.get()));
    };
    // The owner (and the CREATOR OWNER / OWNER RIGHTS entries that stand for it) is trusted only
    // when it is Administrators or SYSTEM: an ordinary user who owns the file can read it and
    // rewrite its DACL whatever the DACL says.
    const bool owner_trusted = owner && admin_or_system(owner);
    auto trusted = [&](PSID sid) {
        return admin_or_system(sid) || same_sid(service, sid) || same_sid(trusted_installer, sid) ||
               (owner_trusted && ((creator_owner.ok && EqualSid(sid, creator_owner.get())) ||
                                  (owner_rights.ok && EqualSid(sid, owner_rights.get())) ||
                                  same_sid(owner_sid, sid)));
    };

    constexpr DWORD read_rights = FILE_READ_DATA | GENERIC_READ | GENERIC_ALL;
    const std::string owner_note = " (the file's owner, who may change its ACL)";
    std::vector<std::string> readers;
    for (DWORD i = 0; i < dacl->AceCount; ++i) {
        void* raw = nullptr;
        if (!GetAce(dacl, i, &raw)) continue;
        const auto* header = static_cast<const ACE_HEADER*>(raw);
        // The plain and the conditional (callback) allow ACE share this layout.
        if (header->AceType != ACCESS_ALLOWED_ACE_TYPE &&
            header->AceType != ACCESS_ALLOWED_CALLBACK_ACE_TYPE)
            continue;
        if (header->AceFlags & INHERIT_ONLY_ACE) continue; // applies to children only
        auto* ace = static_cast<ACCESS_ALLOWED_ACE*>(raw);
        if ((ace->Mask & read_rights) == 0) continue;
        PSID sid = &ace->SidStart;
        if (!IsValidSid(sid) || trusted(sid)) continue;
        std::string name = account_name(sid);
        if (same_sid(owner_sid, sid)) name += owner_note;
        if (std::find(readers.begin(), readers.end(), name) == readers.end())
            readers.push_back(std::move(name));
    }
    if (owner && !owner_trusted && IsValidSid(owner)) {
        const std::string name = account_name(owner) + owner_note;
        if (std::find(readers.begin(), readers.end(), name) == readers.end())
            readers.push_back(name);
    }
    return readers;
}

std::optional<std::string> restrict_folder_checked(const std::filesystem::path& folder,
                                                   folder_use use) {
    if (auto problem = restrict_folder(folder, use)) return problem;
    std::string error;
    const auto readers = readers_besides_admins(folder, error);
    if (!error.empty())
        return "restricted " + path_text(folder) + ", but cannot read its ACL back: " + error;
    if (readers.empty()) return std::nullopt;
    std::string names;
    for (const auto& r : readers)
        names += (names.empty() ? "" : ", ") + r;
    return "the ACL of " + path_text(folder) + " did not read back as set: " + names +
           " can still read it (Wine stores no file ACLs; on Windows check with icacls)";
}

bool protect_config_folder(const std::filesystem::path& config_file, std::ostream& out,
                           std::ostream& err) {
    const std::filesystem::path folder = config_file.parent_path();
    if (!win32::is_authshim_folder(folder)) {
        err << "warning: left the ACL of " << path_text(folder)
            << " alone (not authshim's own folder): make sure only Administrators, SYSTEM and "
               "NT SERVICE\\authshim can read "
            << path_text(config_file) << ", or keep it in " << path_text(win32::data_dir()) << "\n";
        return false;
    }
    if (auto problem = restrict_folder_checked(folder, folder_use::config)) {
        err << "warning: " << *problem << "\n";
        return false;
    }
    out << "restricted " << path_text(folder)
        << " to Administrators, SYSTEM and NT SERVICE\\authshim (read)\n";
    return true;
}

} // namespace authshim::service::windows
