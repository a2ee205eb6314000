// Setting one credential in a configuration text by splicing bytes. nlohmann-json only checks the
// syntax first (through SAX, so no document holding plain passwords is built); a small scanner
// then finds the byte spans of the top-level object, `credentials` and its entries.
#include "config/config_edit.hpp"

#include "config/detail_validate.hpp"
#include "config/secret.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace authshim::config {
namespace {

using detail::json;

constexpr std::string_view byte_order_mark = "\xEF\xBB\xBF";
constexpr std::size_t npos = std::string_view::npos;

/// `line:column` (both from 1; the column counts UTF-8 characters, as the loader does) of byte
/// `offset`.
std::string position(std::string_view text, std::size_t offset) {
    offset = std::min(offset, text.size());
    std::size_t line = 1;
    std::size_t column = 1;
    const bool bom = text.starts_with(byte_order_mark);
    for (std::size_t i = 0; i < offset; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '\n') {
            ++line;
            column = 1;
        } else if ((c & 0xc0) != 0x80 && !(bom && i < byte_order_mark.size())) {
            ++column; // continuation bytes and a leading byte-order mark take no column
        }
    }
    return std::to_string(line) + ':' + std::to_string(column);
}

/// Checks the syntax without building a document. String values are wiped as they pass: the
/// text may hold plain passwords of other credentials.
class syntax_check final : public nlohmann::json_sax<json> {
public:
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t& value) override {
        wipe(value);
        return true;
    }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override { return true; }
    bool key(string_t&) override { return true; }
    bool end_object() override { return true; }
    bool start_array(std::size_t) override { return true; }
    bool end_array() override { return true; }
    /// Keeps nlohmann's message without its head (the position is given separately) and
    /// without the token it quotes, which may be part of a secret.
    bool parse_error(std::size_t byte, const std::string&,
                     const nlohmann::detail::exception& error) override {
        offset_ = byte > 0 ? byte - 1 : 0;
        std::string_view text = error.what();
        if (auto column = text.find(", column "); column != npos) {
            if (auto colon = text.find(": ", column); colon != npos) text.remove_prefix(colon + 2);
        } else if (auto bracket = text.find("] "); bracket != npos) {
            text.remove_prefix(bracket + 2);
        }
        const auto last = text.find("; last read: '");
        message_ = text.substr(0, last);
        if (const auto end = text.find("'; expected", last); last != npos && end != npos)
            message_ += text.substr(end + 1);
        return false;
    }

    /// Whether `text` parses (comments allowed); else offset() and message() say why.
    bool run(std::string_view text) {
        return json::sax_parse(text.begin(), text.end(), this, json::input_format_t::json,
                               /*strict=*/true, /*ignore_comments=*/true);
    }
    std::size_t offset() const { return offset_; }
    const std::string& message() const { return message_; }

private:
    std::size_t offset_ = 0;
    std::string message_;
};

void append_utf8(std::string& out, std::uint32_t code) {
    auto put = [&out](std::uint32_t byte) { out += static_cast<char>(byte); };
    if (code < 0x80) {
        put(code);
    } else if (code < 0x800) {
        put(0xc0 | (code >> 6));
        put(0x80 | (code & 0x3f));
    } else if (code < 0x10000) {
        put(0xe0 | (code >> 12));
        put(0x80 | ((code >> 6) & 0x3f));
        put(0x80 | (code & 0x3f));
    } else {
        put(0xf0 | (code >> 18));
        put(0x80 | ((code >> 12) & 0x3f));
        put(0x80 | ((code >> 6) & 0x3f));
        put(0x80 | (code & 0x3f));
    }
}

/// One member of an object: its decoded key and where the key and the value are.
struct member {
    std::string key;
    std::size_t key_begin = 0; ///< the key's opening quote
    std::size_t value_begin = 0;
    std::size_t value_end = 0; ///< one past the value's last byte
};

struct object_span {
    std::size_t open = 0;  ///< the `{`
    std::size_t close = 0; ///< the `}`
    std::vector<member> members;
};

/// Finds byte spans in JSON with comments. Functions return the offset just past what they read,
/// or npos (with failed_at() set) when the text is not what they expect.
class scanner {
public:
    explicit scanner(std::string_view text) : text_(text) {}

    std::size_t failed_at() const { return failed_at_; }

