#include "service/probe_text.hpp"

#include "auth/digest.hpp"

#include <boost/beast/http/status.hpp>

#include <algorithm>
#include <array>
#include <cstdio>

namespace authshim::service::probe_text {
namespace {

/// Parameters shown with their value: none of them carries a secret (RFC 7616 §3.3, RFC 7617).
constexpr std::array<std::string_view, 6> shown_params{"realm", "algorithm", "qop",
                                                       "stale", "charset",   "userhash"};
/// Characters of a nonce shown: enough to tell two nonces apart in the report.
constexpr std::size_t nonce_shown = 8;
/// At most this many other parameter names are listed.
constexpr std::size_t max_other_names = 8;

bool is_shown(std::string_view name) {
    return std::find(shown_params.begin(), shown_params.end(), name) != shown_params.end();
}

/// Why authshim would not answer `c` with the configured `allowed`; empty when it could.
std::string unusable_because(const auth::challenge& c, std::span<const auth::scheme> allowed) {
    const auto scheme = auth::scheme_from_name(c.scheme);
    if (!scheme) return "not supported by authshim";
    if (std::find(allowed.begin(), allowed.end(), *scheme) == allowed.end())
        return "not in the upstream's schemes";
    if (*scheme == auth::scheme::digest) {
        auth::digest_challenge parsed;
        if (const auto ec = auth::parse_digest_challenge(c, parsed))
            return "unusable: " + ec.message();
    }
    return {};
}

} // namespace

std::string printable(std::string_view text, std::size_t max) {
    std::string out;
    const bool cut = text.size() > max;
    if (cut) text = text.substr(0, max);
    out.reserve(text.size() + 3);
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        out += c < 0x20 || c == 0x7f ? '?' : ch;
    }
    if (cut) out += "...";
    return out;
}

std::string scheme_label(std::string_view lowercase_scheme) {
    if (lowercase_scheme == "basic") return "Basic";
    if (lowercase_scheme == "digest") return "Digest";
    if (lowercase_scheme == "ntlm") return "NTLM";
    if (lowercase_scheme == "negotiate") return "Negotiate";
    return printable(lowercase_scheme, 32);
}

std::string scheme_label(auth::scheme s) {
    return scheme_label(auth::scheme_name(s));
}

std::string describe_challenge(const auth::challenge& c, std::span<const auth::scheme> allowed) {
    std::string out = scheme_label(c.scheme);
    std::string params;
    const auto add = [&params](std::string_view text) {
        params += params.empty() ? " " : ", ";
        params += text;
    };
    if (c.token68) add("(token of " + std::to_string(c.token68->size()) + " characters)");
    for (const auto name : shown_params) {
        if (const std::string* value = c.param(name))
            add(std::string(name) + "=\"" + printable(*value) + "\"");
    }
    if (const std::string* nonce = c.param("nonce")) {
        const bool cut = nonce->size() > nonce_shown;
        add("nonce=\"" + printable(*nonce, nonce_shown) + "\"" +
            (cut ? " (" + std::to_string(nonce->size()) + " characters)" : std::string()));
    }
    std::string others;
    std::size_t listed = 0;
    for (const auto& p : c.params) {
        if (is_shown(p.name) || p.name == "nonce") continue;
        if (listed++ == max_other_names) {
            others += ", ...";
            break;
        }
        others += (others.empty() ? "" : ", ") + printable(p.name, 32);
    }
    if (!others.empty()) add("also: " + others);
    out += params;
    if (const auto why = unusable_because(c, allowed); !why.empty()) out += " [" + why + "]";
    return out;
}

std::string scheme_list(std::span<const auth::scheme> allowed) {
    std::string out;
    for (const auto s : allowed)
        out += (out.empty() ? "" : ", ") + std::string(auth::scheme_name(s));
    return out.empty() ? "none" : out;
}

std::string status_text(unsigned code, std::string_view reason) {
    std::string text = std::to_string(code);
    if (!reason.empty()) return text + " " + printable(reason);
    const auto standard =
        boost::beast::http::obsolete_reason(boost::beast::http::int_to_status(code));
    if (!standard.empty() && standard != "<unknown-status>")
        text += " " + std::string(standard.data(), standard.size());
    return text;
}

std::string milliseconds(std::chrono::microseconds d) {
    const auto us = std::max<std::int64_t>(d.count(), 0);
    if (us >= 100'000) return std::to_string((us + 500) / 1000) + " ms";
    std::array<char, 32> buffer{};
    std::snprintf(buffer.data(), buffer.size(), "%.1f ms", static_cast<double>(us) / 1000.0);
    return buffer.data();
}

} // namespace authshim::service::probe_text
