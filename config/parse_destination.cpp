// `access.destinations` entries: host names, `*.` wildcards and address blocks, with an
// explanation for everything else.
#include "config/detail_parse.hpp"

#include "config/detail_ip.hpp"
#include "config/loader.hpp"

#include <algorithm>

namespace authshim::config {
namespace detail {
namespace {

bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; });
    return out;
}

const std::string write_host_alone = "write the host alone, such as \"crl.example.com\"";

/// Why a name (no `*`, no IP literal) is not usable, or nothing.
std::optional<std::string> name_problem(std::string_view name) {
    if (std::any_of(name.begin(), name.end(),
                    [](char c) { return static_cast<unsigned char>(c) >= 0x80; }))
        return std::string("has non-ASCII characters (write an internationalised name in its "
                           "ASCII form, e.g. \"xn--bcher-kva.example\" for \"bücher.example\")");
    if (name.find('%') != std::string_view::npos)
        return std::string("has percent-encoding (write the name in plain letters)");
    if (name.front() == '.')
        return std::string("starts with \".\" (write \"*.example.com\" for the sub-domains of "
                           "example.com and \"example.com\" for the domain itself)");
    if (name.find("..") != std::string_view::npos)
        return std::string("has an empty label (\"..\")");
    if (ends_in_number(name))
        return std::string("ends in a number, so it is not a host name, and it is not an IP "
                           "address either (IPv4 is written as four decimal numbers 0-255 "
                           "without leading zeros, such as \"10.0.0.1\"; 0177.0.0.1, 0x7f.1, "
                           "127.1 or 2130706433 are not accepted)");
    if (!is_valid_host_name(name))
        return std::string("is not a valid host name (labels of letters, digits, \"-\" and "
                           "\"_\", up to 63 characters each, separated by dots; at most 253 "
                           "characters)");
    return std::nullopt;
}

} // namespace

bool ends_in_number(std::string_view host) {
    if (!host.empty() && host.back() == '.') host.remove_suffix(1);
    const auto dot = host.rfind('.');
    const std::string_view last = dot == std::string_view::npos ? host : host.substr(dot + 1);
    if (last.empty()) return false;
    if (std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return true;
    // WHATWG URL: `0x` followed by hex digits (or nothing) is a number too.
    return last.size() >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X') &&
           std::all_of(last.begin() + 2, last.end(), is_hex);
}

parsed<destination_pattern> parse_destination(std::string_view text) {
    if (text.empty()) return std::string("is empty");
    if (std::any_of(text.begin(), text.end(), is_space)) return std::string("contains whitespace");
    if (text.find("://") != std::string_view::npos)
        return "has a scheme (" + write_host_alone + "; a pattern covers http and CONNECT alike)";
    if (text.find('@') != std::string_view::npos)
        return "has user information (\"user@\"): " + write_host_alone;
    if (text.front() == '[')
        return std::string("has brackets (write IPv6 addresses without them, such as "
                           "\"2001:db8::1\" or \"2001:db8::/32\"; ports are not part of a "
                           "pattern)");

    destination_pattern out;
    const auto slash = text.find('/');
    const std::string_view before_slash = text.substr(0, slash);
    // An address, or text meant as one (a number or a colon before any `/`): parse_cidr says
    // what is wrong with it.
    const bool looks_like_address =
        !parse_ip(before_slash).empty() ||
        (slash != std::string_view::npos &&
         (ends_in_number(before_slash) || before_slash.find(':') != std::string_view::npos));
    if (looks_like_address) {
        auto block = parse_cidr(text);
        if (auto* why = std::get_if<std::string>(&block)) return *why;
        out.type = destination_pattern::kind::address;
        out.block = std::get<cidr>(std::move(block));
        return out;
    }
    if (slash != std::string_view::npos)
        return "has a path (" + write_host_alone + ", or an address block such as \"10.0.0.0/8\")";
    if (const auto colon = text.find(':'); colon != std::string_view::npos) {
        if (text.find(':', colon + 1) == std::string_view::npos)
            return std::string("has a port (a pattern is a host only; the ports CONNECT may "
                               "reach are access.connect_ports)");
        if (text.find('%') != std::string_view::npos)
            return std::string("has an IPv6 zone ID (%...); zone IDs are not supported");
        return std::string("is not a valid IPv6 address");
    }
    if (text == "*")
        return std::string("is a lone \"*\" (to allow every destination, leave "
                           "access.destinations out)");

    std::string_view name = text;
    if (name.size() >= 2 && name[0] == '*' && name[1] == '.') {
        out.type = destination_pattern::kind::subdomains;
        name.remove_prefix(2);
        if (name.empty() || name == ".")
            return std::string("has nothing after \"*.\" (write a domain such as "
                               "\"*.example.com\")");
    }
    if (name.find('*') != std::string_view::npos)
        return std::string("has a \"*\" that is not a leading \"*.\" (\"*.example.com\" is the "
                           "only wildcard form; it covers names at any depth below "
                           "example.com)");
    if (auto why = name_problem(name)) return *why;
    if (name.back() == '.') name.remove_suffix(1); // a fully qualified name is the same host
    out.name = lower(name);
    return out;
}

} // namespace detail

std::optional<destination_pattern> parse_destination(std::string_view text) {
    auto result = detail::parse_destination(text);
    if (auto* value = std::get_if<destination_pattern>(&result)) return *value;
    return std::nullopt;
}

std::optional<std::vector<std::uint8_t>> parse_ip_address(std::string_view text) {
    auto bytes = detail::parse_ip(text);
    if (bytes.empty()) return std::nullopt;
    return bytes;
}

} // namespace authshim::config
