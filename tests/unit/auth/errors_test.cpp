#include "auth/errors.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string>

using namespace authshim::auth;

TEST_CASE("errors: every code has its own message in the auth category", "[errors]") {
    std::set<std::string> messages;
    for (int v = static_cast<int>(auth_errc::malformed_challenge);
         v <= static_cast<int>(auth_errc::crypto_failure); ++v) {
        const std::error_code ec = make_error_code(static_cast<auth_errc>(v));
        CHECK(ec.category().name() == std::string("authshim.auth"));
        messages.insert(ec.message());
    }
    CHECK(messages.size() == 12);
    CHECK(messages.count("unknown authentication error") == 0);
    const std::error_code ec = auth_errc::downgrade_refused;
    CHECK(ec == auth_errc::downgrade_refused);
    CHECK(ec != auth_errc::no_supported_scheme);
}
