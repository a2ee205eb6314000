#pragma once
/// Picks which offered challenge to answer: the first scheme of the upstream's ordered
/// `schemes` list that is offered and usable, within Digest the strongest algorithm, and never
/// Basic after the upstream has offered Digest (downgrade protection). Pure function over
/// caller-owned values; thread-safe.

#include "auth/challenge.hpp"
#include "auth/digest.hpp"
#include "auth/scheme.hpp"

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <system_error>

namespace authshim::auth {

struct scheme_choice {
    /// Empty on success; else `no_supported_scheme` or `downgrade_refused`.
    std::error_code error;
    /// On error: what was offered (with why an offered Digest was unusable) and what is
    /// allowed, e.g. "offered: digest (Digest challenge with an unsupported algorithm), ntlm;
    /// allowed: digest, basic". Never holds parameter values or credentials.
    std::string message;
    scheme chosen = scheme::basic;          ///< valid on success
    std::size_t challenge_index = 0;        ///< index into the challenges passed in
    std::optional<digest_challenge> digest; ///< parsed, when `chosen` is Digest
    /// A usable Digest challenge was offered this time, whatever was chosen: the caller ORs
    /// this into its per-upstream "Digest offered before" flag.
    bool usable_digest_offered = false;
};

/// `allowed` is the upstream's ordered `schemes` list. `digest_offered_before` is that
/// upstream's flag: when set, a set of challenges without a usable Digest is not answered with
/// Basic unless `allowed` lacks digest. Unknown schemes and unusable challenges are skipped;
/// of several usable Digest challenges the strongest algorithm wins, the first on a tie (a
/// second one with the same algorithm is ignored, as curl does).
scheme_choice choose_scheme(std::span<const challenge> offered, std::span<const scheme> allowed,
                            bool digest_offered_before);

} // namespace authshim::auth
