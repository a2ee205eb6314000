#include "proxycore/destinations.hpp"

#include "config/loader.hpp"

#include <algorithm>

namespace authshim::proxycore {
namespace {

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/// The same rules as host names in the config: labels of [a-z0-9_-], 1-63 characters, not
/// starting or ending with `-`; at most 253 characters; the last label not a number.
bool is_plain_name(std::string_view name) {
    if (name.empty() || name.size() > 253) return false;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= name.size(); ++i) {
        if (i < name.size() && name[i] != '.') {
            if (!is_name_char(name[i])) return false;
            continue;
        }
        const auto label = name.substr(start, i - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
            return false;
        start = i + 1;
    }
    const auto last = name.substr(name.rfind('.') + 1); // npos + 1 == 0: the whole name
    const bool digits =
        std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; });
    // `0x..` ends a legacy IPv4 spelling (WHATWG URL); hex digits are name characters.
    const bool hex = last.size() >= 2 && last[0] == '0' && last[1] == 'x' &&
                     std::all_of(last.begin() + 2, last.end(), [](char c) {
                         return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                     });
    return !digits && !hex;
}

} // namespace

destination_host classify_destination(std::string_view host) {
    destination_host out;
    if (host.find(':') != std::string_view::npos) {
        // A bracketed IPv6 literal (the brackets are gone by now).
        if (auto bytes = config::parse_ip_address(host)) {
            out.type = destination_host::kind::address;
            out.address = std::move(*bytes);
        }
        return out;
    }
    if (auto bytes = config::parse_ip_address(host)) {
        out.type = destination_host::kind::address;
        out.address = std::move(*bytes);
        return out;
    }
    std::string name(host);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; });
    if (!name.empty() && name.back() == '.') name.pop_back(); // `example.com.` is example.com
    // Whatever else the upstream might make of it (`0x7f.1`, `10.1`, `ex%61mple.com`, a
    // trailing-dot IPv4 literal), it is no name a pattern can mean: it matches nothing.
    if (!is_plain_name(name)) return out;
    out.type = destination_host::kind::name;
    out.name = std::move(name);
    return out;
}

bool destination_matches(const config::destination_pattern& pattern, const destination_host& host) {
    using kind = config::destination_pattern::kind;
    switch (pattern.type) {
    case kind::host:
        return host.type == destination_host::kind::name && host.name == pattern.name;
    case kind::subdomains:
        // At least one label before `.example.com`: `a.example.com`, `a.b.example.com`; not
        // `example.com` itself, nor `evil-example.com`.
        return host.type == destination_host::kind::name &&
               host.name.size() > pattern.name.size() + 1 && host.name.ends_with(pattern.name) &&
               host.name[host.name.size() - pattern.name.size() - 1] == '.';
    case kind::address:
        // IPv4-mapped IPv6 literals (`[::ffff:10.0.0.1]`) are the IPv4 address they carry.
        return host.type == destination_host::kind::address && pattern.block.contains(host.address);
    }
    return false;
}

bool destination_allowed(const std::vector<config::destination_pattern>& patterns,
                         std::string_view host) {
    if (patterns.empty()) return true;
    const auto classified = classify_destination(host);
    if (classified.type == destination_host::kind::unusable) return false;
    return std::any_of(patterns.begin(), patterns.end(),
                       [&](const auto& p) { return destination_matches(p, classified); });
}

} // namespace authshim::proxycore
