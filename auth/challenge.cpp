#include "auth/challenge.hpp"

#include "auth/detail_text.hpp"
#include "auth/errors.hpp"

#include <string>

namespace authshim::auth {
namespace {

// RFC 9110 §5.6.2 tchar.
bool is_tchar(unsigned char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return true;
    default:
        return false;
    }
}

// RFC 9110 §11.2 token68 characters (before the trailing `=` padding).
bool is_token68_char(unsigned char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

// An unquoted parameter value. RFC 9110 says token; real servers (IIS) send `/`, `=` and other
// visible characters unquoted, so, like curl, take everything up to whitespace or a comma.
bool is_loose_value_char(unsigned char c) noexcept {
    return c > 0x20 && c != 0x7f && c != ',' && c != '"';
}

bool is_ws(char c) noexcept {
    return c == ' ' || c == '\t';
}

/// A cursor over one header value. Every error names the value index and the byte offset.
class parser {
public:
    parser(std::string_view text, std::size_t value_index, auth_errc malformed, std::string& detail)
        : text_(text), value_index_(value_index), malformed_(malformed), detail_(detail) {}

    bool at_end() const noexcept { return pos_ >= text_.size(); }
    char peek() const noexcept { return text_[pos_]; }
    std::size_t pos() const noexcept { return pos_; }
    void seek(std::size_t pos) noexcept { pos_ = pos; }
    void skip_ws() noexcept {
        while (!at_end() && is_ws(peek()))
            ++pos_;
    }
    bool at_element_end() const noexcept { return at_end() || peek() == ','; }

    std::string_view read_token() noexcept {
        const std::size_t start = pos_;
        while (!at_end() && is_tchar(static_cast<unsigned char>(peek())))
            ++pos_;
        return text_.substr(start, pos_ - start);
    }

    /// token68 followed by OWS and the end of the list element; otherwise nothing is consumed.
    std::optional<std::string_view> try_token68() noexcept {
        const std::size_t start = pos_;
        std::size_t p = pos_;
        while (p < text_.size() && is_token68_char(static_cast<unsigned char>(text_[p])))
            ++p;
        if (p == start) return std::nullopt;
        while (p < text_.size() && text_[p] == '=')
            ++p;
        const std::size_t end = p;
        while (p < text_.size() && is_ws(text_[p]))
            ++p;
        if (p < text_.size() && text_[p] != ',') return std::nullopt;
        pos_ = p;
        return text_.substr(start, end - start);
    }

    /// A quoted-string (unescaped into `out`) or a loose unquoted value.
    std::error_code read_value(std::string& out) {
        out.clear();
        if (at_end() || peek() != '"') {
            while (!at_end() && is_loose_value_char(static_cast<unsigned char>(peek()))) {
                if (out.size() == parse_limits::max_value_bytes) return too_large("value");
                out += text_[pos_++];
            }
            if (!at_end() && is_ctl(peek())) return fail("control character in a value");
            return {};
        }
        const std::size_t open = pos_++;
        while (!at_end()) {
            char c = text_[pos_];
            if (c == '"') {
                ++pos_;
                return {};
            }
            if (c == '\\') {
                if (++pos_ == text_.size()) break;
                c = text_[pos_];
            }
            if (is_ctl(c) && c != '\t') return fail("control character in a quoted string");
            if (out.size() == parse_limits::max_value_bytes) return too_large("value");
            out += c;
            ++pos_;
        }
        pos_ = open;
        return fail("unterminated quoted string");
    }

    /// Error for the current position; `what` must not contain input bytes.
    std::error_code fail(const char* what) { return report(malformed_, what); }
    std::error_code too_large(const char* what) {
        return report(auth_errc::challenge_too_large, (std::string(what) + " too large").c_str());
    }
    /// What is wrong with the byte at the cursor where a token was expected.
    std::error_code fail_expected(const char* expected) {
        if (at_end())
            return fail((std::string(expected) + " expected, end of value found").c_str());
        if (is_ctl(peek())) return fail("control character");
        return fail((std::string(expected) + " expected").c_str());
    }

private:
    static bool is_ctl(char c) noexcept { return detail::is_ctl(static_cast<unsigned char>(c)); }

    std::error_code report(auth_errc code, const char* what) {
        detail_ = std::string(what) + " (header value " + std::to_string(value_index_ + 1) +
                  ", offset " + std::to_string(pos_) + ")";
        return code;
    }

    std::string_view text_;
    std::size_t pos_ = 0;
    std::size_t value_index_;
    auth_errc malformed_;
    std::string& detail_;
};

/// Appends one parameter, enforcing the count limit and unique names (RFC 9110 §11.2: "each
/// parameter name MUST only occur once"; two nonces or realms would be ambiguous).
std::error_code add_param(parser& p, std::vector<auth_param>& params, std::string_view name,
                          std::string value) {
    std::string lowered = detail::to_lower_ascii(name);
    for (const auth_param& existing : params) {
        if (existing.name == lowered) return p.fail("duplicate parameter");
    }
    if (params.size() == parse_limits::max_params) return p.too_large("parameter list");
    params.push_back({std::move(lowered), std::move(value)});
    return {};
}

/// `name BWS "=" BWS value`, with the name already read and the cursor after it.
std::error_code finish_param(parser& p, std::vector<auth_param>& params, std::string_view name) {
    p.skip_ws();
    if (p.at_end() || p.peek() != '=') return p.fail_expected("'=' after a parameter name");
    p.seek(p.pos() + 1);
    p.skip_ws();
    std::string value;
    if (auto ec = p.read_value(value)) return ec;
    return add_param(p, params, name, std::move(value));
}

/// After a list element: OWS, then a comma (consumed) or the end.
std::error_code end_element(parser& p) {
    p.skip_ws();
    if (p.at_end()) return {};
    if (p.peek() != ',') return p.fail_expected("',' or end of value");
    p.seek(p.pos() + 1);
    return {};
}

std::error_code parse_one_value(std::string_view text, std::size_t index,
                                std::vector<challenge>& out, std::string& detail) {
    parser p(text, index, auth_errc::malformed_challenge, detail);
    challenge* current = nullptr; // challenges never continue into the next header value
    for (;;) {
        p.skip_ws();
        if (p.at_end()) return {};
        if (p.peek() == ',') { // empty list element, tolerated (RFC 9110 §5.6.1)
            p.seek(p.pos() + 1);
            continue;
        }
        const std::string_view first = p.read_token();
        if (first.empty()) return p.fail_expected("auth-scheme or parameter name");
        const std::size_t after_first = p.pos();
        p.skip_ws();
        if (!p.at_end() && p.peek() == '=') {
            // `name = value`: a further parameter of the current challenge.
            if (current == nullptr) return p.fail("parameter before any auth-scheme");
            if (current->token68) return p.fail("parameter after a token68");
            if (auto ec = finish_param(p, current->params, first)) return ec;
        } else {
            if (out.size() == parse_limits::max_challenges) return p.too_large("challenge list");
            out.push_back({detail::to_lower_ascii(first), std::nullopt, {}});
            current = &out.back();
            if (!p.at_element_end()) {
                if (p.pos() == after_first) return p.fail_expected("space after auth-scheme");
                if (auto t68 = p.try_token68()) {
                    current->token68 = std::string(*t68);
                } else {
                    const std::string_view name = p.read_token();
                    if (name.empty()) return p.fail_expected("token68 or parameter name");
                    if (auto ec = finish_param(p, current->params, name)) return ec;
                }
            }
        }
        if (auto ec = end_element(p)) return ec;
    }
}

} // namespace

const std::string* challenge::param(std::string_view lowercase_name) const noexcept {
    for (const auth_param& p : params) {
        if (p.name == lowercase_name) return &p.value;
    }
    return nullptr;
}

std::error_code parse_challenges(std::span<const std::string_view> header_values,
                                 std::vector<challenge>& out, std::string& detail) {
    out.clear();
    detail.clear();
    std::size_t total = 0;
    for (std::string_view value : header_values) {
        total += value.size();
        if (total > parse_limits::max_total_bytes) {
            detail = "challenges exceed " + std::to_string(parse_limits::max_total_bytes) +
                     " bytes in total";
            return auth_errc::challenge_too_large;
        }
    }
    for (std::size_t i = 0; i < header_values.size(); ++i) {
        if (auto ec = parse_one_value(header_values[i], i, out, detail)) {
            out.clear();
            return ec;
        }
    }
    return {};
}

std::error_code parse_challenges(std::string_view header_value, std::vector<challenge>& out,
                                 std::string& detail) {
    return parse_challenges(std::span<const std::string_view>(&header_value, 1), out, detail);
}

std::error_code parse_auth_info(std::string_view header_value, std::vector<auth_param>& out,
                                std::string& detail) {
    out.clear();
    detail.clear();
    if (header_value.size() > parse_limits::max_total_bytes) {
        detail = "value exceeds " + std::to_string(parse_limits::max_total_bytes) + " bytes";
        return auth_errc::challenge_too_large;
    }
    parser p(header_value, 0, auth_errc::malformed_authentication_info, detail);
    for (;;) {
        p.skip_ws();
        if (p.at_end()) return {};
        if (p.peek() == ',') {
            p.seek(p.pos() + 1);
            continue;
        }
        const std::string_view name = p.read_token();
        std::error_code ec =
            name.empty() ? p.fail_expected("parameter name") : finish_param(p, out, name);
        if (!ec) ec = end_element(p);
        if (ec) {
            out.clear();
            return ec;
        }
    }
}

} // namespace authshim::auth
