#include "auth/scheme_choice.hpp"

#include "auth/errors.hpp"

#include <algorithm>
#include <string_view>
#include <vector>

namespace authshim::auth {
namespace {

// Scheme names come from the wire: bound what goes into a message.
constexpr std::size_t max_listed_schemes = 8;
constexpr std::size_t max_listed_name = 32;

bool contains(std::span<const scheme> allowed, scheme s) {
    return std::find(allowed.begin(), allowed.end(), s) != allowed.end();
}

std::string allowed_list(std::span<const scheme> allowed) {
    std::string out;
    for (scheme s : allowed) {
        if (!out.empty()) out += ", ";
        out += scheme_name(s);
    }
    return out.empty() ? "none" : out;
}

/// "digest (why unusable), ntlm, basic": each scheme once, in order of appearance.
std::string offered_list(std::span<const challenge> offered,
                         const std::vector<std::error_code>& digest_errors) {
    std::vector<std::string_view> seen;
    std::string out;
    for (std::size_t i = 0; i < offered.size(); ++i) {
        const std::string_view name = offered[i].scheme;
        if (std::find(seen.begin(), seen.end(), name) != seen.end()) continue;
        if (seen.size() == max_listed_schemes) {
            out += ", ...";
            break;
        }
        seen.push_back(name);
        if (!out.empty()) out += ", ";
        out += name.substr(0, max_listed_name);
        if (name.size() > max_listed_name) out += "...";
        if (name == "digest" && digest_errors[i]) out += " (" + digest_errors[i].message() + ")";
    }
    return out.empty() ? "none" : out;
}

} // namespace

scheme_choice choose_scheme(std::span<const challenge> offered, std::span<const scheme> allowed,
                            bool digest_offered_before) {
    scheme_choice result;
    // Parse every Digest challenge once; remember the strongest usable one.
    std::vector<std::error_code> digest_errors(offered.size());
    std::optional<std::size_t> best_digest;
    std::optional<digest_challenge> best;
    std::optional<std::size_t> first_basic;
    for (std::size_t i = 0; i < offered.size(); ++i) {
        if (offered[i].scheme == "basic") {
            if (!first_basic) first_basic = i;
            continue;
        }
        if (offered[i].scheme != "digest") continue;
        digest_challenge d;
        digest_errors[i] = parse_digest_challenge(offered[i], d);
        if (digest_errors[i]) continue;
        if (!best ||
            digest_algorithm_strength(d.algorithm) > digest_algorithm_strength(best->algorithm)) {
            best_digest = i;
            best = std::move(d);
        }
    }
    result.usable_digest_offered = best.has_value();

    for (scheme s : allowed) {
        if (s == scheme::digest && best) {
            result.chosen = scheme::digest;
            result.challenge_index = *best_digest;
            result.digest = std::move(best);
            return result;
        }
        if (s == scheme::basic && first_basic) {
            if (digest_offered_before && !best && contains(allowed, scheme::digest)) {
                result.error = auth_errc::downgrade_refused;
                result.message = "upstream offered Digest before and now offers: " +
                                 offered_list(offered, digest_errors) +
                                 "; Basic refused (allowed: " + allowed_list(allowed) + ")";
                return result;
            }
            result.chosen = scheme::basic;
            result.challenge_index = *first_basic;
            return result;
        }
    }
    result.error = auth_errc::no_supported_scheme;
    result.message =
        "offered: " + offered_list(offered, digest_errors) + "; allowed: " + allowed_list(allowed);
    return result;
}

} // namespace authshim::auth