    /// Skips whitespace and comments.
    std::size_t skip_blank(std::size_t i) const {
        while (i < text_.size()) {
            const char c = text_[i];
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                ++i;
            } else if (c == '/') {
                i = skip_comment(i);
                if (i == npos) return npos;
            } else {
                break;
            }
        }
        return i;
    }

    /// A `//` comment ends before the line break (as in nlohmann), a `/* */` one after `*/`.
    std::size_t skip_comment(std::size_t i) const {
        if (text_.substr(i, 2) == "//") {
            const auto end = text_.find_first_of("\r\n", i + 2);
            return end == npos ? text_.size() : end;
        }
        if (text_.substr(i, 2) == "/*") {
            const auto end = text_.find("*/", i + 2);
            if (end != npos) return end + 2;
        }
        return fail(i);
    }

    /// A string at `i`; its decoded value goes to `decoded` unless that is null.
    std::size_t skip_string(std::size_t i, std::string* decoded) const {
        if (i >= text_.size() || text_[i] != '"') return fail(i);
        const std::size_t start = i++;
        while (i < text_.size()) {
            const char c = text_[i];
            if (c == '"') return i + 1;
            if (c != '\\') {
                if (decoded) *decoded += c;
                ++i;
                continue;
            }
            if (i + 1 >= text_.size()) break;
            const char escape = text_[i + 1];
            i += 2;
            if (escape == 'u') {
                auto code = hex4(i);
                if (!code) return fail(i);
                i += 4;
                if (*code >= 0xd800 && *code <= 0xdbff && text_.substr(i, 2) == "\\u") {
                    const auto low = hex4(i + 2);
                    if (low && *low >= 0xdc00 && *low <= 0xdfff) {
                        *code = 0x10000 + ((*code - 0xd800) << 10) + (*low - 0xdc00);
                        i += 6;
                    }
                }
                if (decoded) append_utf8(*decoded, *code);
                continue;
            }
            constexpr std::string_view escapes = "\"\\/bfnrt", plain = "\"\\/\b\f\n\r\t";
            const auto which = escapes.find(escape);
            if (which == npos) return fail(i - 1);
            if (decoded) *decoded += plain[which];
        }
        return fail(start);
    }

    /// Any value at `i`. Iterative, so deep nesting cannot exhaust the stack.
    std::size_t skip_value(std::size_t i) const {
        if (i >= text_.size()) return fail(i);
        const char first = text_[i];
        if (first == '"') return skip_string(i, nullptr);
        if (first != '{' && first != '[') {
            const std::size_t start = i;
            while (i < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[i])) ||
                                        text_[i] == '-' || text_[i] == '+' || text_[i] == '.'))
                ++i;
            return i == start ? fail(i) : i;
        }
        std::size_t depth = 0;
        while (i < text_.size()) {
            const char c = text_[i];
            if (c == '"') {
                i = skip_string(i, nullptr);
            } else if (c == '/') {
                i = skip_comment(i);
            } else {
                if (c == '{' || c == '[') {
                    ++depth;
                } else if (c == '}' || c == ']') {
                    if (--depth == 0) return i + 1;
                }
                ++i;
            }
            if (i == npos) return npos;
        }
        return fail(text_.size());
    }

    /// The object whose `{` is at `i`, with its members.
    std::optional<object_span> read_object(std::size_t i) const {
        if (i >= text_.size() || text_[i] != '{') return fail_object(i);
        object_span object;
        object.open = i;
        i = skip_blank(i + 1);
        if (i != npos && i < text_.size() && text_[i] == '}') {
            object.close = i;
            return object;
        }
        while (i != npos && i < text_.size()) {
            member m;
            m.key_begin = i;
            i = skip_blank(skip_string(i, &m.key));
            if (i == npos) return std::nullopt;
            if (i >= text_.size() || text_[i] != ':') return fail_object(i);
            m.value_begin = skip_blank(i + 1);
            if (m.value_begin == npos) return std::nullopt;
            m.value_end = skip_value(m.value_begin);
            if (m.value_end == npos) return std::nullopt;
            object.members.push_back(std::move(m));
            i = skip_blank(object.members.back().value_end);
            if (i == npos || i >= text_.size()) break;
            if (text_[i] == '}') {
                object.close = i;
                return object;
            }
            if (text_[i] != ',') break;
            i = skip_blank(i + 1);
        }
        return i == npos ? std::nullopt : fail_object(i);
    }

    /// The array whose `[` is at `i`: the [begin, end) span of each element.
    std::optional<std::vector<std::pair<std::size_t, std::size_t>>>
    read_array(std::size_t i) const {
        if (i >= text_.size() || text_[i] != '[') return fail_array(i);
        std::vector<std::pair<std::size_t, std::size_t>> elements;
        i = skip_blank(i + 1);
        if (i != npos && i < text_.size() && text_[i] == ']') return elements;
        while (i != npos && i < text_.size()) {
            const std::size_t end = skip_value(i);
            if (end == npos) return std::nullopt;
            elements.emplace_back(i, end);
            i = skip_blank(end);
            if (i == npos || i >= text_.size()) break;
            if (text_[i] == ']') return elements;
            if (text_[i] != ',') break;
            i = skip_blank(i + 1);
        }
        if (i != npos) fail(i);
        return std::nullopt;
    }

