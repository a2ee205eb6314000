#include "auth/detail_text.hpp"

#include <algorithm>

namespace authshim::auth::detail {

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return to_lower_ascii(x) == to_lower_ascii(y);
           });
}

std::string to_lower_ascii(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        c = to_lower_ascii(c);
    return out;
}

bool has_ctl(std::string_view text, bool allow_htab) noexcept {
    return std::any_of(text.begin(), text.end(), [allow_htab](char c) {
        return is_ctl(static_cast<unsigned char>(c)) && !(allow_htab && c == '\t');
    });
}

void append_quoted(std::string& out, std::string_view text) {
    out.reserve(out.size() + text.size() + 2);
    out += '"';
    for (char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
}

std::string base64_encode(std::string_view bytes) {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    auto byte = [&](std::size_t k) {
        return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k]));
    };
    for (; i + 3 <= bytes.size(); i += 3) {
        const std::uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
        out += alphabet[v >> 18 & 0x3f];
        out += alphabet[v >> 12 & 0x3f];
        out += alphabet[v >> 6 & 0x3f];
        out += alphabet[v & 0x3f];
    }
    const std::size_t rest = bytes.size() - i;
    if (rest == 1) {
        const std::uint32_t v = byte(i) << 16;
        out += alphabet[v >> 18 & 0x3f];
        out += alphabet[v >> 12 & 0x3f];
        out += "==";
    } else if (rest == 2) {
        const std::uint32_t v = byte(i) << 16 | byte(i + 1) << 8;
        out += alphabet[v >> 18 & 0x3f];
        out += alphabet[v >> 12 & 0x3f];
        out += alphabet[v >> 6 & 0x3f];
        out += '=';
    }
    return out;
}

namespace {

// RFC 8187 §3.2.1 attr-char.
bool is_attr_char(unsigned char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '&':
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

constexpr char upper_hex[] = "0123456789ABCDEF";

} // namespace

std::string rfc8187_encode(std::string_view utf8) {
    std::string out = "UTF-8''";
    for (char ch : utf8) {
        const auto c = static_cast<unsigned char>(ch);
        if (is_attr_char(c)) {
            out += ch;
        } else {
            out += '%';
            out += upper_hex[c >> 4];
            out += upper_hex[c & 0x0f];
        }
    }
    return out;
}

std::string hex8(std::uint32_t value) {
    static constexpr char lower_hex[] = "0123456789abcdef";
    std::string out(8, '0');
    for (int i = 7; i >= 0; --i) {
        out[static_cast<std::size_t>(i)] = lower_hex[value & 0x0f];
        value >>= 4;
    }
    return out;
}

} // namespace authshim::auth::detail
