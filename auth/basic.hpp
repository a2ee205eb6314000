#pragma once
/// HTTP Basic authentication (RFC 7617). The result is a credential: callers keep it out of
/// logs and errors. Pure function; thread-safe.

#include <string>
#include <string_view>

namespace authshim::auth {

/// `Basic base64(user ":" password)`, both taken as UTF-8 bytes exactly as given (RFC 7617
/// charset=UTF-8). `CORP\user` style names pass through unchanged. A `:` in `user` cannot be
/// represented (the server splits at the first colon); validating that is the caller's job.
std::string basic_authorization(std::string_view user, std::string_view password);

} // namespace authshim::auth