private:
    /// Exactly four hex digits at `i`.
    std::optional<std::uint32_t> hex4(std::size_t i) const {
        const std::string_view digits = text_.substr(std::min(i, text_.size()), 4);
        std::uint32_t code = 0;
        const auto [end, error] =
            std::from_chars(digits.data(), digits.data() + digits.size(), code, 16);
        if (error != std::errc{} || digits.size() != 4 || end != digits.data() + 4)
            return std::nullopt;
        return code;
    }

    std::size_t fail(std::size_t i) const {
        failed_at_ = i;
        return npos;
    }
    std::optional<object_span> fail_object(std::size_t i) const {
        failed_at_ = i;
        return std::nullopt;
    }
    std::optional<std::vector<std::pair<std::size_t, std::size_t>>>
    fail_array(std::size_t i) const {
        failed_at_ = i;
        return std::nullopt;
    }

    std::string_view text_;
    mutable std::size_t failed_at_ = 0;
};

/// Lines and indentation of the document, and where new bytes go.
class layout {
public:
    explicit layout(std::string_view text)
        : text_(text), start_(text.starts_with(byte_order_mark) ? byte_order_mark.size() : 0),
          eol_(text.find("\r\n") != npos ? "\r\n" : "\n") {}

    const std::string& eol() const { return eol_; }
    /// Where the JSON text begins: past a byte-order mark.
    std::size_t start() const { return start_; }

    std::size_t line_start(std::size_t i) const {
        while (i > start_ && text_[i - 1] != '\n')
            --i;
        return i;
    }

    /// The spaces and tabs that begin the line holding byte `i`.
    std::string indent_of(std::size_t i) const {
        const std::size_t begin = line_start(i);
        std::size_t end = begin;
        while (end < i && is_space(text_[end]))
            ++end;
        return std::string(text_.substr(begin, end - begin));
    }

    bool same_line(std::size_t a, std::size_t b) const {
        return text_.substr(a, b - a).find('\n') == npos;
    }

    bool first_on_line(std::size_t i) const {
        const std::size_t begin = line_start(i);
        return std::all_of(text_.begin() + static_cast<std::ptrdiff_t>(begin),
                           text_.begin() + static_cast<std::ptrdiff_t>(i), is_space);
    }

    /// One indentation level: what the members of `object` add to the line of its `{`, else the
    /// indentation of the first indented line of the document, else four spaces.
    std::string unit(const object_span& object) const {
        if (!object.members.empty()) {
            const std::size_t key = object.members.back().key_begin;
            const std::string outer = indent_of(object.open);
            const std::string inner = indent_of(key);
            if (!same_line(object.open, key) && inner.size() > outer.size() &&
                inner.starts_with(outer))
                return inner.substr(outer.size());
        }
        for (std::size_t i = text_.find('\n', start_); i != npos; i = text_.find('\n', i + 1)) {
            std::size_t end = i + 1;
            while (end < text_.size() && is_space(text_[end]))
                ++end;
            if (end > i + 1 && end < text_.size() && text_[end] != '\r' && text_[end] != '\n')
                return std::string(text_.substr(i + 1, end - i - 1));
        }
        return "    ";
    }

