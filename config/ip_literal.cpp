#include "config/detail_ip.hpp"

#include <algorithm>
#include <cstddef>

namespace authshim::config::detail {
namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

constexpr std::array<std::uint8_t, 12> mapped_prefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool is_mapped(const std::vector<std::uint8_t>& bytes) {
    return bytes.size() == 16 &&
           std::equal(mapped_prefix.begin(), mapped_prefix.end(), bytes.begin());
}

} // namespace

std::optional<ipv4_bytes> parse_ipv4(std::string_view text) {
    ipv4_bytes out{};
    std::size_t pos = 0;
    for (std::size_t part = 0; part < 4; ++part) {
        if (part > 0) {
            if (pos >= text.size() || text[pos] != '.') return std::nullopt;
            ++pos;
        }
        const std::size_t start = pos;
        unsigned value = 0;
        while (pos < text.size() && is_digit(text[pos]) && pos - start < 3) {
            value = value * 10 + static_cast<unsigned>(text[pos] - '0');
            ++pos;
        }
        const std::size_t length = pos - start;
        if (length == 0 || value > 255 || (length > 1 && text[start] == '0')) return std::nullopt;
        out[part] = static_cast<std::uint8_t>(value);
    }
    if (pos != text.size()) return std::nullopt;
    return out;
}

std::optional<ipv6_bytes> parse_ipv6(std::string_view text) {
    // Groups before and after a `::`, each up to 8; an IPv4 tail counts as two groups.
    std::array<std::uint16_t, 8> head{};
    std::array<std::uint16_t, 8> tail{};
    std::size_t head_count = 0;
    std::size_t tail_count = 0;
    bool compressed = false;
    std::size_t pos = 0;

    if (text.size() >= 2 && text[0] == ':' && text[1] == ':') {
        compressed = true;
        pos = 2;
        if (pos == text.size()) return ipv6_bytes{};
    } else if (!text.empty() && text[0] == ':') {
        return std::nullopt;
    }

    while (pos < text.size()) {
        auto& groups = compressed ? tail : head;
        auto& count = compressed ? tail_count : head_count;
        if (head_count + tail_count >= 8) return std::nullopt;

        const std::size_t start = pos;
        unsigned value = 0;
        while (pos < text.size() && hex_value(text[pos]) >= 0 && pos - start < 4) {
            value = value * 16 + static_cast<unsigned>(hex_value(text[pos]));
            ++pos;
        }
        if (pos < text.size() && text[pos] == '.') {
            // An embedded IPv4 address ends the literal and fills two groups.
            auto v4 = parse_ipv4(text.substr(start));
            if (!v4 || head_count + tail_count + 2 > 8) return std::nullopt;
            groups[count++] = static_cast<std::uint16_t>(((*v4)[0] << 8) | (*v4)[1]);
            groups[count++] = static_cast<std::uint16_t>(((*v4)[2] << 8) | (*v4)[3]);
            pos = text.size();
            break;
        }
        if (pos == start) return std::nullopt;
        groups[count++] = static_cast<std::uint16_t>(value);

        if (pos == text.size()) break;
        if (text[pos] != ':') return std::nullopt;
        ++pos;
        if (pos < text.size() && text[pos] == ':') {
            if (compressed) return std::nullopt; // a second `::`
            compressed = true;
            ++pos;
            if (pos == text.size()) break;
        } else if (pos == text.size()) {
            return std::nullopt; // a trailing single `:`
        }
    }

    const std::size_t total = head_count + tail_count;
    if (compressed ? total > 7 : total != 8) return std::nullopt;

    ipv6_bytes out{};
    auto put = [&out](std::size_t index, std::uint16_t group) {
        out[index * 2] = static_cast<std::uint8_t>(group >> 8);
        out[index * 2 + 1] = static_cast<std::uint8_t>(group & 0xff);
    };
    for (std::size_t i = 0; i < head_count; ++i)
        put(i, head[i]);
    for (std::size_t i = 0; i < tail_count; ++i)
        put(8 - tail_count + i, tail[i]);
    return out;
}

std::vector<std::uint8_t> parse_ip(std::string_view text) {
    if (auto v4 = parse_ipv4(text)) return {v4->begin(), v4->end()};
    if (auto v6 = parse_ipv6(text)) return {v6->begin(), v6->end()};
    return {};
}

std::string format_ip(const std::vector<std::uint8_t>& bytes) {
    auto dotted = [](const std::uint8_t* b) {
        return std::to_string(b[0]) + '.' + std::to_string(b[1]) + '.' + std::to_string(b[2]) +
               '.' + std::to_string(b[3]);
    };
    if (bytes.size() == 4) return dotted(bytes.data());
    if (bytes.size() != 16) return "?";
    if (is_mapped(bytes)) return "::ffff:" + dotted(bytes.data() + 12);

    std::array<unsigned, 8> groups{};
    for (std::size_t i = 0; i < 8; ++i)
        groups[i] = (bytes[i * 2] << 8u) | bytes[i * 2 + 1];

    // RFC 5952 4.2: compress the longest run of two or more zero groups, the first one on a tie.
    std::size_t best_start = 8;
    std::size_t best_length = 1;
    for (std::size_t i = 0; i < 8;) {
        if (groups[i] != 0) {
            ++i;
            continue;
        }
        std::size_t j = i;
        while (j < 8 && groups[j] == 0)
            ++j;
        if (j - i > best_length) {
            best_start = i;
            best_length = j - i;
        }
        i = j;
    }

    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < 8; ++i) {
        if (i == best_start) {
            out += "::";
            i += best_length - 1;
            continue;
        }
        if (!out.empty() && out.back() != ':') out += ':';
        bool started = false;
        for (int shift = 12; shift >= 0; shift -= 4) {
            const unsigned nibble = (groups[i] >> shift) & 0xfu;
            if (nibble != 0 || started || shift == 0) {
                out += digits[nibble];
                started = true;
            }
        }
    }
    return out;
}

bool is_loopback(const std::vector<std::uint8_t>& bytes) {
    if (bytes.size() == 4) return bytes[0] == 127;
    if (is_mapped(bytes)) return bytes[12] == 127;
    if (bytes.size() != 16) return false;
    return std::all_of(bytes.begin(), bytes.end() - 1, [](std::uint8_t b) { return b == 0; }) &&
           bytes[15] == 1;
}

bool is_unspecified(const std::vector<std::uint8_t>& bytes) {
    return (bytes.size() == 4 || bytes.size() == 16) &&
           std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

} // namespace authshim::config::detail
