#include "config/detail_parse.hpp"

#include "config/detail_ip.hpp"
#include "config/loader.hpp"

#include <algorithm>
#include <cstdint>

namespace authshim::config {
namespace detail {
namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool has_space(std::string_view text) {
    return std::any_of(text.begin(), text.end(), is_space);
}

bool all_digits(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), is_digit);
}

/// Explains why `host` (not in brackets) is neither a DNS name nor an IPv4 literal, or nothing
/// when it is one of them.
std::optional<std::string> host_problem(std::string_view host) {
    if (host.empty()) return std::string("has no host (expected host:port)");
    if (parse_ipv4(host)) return std::nullopt;
    if (std::all_of(host.begin(), host.end(), [](char c) { return is_digit(c) || c == '.'; }))
        return std::string("has an invalid IPv4 address (expected four numbers 0-255 such as "
                           "127.0.0.1, without leading zeros)");
    if (parse_ipv6(host))
        return std::string("has an IPv6 address without brackets (write [v6]:port, e.g. "
                           "[::1]:3128)");
    if (!is_valid_host_name(host))
        return std::string("has a host that is neither a valid DNS name nor an IP address");
    return std::nullopt;
}

} // namespace

bool is_valid_host_name(std::string_view host) {
    if (!host.empty() && host.back() == '.') host.remove_suffix(1); // a fully qualified name
    if (host.empty() || host.size() > 253) return false;
    std::size_t label_start = 0;
    for (std::size_t i = 0; i <= host.size(); ++i) {
        if (i < host.size() && host[i] != '.') {
            const char c = host[i];
            if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_') return false;
            continue;
        }
        const std::string_view label = host.substr(label_start, i - label_start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
            return false;
        label_start = i + 1;
    }
    return true;
}

parsed<std::chrono::milliseconds> parse_duration(std::string_view text) {
    if (text.empty()) return std::string("is empty");
    if (has_space(text)) return std::string("contains whitespace");
    if (!is_digit(text.front())) return std::string("must start with a positive whole number");

    // Capped so that the value in milliseconds always fits: 10^12 h < 2^63 ms.
    constexpr std::uint64_t cap = 1'000'000'000'000;
    std::uint64_t value = 0;
    bool too_large = false;
    std::size_t pos = 0;
    for (; pos < text.size() && is_digit(text[pos]); ++pos) {
        value = value * 10 + static_cast<std::uint64_t>(text[pos] - '0');
        if (value > cap) {
            too_large = true;
            value = cap;
        }
    }
    const std::string_view unit = text.substr(pos);
    if (!unit.empty() && (unit.front() == '.' || unit.front() == ','))
        return std::string("must be a whole number (write 1500ms, not 1.5s)");
    if (unit.empty()) return std::string("has no unit (expected ms, s, m or h)");

    std::uint64_t factor = 0;
    if (unit == "ms")
        factor = 1;
    else if (unit == "s")
        factor = 1'000;
    else if (unit == "m")
        factor = 60'000;
    else if (unit == "h")
        factor = 3'600'000;
    else
        return "has an unknown unit \"" + std::string(unit) + "\" (expected ms, s, m or h)";

    if (too_large) return std::string("is too large");
    if (value == 0) return std::string("must be greater than zero");
    return std::chrono::milliseconds(static_cast<std::int64_t>(value * factor));
}

std::string format_duration(std::chrono::milliseconds value) {
    const auto ms = value.count();
    if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
    if (ms != 0 && ms % 1'000 == 0) return std::to_string(ms / 1'000) + "s";
    return std::to_string(ms) + "ms";
}

parsed<std::uint16_t> parse_port(std::string_view text, bool allow_zero) {
    const char* range = allow_zero ? "0-65535" : "1-65535";
    if (text.empty()) return std::string("has no port (expected host:port)");
    if (!all_digits(text))
        return std::string("has a port that is not a number (expected ") + range + ")";
    std::uint32_t value = 0;
    for (char c : text) {
        value = value * 10 + static_cast<std::uint32_t>(c - '0');
        if (value > 65535) return std::string("has a port out of range (expected ") + range + ")";
    }
    if (value == 0 && !allow_zero) return std::string("has port 0 (expected 1-65535)");
    return static_cast<std::uint16_t>(value);
}

parsed<endpoint> parse_endpoint(std::string_view text, bool allow_port_zero) {
    if (text.empty()) return std::string("is empty");
    if (has_space(text)) return std::string("contains whitespace");
    if (text.find("://") != std::string_view::npos)
        return std::string("must not have a scheme (expected host:port)");

    endpoint out;
    std::string_view port_text;
    if (text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos)
            return std::string("has '[' without a closing ']' (expected [v6]:port)");
        const std::string_view inside = text.substr(1, close - 1);
        if (inside.find('%') != std::string_view::npos)
            return std::string("has an IPv6 zone ID (%...); zone IDs are not supported");
        const auto v6 = parse_ipv6(inside);
        if (!v6) return std::string("has an invalid IPv6 address between the brackets");
        out.host = format_ip({v6->begin(), v6->end()});
        const std::string_view after = text.substr(close + 1);
        if (after.empty()) return std::string("has no port (expected [v6]:port)");
        if (after.front() != ':') return std::string("has text after ']' (expected [v6]:port)");
        port_text = after.substr(1);
    } else {
        const std::size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            if (parse_ipv4(text) || is_valid_host_name(text))
                return std::string("has no port (expected host:port)");
            return std::string("is not host:port");
        }
        if (text.find(':') != colon) {
            if (parse_ipv6(text))
                return std::string("has no port, or is an IPv6 address without brackets "
                                   "(write [v6]:port, e.g. [::1]:3128)");
            return std::string("has more than one ':' (IPv6 addresses need brackets: "
                               "[v6]:port)");
        }
        const std::string_view host = text.substr(0, colon);
        if (auto why = host_problem(host)) return *why;
        out.host = std::string(host);
        port_text = text.substr(colon + 1);
    }

    auto port = parse_port(port_text, allow_port_zero);
    if (auto* why = std::get_if<std::string>(&port)) return *why;
    out.port = std::get<std::uint16_t>(port);
    return out;
}