    /// Past the comments that follow byte `i` on its line (a block comment only when it ends on
    /// that line); `i` itself when there are none.
    std::size_t after_same_line_comments(std::size_t i) const {
        std::size_t end = i;
        while (i < text_.size()) {
            if (is_space(text_[i])) {
                ++i;
            } else if (text_.substr(i, 2) == "//") {
                const auto line_end = text_.find_first_of("\r\n", i);
                return line_end == npos ? text_.size() : line_end;
            } else if (text_.substr(i, 2) == "/*") {
                const auto close = text_.find("*/", i + 2);
                if (close == npos || !same_line(i, close)) break;
                i = end = close + 2;
            } else {
                break;
            }
        }
        return end;
    }

    static bool is_space(char c) { return c == ' ' || c == '\t'; }

private:
    std::string_view text_;
    std::size_t start_; ///< past a byte-order mark
    std::string eol_;
};

/// Bytes [begin, end) of the original become `with`.
struct splice {
    std::size_t begin;
    std::size_t end;
    std::string with;
};

/// `with(indent)` renders a value as a block whose closing line is indented by `indent`.
using block_renderer = std::function<std::string(const std::string& indent)>;

/// Adds `"key": value` as the last member of `object` (see the header for the placement rules).
std::vector<splice> add_member(std::string_view text, const layout& lines,
                               const object_span& object, const std::string& key,
                               const std::string& compact, const block_renderer& block) {
    const std::string& eol = lines.eol();
    if (object.members.empty()) {
        std::size_t begin = object.close;
        while (begin > object.open + 1 && layout::is_space(text[begin - 1]))
            --begin;
        if (text.find('\n') == npos) // a document on one line stays on one line
            return {
                {begin, object.close, (begin > object.open + 1 ? " " : "") + key + ": " + compact}};

        const std::string outer = lines.indent_of(object.open);
        const std::string indent = outer + lines.unit(object);
        const std::string added = indent + key + ": " + block(indent);
        if (!lines.same_line(object.open, object.close) && lines.first_on_line(object.close)) {
            const std::size_t at = lines.line_start(object.close);
            return {{at, at, added + eol}};
        }
        return {{begin, object.close, eol + added + eol + outer}};
    }

    const member& last = object.members.back();
    const std::size_t at = lines.after_same_line_comments(last.value_end);
    std::string added;
    if (lines.same_line(object.open, object.close)) {
        added = ' ' + key + ": " + compact;
    } else {
        const std::string indent = lines.indent_of(last.key_begin);
        added = eol + indent + key + ": " + block(indent);
    }
    if (at == last.value_end) return {{at, at, ',' + added}};
    return {{last.value_end, last.value_end, ","}, {at, at, added}};
}

std::string spliced(std::string_view text, const std::vector<splice>& splices) {
    std::string out;
    std::size_t extra = 0;
    for (const auto& s : splices)
        extra += s.with.size();
    out.reserve(text.size() + extra);
    std::size_t at = 0;
    for (const auto& s : splices) {
        out.append(text.substr(at, s.begin - at));
        out += s.with;
        at = s.end;
    }
    out.append(text.substr(at));
    return out;
}

/// What kind of value starts with `c`, never its content.
std::string kind(char c) {
    switch (c) {
    case '[':
        return "an array";
    case '"':
        return "a string";
    case 't':
    case 'f':
        return "a boolean";
    case 'n':
        return "null";
    default:
        return "a number";
    }
}

/// The first member whose key appeared before, with that earlier one.
std::optional<std::pair<const member*, const member*>> duplicate(const object_span& object) {
    for (std::size_t i = 1; i < object.members.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (object.members[i].key == object.members[j].key)
                return std::pair{&object.members[i], &object.members[j]};
    return std::nullopt;
}

const member* find(const object_span& object, std::string_view key) {
    for (const auto& m : object.members)
        if (m.key == key) return &m;
    return nullptr;
}

edit_result failure(std::string why) {
    return {std::nullopt, std::move(why)};
}

/// The refusal of an object holding a key twice (`where` follows the key in the message), or
/// nothing.
std::optional<edit_result> duplicate_key_error(std::string_view text, const object_span& object,
                                               const std::string& where) {
    const auto twice = duplicate(object);
    if (!twice) return std::nullopt;
    return failure(position(text, twice->first->key_begin) + ": duplicate key " +
                   json_quote(twice->first->key).value_or("a key") + where + " (first at " +
                   position(text, twice->second->key_begin) +
                   "); the loader refuses duplicate keys, remove one");
}

/// `edited`, unless it would not parse (a caller's `value_json` that is not JSON): never hand
/// back a broken file.
edit_result checked(std::string_view original, std::string edited) {
    if (syntax_check check; !check.run(edited))
        return failure(position(original, 0) + ": the edited text would not parse (" +
                       check.message() + ")");
    return {std::move(edited), {}};
}

} // namespace

