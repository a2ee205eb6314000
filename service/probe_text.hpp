#pragma once
/// Text of `authshim probe`'s report: offered challenges without their secrets, status lines,
/// durations, and untrusted text from the wire made safe for a terminal.
/// Thread safety: pure functions.

#include "auth/challenge.hpp"
#include "auth/scheme.hpp"

#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace authshim::service::probe_text {

/// `text` with control characters (and DEL) replaced by `?`, cut to at most `max` bytes (then
/// `...` is appended). For values from the wire and from the config.
std::string printable(std::string_view text, std::size_t max = 80);

/// `Basic`, `Digest`, `NTLM`, `Negotiate`, or the (lowercased) scheme as received, printable.
std::string scheme_label(std::string_view lowercase_scheme);

/// `Digest` / `Basic` for a scheme authshim answers with.
std::string scheme_label(auth::scheme s);

/// One offered challenge, with the parameters that are not secret (realm, algorithm, qop,
/// stale, charset, userhash) as received, the nonce shortened to its first 8 characters and
/// its length, and only the names of other parameters. A token68 (NTLM, Negotiate) is shown
/// as its length. Then, in brackets, why authshim would not answer it: a scheme it does not
/// implement, one missing from `allowed`, or an unusable Digest challenge.
std::string describe_challenge(const auth::challenge& c, std::span<const auth::scheme> allowed);

/// `digest, basic`: the configured `schemes` list.
std::string scheme_list(std::span<const auth::scheme> allowed);

/// `407 Proxy Authentication Required`: the reason as received (printable), else the
/// standard one for the code.
std::string status_text(unsigned code, std::string_view reason);

/// `3 ms`, `0.4 ms`, `12.5 ms`, `1234 ms`: one decimal below 100 ms.
std::string milliseconds(std::chrono::microseconds d);

} // namespace authshim::service::probe_text