parsed<cidr> parse_cidr(std::string_view text) {
    if (text.empty()) return std::string("is empty");
    if (has_space(text)) return std::string("contains whitespace");
    if (text.front() == '[')
        return std::string("must not use brackets (write ::1/128, not [::1]/128)");

    const std::size_t slash = text.find('/');
    const std::string_view address_text = text.substr(0, slash);
    cidr out;
    out.address = parse_ip(address_text);
    if (out.address.empty()) {
        if (address_text.find('%') != std::string_view::npos)
            return std::string("has an IPv6 zone ID (%...); zone IDs are not supported");
        return std::string("is not an IPv4 or IPv6 address with an optional /prefix "
                           "(e.g. 10.0.0.0/8 or fd00::/8)");
    }
    const unsigned max_prefix = static_cast<unsigned>(out.address.size() * 8);
    const std::string range = out.address.size() == 4 ? "0-32 for IPv4" : "0-128 for IPv6";
    out.prefix_length = max_prefix;
    if (slash != std::string_view::npos) {
        const std::string_view prefix_text = text.substr(slash + 1);
        if (!all_digits(prefix_text) || prefix_text.size() > 3)
            return "has an invalid prefix length (expected a number " + range + ")";
        unsigned prefix = 0;
        for (char c : prefix_text)
            prefix = prefix * 10 + static_cast<unsigned>(c - '0');
        if (prefix > max_prefix) return "has a prefix length out of range (expected " + range + ")";
        out.prefix_length = prefix;
    }

    // Bits past the prefix are almost always a typo (10.0.0.1/8 for 10.0.0.0/8): refuse them
    // and name the block that was probably meant.
    cidr network = out;
    for (std::size_t i = 0; i < network.address.size(); ++i) {
        const unsigned first_bit = static_cast<unsigned>(i * 8);
        if (first_bit >= out.prefix_length) {
            network.address[i] = 0;
        } else if (out.prefix_length - first_bit < 8) {
            const unsigned keep = out.prefix_length - first_bit;
            network.address[i] &= static_cast<std::uint8_t>(0xffu << (8 - keep));
        }
    }
    if (network.address != out.address)
        return "has address bits set beyond the /" + std::to_string(out.prefix_length) +
               " prefix (did you mean " + network.to_string() + "?)";
    return out;
}

parsed<port_range> parse_port_range(std::string_view text) {
    const std::size_t dash = text.find('-');
    if (dash == std::string_view::npos || text.find('-', dash + 1) != std::string_view::npos)
        return std::string("is not a range \"lo-hi\" such as \"8000-8080\"");
    auto low = parse_port(text.substr(0, dash), false);
    auto high = parse_port(text.substr(dash + 1), false);
    if (!all_digits(text.substr(0, dash)) || !all_digits(text.substr(dash + 1)))
        return std::string("is not a range \"lo-hi\" of two port numbers such as \"8000-8080\"");
    if (std::holds_alternative<std::string>(low) || std::holds_alternative<std::string>(high))
        return std::string("has a port out of range (expected 1-65535)");
    port_range out{std::get<std::uint16_t>(low), std::get<std::uint16_t>(high)};
    if (out.low > out.high) return std::string("is reversed (write the lower port first)");
    return out;
}

parsed<upstream> parse_upstream_address(std::string_view text) {
    if (text.empty()) return std::string("is empty");
    if (has_space(text)) return std::string("contains whitespace");
    if (text.find('@') != std::string_view::npos)
        return std::string("must not contain credentials (user:password@); they are not "
                           "supported in the address");

    upstream out;
    std::string_view rest = text;
    if (const std::size_t sep = text.find("://"); sep != std::string_view::npos) {
        std::string scheme(text.substr(0, sep));
        std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                       [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; });
        if (scheme == "https")
            out.transport = upstream_transport::https;
        else if (scheme != "http")
            return "has an unsupported scheme \"" + scheme +
                   "://\" (expected host:port, http://host:port or https://host:port)";
        rest = text.substr(sep + 3);
        if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    }
    if (rest.find_first_of("/?#") != std::string_view::npos)
        return std::string("must not have a path (expected host:port, http://host:port or "
                           "https://host:port)");

    auto address = parse_endpoint(rest, false);
    if (auto* why = std::get_if<std::string>(&address)) return *why;
    out.address = std::get<endpoint>(address);
    return out;
}

} // namespace detail

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    auto result = detail::parse_duration(text);
    if (auto* value = std::get_if<std::chrono::milliseconds>(&result)) return *value;
    return std::nullopt;
}

std::string format_duration(std::chrono::milliseconds value) {
    return detail::format_duration(value);
}

std::optional<endpoint> parse_endpoint(std::string_view text, bool allow_port_zero) {
    auto result = detail::parse_endpoint(text, allow_port_zero);
    if (auto* value = std::get_if<endpoint>(&result)) return *value;
    return std::nullopt;
}

std::optional<cidr> parse_cidr(std::string_view text) {
    auto result = detail::parse_cidr(text);
    if (auto* value = std::get_if<cidr>(&result)) return *value;
    return std::nullopt;
}

} // namespace authshim::config