std::optional<std::string> json_quote(std::string_view text) {
    try {
        return detail::json(std::string(text)).dump();
    } catch (const detail::json::type_error&) { // 316: invalid UTF-8
        return std::nullopt;
    }
}

edit_result set_dpapi_credential(std::string_view text, std::string_view name,
                                 std::string_view username, std::string_view dpapi_base64) {
    if (name.empty())
        return failure("the credential name is empty; expected a name such as \"corp-proxy\"");
    if (username.empty()) return failure("the user name is empty; expected e.g. \"CORP\\\\svc\"");
    const auto entry_key = json_quote(name);
    if (!entry_key) return failure("the credential name is not valid UTF-8");
    const auto user = json_quote(username);
    if (!user) return failure("the user name is not valid UTF-8");
    const auto blob = json_quote(dpapi_base64);
    if (const auto bytes = detail::decode_base64(dpapi_base64); !bytes || bytes->empty() || !blob)
        return failure("the DPAPI blob is not base64 (it is written as DPAPI returned it)");

    if (syntax_check check; !check.run(text))
        return failure(position(text, check.offset()) + ": " + check.message());

    const scanner scan(text);
    const layout lines(text);
    auto at = [&](std::size_t offset) { return position(text, offset); };
    auto unreadable = [&] {
        return failure(at(scan.failed_at()) + ": cannot find the members of this object");
    };

    const std::size_t root_at = scan.skip_blank(lines.start());
    if (root_at == npos || root_at >= text.size()) return unreadable();
    if (text[root_at] != '{')
        return failure(at(root_at) + ": the top-level value is " + kind(text[root_at]) +
                       "; expected an object such as {\"credentials\": {}}");
    const auto root = scan.read_object(root_at);
    if (!root) return unreadable();
    if (auto refused = duplicate_key_error(text, *root, " in the top-level object"))
        return *refused;

    const std::string& eol = lines.eol();
    const std::string entry_compact =
        "{\"username\": " + *user + ", \"password\": {\"dpapi\": " + *blob + "}}";

    // The entry as a block: members one `unit` deeper than `indent`, which the `}` line gets.
    auto entry_block = [&](const std::string& indent, const std::string& unit) {
        return "{" + eol + indent + unit + "\"username\": " + *user + "," + eol + indent + unit +
               "\"password\": {\"dpapi\": " + *blob + "}" + eol + indent + "}";
    };

    std::vector<splice> splices;
    const member* credentials = find(*root, "credentials");
    if (!credentials) {
        const std::string unit = lines.unit(*root);
        const block_renderer section_block = [&](const std::string& indent) {
            return "{" + eol + indent + unit + *entry_key + ": " +
                   entry_block(indent + unit, unit) + eol + indent + "}";
        };
        splices = add_member(text, lines, *root, "\"credentials\"",
                             "{" + *entry_key + ": " + entry_compact + "}", section_block);
    } else {
        const std::size_t value = credentials->value_begin;
        if (text[value] != '{')
            return failure(at(value) + ": \"credentials\" is " + kind(text[value]) +
                           "; expected an object of named credentials such as {\"" +
                           "corp-proxy\": {\"username\": ..., \"password\": ...}}");
        const auto entries = scan.read_object(value);
        if (!entries) return unreadable();
        if (auto refused = duplicate_key_error(text, *entries, " in \"credentials\""))
            return *refused;

        const std::string unit = lines.unit(*entries);
        if (const member* entry = find(*entries, name)) {
            const bool one_line = lines.same_line(entry->value_begin, entry->value_end);
            splices = {
                {entry->value_begin, entry->value_end,
                 one_line ? entry_compact : entry_block(lines.indent_of(entry->key_begin), unit)}};
        } else {
            splices =
                add_member(text, lines, *entries, *entry_key, entry_compact,
                           [&](const std::string& indent) { return entry_block(indent, unit); });
        }
    }

    std::string edited = spliced(text, splices);
    if (syntax_check check; !check.run(edited)) // cannot happen; never hand back a broken file
        return failure(at(0) + ": internal error: the edited text would not parse (" +
                       check.message() + ")");
    return {std::move(edited), {}};
}

