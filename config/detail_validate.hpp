#pragma once
/// Private to config/: the walk over a parsed JSON document that fills a `config` and collects
/// every problem. Only config/*.cpp include this (it exposes nlohmann-json).

#include "config/config.hpp"
#include "config/loader.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace authshim::config::detail {

using json = nlohmann::json;

/// Where the text came from and what was found so far. One per load; not shared.
struct context {
    std::string origin;             ///< file name (or caller's label) used in `where`
    std::filesystem::path base_dir; ///< relative paths are resolved against it
    std::vector<diagnostic> errors;
    std::vector<diagnostic> warnings;

    /// Records an error at a JSON pointer (`""` is the top level).
    void error(const std::string& pointer, std::string what);
    void warning(const std::string& pointer, std::string what);
};

/// `pointer` extended by an object key (escaped per RFC 6901) or an array index.
std::string child(const std::string& pointer, std::string_view key);
std::string child(const std::string& pointer, std::size_t index);

/// A short, safe rendering of a JSON value for messages: strings quoted (and cut when long),
/// numbers and literals as written, containers as "an array" / "an object".
std::string describe(const json& value);

/// What kind of value it is, never its content ("a string", "a number", "an object", ...): for
/// values that may be secrets.
std::string describe_type(const json& value);

/// The closest of `candidates` to `word` when it is a near miss, else empty.
std::string suggest(std::string_view word, std::initializer_list<std::string_view> candidates);

/// Reports `expected <expected>, got <value>` unless `value` is an object.
bool expect_object(context& ctx, const json& value, const std::string& pointer,
                   std::string_view expected);

/// Reports every key of `object` not in `known`, with a suggestion for near misses.
void check_keys(context& ctx, const json& object, const std::string& pointer,
                std::initializer_list<std::string_view> known);

/// An integer within [min, max]; anything else (fractions, strings, booleans) is reported.
std::optional<std::uint64_t> get_integer(context& ctx, const json& value,
                                         const std::string& pointer, std::uint64_t min,
                                         std::uint64_t max);

/// A duration string within [min, max]. `expected` starts the message for anything else, e.g.
/// `expected a duration such as "15s"`.
std::optional<std::chrono::milliseconds>
get_duration(context& ctx, const json& value, const std::string& pointer, std::string_view expected,
             std::chrono::milliseconds min, std::chrono::milliseconds max);

/// A file path (non-empty, no NUL, not ending in a separator), made absolute against
/// `ctx.base_dir` and normalised. `expected` starts the message for anything else.
std::optional<std::filesystem::path>
get_path(context& ctx, const json& value, const std::string& pointer, std::string_view expected);

/// Reports `<name> is not supported by this version of authshim yet` plus `hint`.
void not_supported(context& ctx, const std::string& pointer, std::string_view name,
                   std::string_view hint = {});

/// Paths to and from UTF-8 text, the same on every platform (JSON text is UTF-8; a plain
/// `path(std::string)` would use the ANSI code page on Windows).
std::filesystem::path utf8_path(const std::string& text);
std::string utf8_string(const std::filesystem::path& path);

/// The parts of the document, each filling its part of `out`. `listen` needs `access` first
/// (the non-loopback rule) and `upstreams` the names of the credentials, so
/// `validate_document` orders them.
void load_upstreams(context& ctx, const json* value, const std::string& pointer,
                    const std::set<std::string>& credential_names, std::vector<upstream>& out);
void load_credentials(context& ctx, const json* value, const std::string& pointer,
                      std::map<std::string, credential>& out);
void load_lockout(context& ctx, const json* value, const std::string& pointer, lockout_policy& out);
void load_access(context& ctx, const json* value, const std::string& pointer, access_policy& out);
void load_timeouts(context& ctx, const json* value, const std::string& pointer, timeouts& out);
void load_limits(context& ctx, const json* value, const std::string& pointer, limits& out);
/// `log`, with `log.access` (which must not name the same file as `log.file`).
void load_log(context& ctx, const json* value, const std::string& pointer, logging& out);

/// A secret source object (`{"env": ...}`, `{"file": ...}`, `{"plain": ...}`, `{"dpapi": ...}`,
/// `{"credman": ...}`, exactly one key). A plain source adds a warning. Messages never quote a
/// secret or a DPAPI blob; `noun` ("password", "token") is what they call the secret.
std::optional<secret_ref> load_secret_ref(context& ctx, const json& value,
                                          const std::string& pointer, std::string_view noun);

/// Strict standard base64 (`+/`, padding optional but exact, no whitespace); nothing when
/// `text` is not valid.
std::optional<std::vector<std::uint8_t>> decode_base64(std::string_view text);

/// Fills `out` from the whole document.
void validate_document(context& ctx, const json& document, config& out);

} // namespace authshim::config::detail
