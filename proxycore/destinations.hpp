#pragma once
/// `access.destinations`: whether a request-target host is one the allow-list names. Names
/// match name patterns, IP literals match address blocks; authshim resolves nothing (the
/// upstream proxy does), so a name never matches a block and a literal never matches a name.
/// A host that is neither a plain DNS name nor a strict IP literal (percent-encoding, `0x7f.1`,
/// `0177.0.0.1`, `2130706433`, `127.1`, sub-delimiters) matches nothing.
/// Thread safety: pure functions.

#include "config/config.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace authshim::proxycore {

/// A request-target host as the allow-list sees it.
struct destination_host {
    enum class kind {
        name,     ///< a DNS name: lower case, one trailing dot removed
        address,  ///< an IP literal: 4 or 16 bytes
        unusable, ///< anything else: no pattern matches it
    };
    kind type = kind::unusable;
    std::string name;
    std::vector<std::uint8_t> address;
};

/// Reads `host` as `target_authority::host` holds it (IPv6 without brackets).
destination_host classify_destination(std::string_view host);

/// True when `pattern` lets `host` through.
bool destination_matches(const config::destination_pattern& pattern, const destination_host& host);

/// True when `patterns` is empty (no allow-list) or one of them matches `host`.
bool destination_allowed(const std::vector<config::destination_pattern>& patterns,
                         std::string_view host);

} // namespace authshim::proxycore
