#pragma once
/// Edits a configuration text in place (a byte splice, not a JSON round trip), so comments, key
/// order, whitespace, line endings and a byte-order mark survive. Pure functions on strings the
/// caller owns; no I/O, no shared state, safe from any thread.

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

namespace authshim::config {

/// The outcome of an edit: the new text, or why the text could not be edited (line:col given).
struct edit_result {
    std::optional<std::string> text; ///< the whole edited document; unset on error
    std::string error;               ///< `line:col: what` (no position for a bad argument)
};

/// Sets credentials.<name> in the JSON(-with-comments) document `text` to
/// {"username": <username>, "password": {"dpapi": <dpapi_base64>}}.
///
/// Only one span changes; every other byte is kept:
/// - The entry exists: its value is replaced, on one line when the old value was on one line,
///   else as a block indented like the entry's key.
/// - `credentials` exists without the entry: a member is added after the last one (a comma
///   right after that member's value; the new member goes after any comment on the rest of that
///   member's line, so such a comment stays with its member, and before comments on following
///   lines), indented like it. An object written on one line gets the member on that line. An
///   empty object gets it one level deeper than the line of its `{` (or on that line when the
///   whole document is one line); spaces and tabs before its `}` are the only bytes dropped.
/// - No `credentials`: it is added, the same way, as the last member of the top-level object.
/// Added lines use the document's line ending (CRLF when it contains "\r\n") and its indent unit
/// (taken from the siblings, else from the first indented line, else four spaces). Strings are
/// escaped as JSON (quote, backslash, control characters); other UTF-8 is written as is.
///
/// Refused, with `line:col` in the document: invalid JSON (the parser's message), a top-level
/// value or `credentials` that is not an object, a key that appears twice in the top-level
/// object or in `credentials` (the loader refuses duplicates). Refused without a position: an
/// empty name or user name, a name or user name that is not UTF-8, a blob that is not base64.
/// Control characters in the name or user name are escaped, not refused (the loader refuses
/// them, so callers should check first). No error text ever contains `dpapi_base64` or any
/// string value of the document.
edit_result set_dpapi_credential(std::string_view text, std::string_view name,
                                 std::string_view username, std::string_view dpapi_base64);

/// `text` as a JSON string literal (quote, backslash and control characters escaped, other
/// UTF-8 as is), for set_value's `value_json`; nothing when `text` is not UTF-8.
std::optional<std::string> json_quote(std::string_view text);

/// One step of a path into a document: an object member by key, or an array element by index.
using path_step = std::variant<std::string, std::size_t>;

/// Sets the value at `path` (at least one step; the first a key of the top-level object) in the
/// JSON(-with-comments) document `text` to `value_json`, a JSON text inserted as given (the
/// caller renders it, on one line).
///
/// Only one span changes, by the rules of set_dpapi_credential: an existing value is replaced
/// in place; a missing member is added as the last member of its object, and objects missing
/// along the path are created with it (`{"winhttp": {"bypass": ...}}`).
///
/// Refused, with `line:col`: invalid JSON, a step into a value of another type than the step
/// needs (a key into a non-object, an index into a non-array), an index past the end of its
/// array (arrays are never extended), a duplicate key in an object on the path. Error texts
/// name the path and value types, never a string value of the document.
edit_result set_value(std::string_view text, std::span<const path_step> path,
                      std::string_view value_json);

} // namespace authshim::config