edit_result set_value(std::string_view text, std::span<const path_step> path,
                      std::string_view value_json) {
    if (path.empty() || !std::holds_alternative<std::string>(path.front()))
        return failure("internal error: the path must start with a key");
    if (syntax_check check; !check.run(text))
        return failure(position(text, check.offset()) + ": " + check.message());

    const scanner scan(text);
    const layout lines(text);
    auto at = [&](std::size_t offset) { return position(text, offset); };
    auto unreadable = [&] {
        return failure(at(scan.failed_at()) + ": cannot find the members of this object");
    };
    // "/upstreams/0/address" up to and including step `n`.
    auto pointer = [&](std::size_t n) {
        std::string out;
        for (std::size_t i = 0; i <= n && i < path.size(); ++i) {
            out += '/';
            if (const auto* key = std::get_if<std::string>(&path[i]))
                out += *key; // the caller's own key names, never the document's
            else
                out += std::to_string(std::get<std::size_t>(path[i]));
        }
        return out;
    };

    std::size_t value = scan.skip_blank(lines.start());
    if (value == npos || value >= text.size()) return unreadable();
    const std::string& eol = lines.eol();
    for (std::size_t step = 0; step < path.size(); ++step) {
        const std::string where =
            step == 0 ? "the top-level value" : "\"" + pointer(step - 1) + "\"";
        if (const auto* key = std::get_if<std::string>(&path[step])) {
            if (text[value] != '{')
                return failure(at(value) + ": " + where + " is " + kind(text[value]) +
                               "; expected an object");
            const auto object = scan.read_object(value);
            if (!object) return unreadable();
            if (auto refused = duplicate_key_error(text, *object, " in " + where)) return *refused;
            if (const member* m = find(*object, *key)) {
                value = m->value_begin;
                continue;
            }
            // Missing: create it with the objects still missing below it, unless the rest of
            // the path indexes into an array that would have to be made up.
            for (std::size_t later = step + 1; later < path.size(); ++later)
                if (std::holds_alternative<std::size_t>(path[later]))
                    return failure(at(value) + ": \"" + pointer(later - 1) +
                                   "\" does not exist; add it first");
            std::vector<std::string> keys;
            for (std::size_t later = step; later < path.size(); ++later) {
                auto quoted = json_quote(std::get<std::string>(path[later]));
                if (!quoted) return failure("the key is not valid UTF-8");
                keys.push_back(std::move(*quoted));
            }
            std::string compact(value_json);
            for (std::size_t k = keys.size(); k-- > 1;)
                compact = "{" + keys[k] + ": " + compact + "}";
            const std::string unit = lines.unit(*object);
            const block_renderer block = [&](const std::string& indent) {
                std::string inner(value_json);
                for (std::size_t k = keys.size(); k-- > 1;) {
                    std::string in = indent;
                    for (std::size_t d = 1; d < k; ++d)
                        in += unit;
                    inner = "{" + eol + in + unit + keys[k] + ": " + inner + eol + in + "}";
                }
                return inner;
            };
            const auto splices = add_member(text, lines, *object, keys.front(), compact, block);
            return checked(text, spliced(text, splices));
        }
        const std::size_t index = std::get<std::size_t>(path[step]);
        if (text[value] != '[')
            return failure(at(value) + ": " + where + " is " +
                           (text[value] == '{' ? std::string("an object") : kind(text[value])) +
                           "; expected an array");
        const auto elements = scan.read_array(value);
        if (!elements)
            return failure(at(scan.failed_at()) + ": cannot find the elements of this array");
        if (index >= elements->size())
            return failure(at(value) + ": " + where + " has " + std::to_string(elements->size()) +
                           " element(s); there is no \"" + pointer(step) + "\" to set");
        value = (*elements)[index].first;
    }
    const std::size_t end = scan.skip_value(value);
    if (end == npos) return unreadable();
    return checked(text, spliced(text, {{value, end, std::string(value_json)}}));
}

} // namespace authshim::config
