#pragma once
/// Folder ACLs for authshim's config and log folders, the service SID (NT SERVICE\authshim), and
/// the check "who besides the administrators can read this file". Windows only. SIDs are plain
/// byte vectors owned by the caller. Thread safety: free functions without shared state.

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace authshim::service::windows {

/// The SID of NT SERVICE\<name>, computed as Windows does: S-1-5-80 followed by the five 32-bit
/// little-endian words of SHA-1 over the upper-case UTF-16LE service name (SHA-1 from CNG). It
/// exists before the service does and needs no lookup (works under Wine). Empty only when CNG
/// fails.
std::vector<std::uint8_t> service_sid(std::wstring_view service_name);

/// "S-1-5-80-...": the string form of a binary SID; empty when `sid` is not a well-formed SID.
std::string sid_to_string(const std::vector<std::uint8_t>& sid);

/// What NT SERVICE\authshim may do in a folder: `config`: read and execute (the service reads
/// its configuration, never writes it); `logs`: modify (create, write, rotate, delete logs).
enum class folder_use { config, logs };

/// Replaces `folder`'s DACL with a protected one (nothing inherited from above), inherited by
/// files and subfolders: Administrators and SYSTEM full control, NT SERVICE\authshim as `use`
/// says; Administrators become its owner. What is already directly in it gets Administrators as
/// owner and inherits only that DACL (its own ACEs are dropped). Creates the folder (and its
/// parents) if missing. Refuses a folder that is a junction or symbolic link, and leaves such
/// entries in it alone (reported). Returns an error text, or nothing.
std::optional<std::string> restrict_folder(const std::filesystem::path& folder, folder_use use);

/// Whether `path` is a junction, symbolic link or other reparse point (false when it does not
/// exist).
bool is_reparse_point(const std::filesystem::path& path);

/// Deletes `folder` and everything in it without following junctions or symbolic links: a link
/// is removed itself, never what it points to (std::filesystem::remove_all in mingw's
/// libstdc++ follows them). Counts what it removed in `removed`. Nothing to do when `folder`
/// does not exist. Returns an error text (stopping at the first failure), or nothing.
std::optional<std::string> remove_tree(const std::filesystem::path& folder, std::size_t& removed);

/// restrict_folder, then the folder's ACL read back: an error text when restricting failed or
/// when accounts other than Administrators, SYSTEM and NT SERVICE\authshim can still read it
/// (Wine, for one, accepts the ACL and stores none).
std::optional<std::string> restrict_folder_checked(const std::filesystem::path& folder,
                                                   folder_use use);

/// For `service install` and `credentials set`: restricts the folder of `config_file` for
/// folder_use::config when it is authshim's own (win32::is_authshim_folder), else leaves its ACL
/// alone. Says what it did on `out`, or a "warning: ..." line on `err`; false when it warned.
bool protect_config_folder(const std::filesystem::path& config_file, std::ostream& out,
                           std::ostream& err);

/// The accounts whose allow ACEs in `file`'s DACL grant reading it (FILE_READ_DATA,
/// GENERIC_READ or GENERIC_ALL; inherit-only ACEs do not count), leaving out Administrators,
/// SYSTEM, NT SERVICE\authshim, NT SERVICE\TrustedInstaller and the file's owner (and CREATOR
/// OWNER / OWNER RIGHTS, which stand for it). Each as "DOMAIN\name" (or "name" for a name
/// without domain, such as "Everyone"), or the SID string when the name cannot be looked up;
/// a NULL DACL gives "Everyone (no DACL)". Deny ACEs are not subtracted (the answer errs on the
/// side of reporting). Sets `error` (and returns nothing) when the ACL cannot be read.
std::vector<std::string> readers_besides_admins(const std::filesystem::path& file,
                                                std::string& error);

} // namespace authshim::service::windows
