#include "auth/errors.hpp"

#include <string>

namespace authshim::auth {
namespace {

class category final : public std::error_category {
public:
    const char* name() const noexcept override { return "authshim.auth"; }
    std::string message(int value) const override {
        switch (static_cast<auth_errc>(value)) {
        case auth_errc::malformed_challenge:
            return "malformed authentication challenge";
        case auth_errc::challenge_too_large:
            return "authentication challenge exceeds the parser's limits";
        case auth_errc::malformed_authentication_info:
            return "malformed Proxy-Authentication-Info";
        case auth_errc::no_supported_scheme:
            return "no supported and allowed authentication scheme offered";
        case auth_errc::downgrade_refused:
            return "refused to answer Basic after the upstream offered Digest";
        case auth_errc::digest_missing_nonce:
            return "Digest challenge without a nonce";
        case auth_errc::digest_unsupported_algorithm:
            return "Digest challenge with an unsupported algorithm";
        case auth_errc::digest_unsupported_qop:
            return "Digest challenge with an unsupported qop";
        case auth_errc::digest_body_required:
            return "Digest qop=auth-int needs the request body";
        case auth_errc::digest_nonce_exhausted:
            return "Digest nonce count exhausted";
        case auth_errc::invalid_header_value:
            return "value cannot be sent in a header (control characters)";
        case auth_errc::crypto_failure:
            return "cryptographic primitive unavailable or failed";
        }
        return "unknown authentication error";
    }
};

} // namespace

const std::error_category& auth_category() noexcept {
    static const category instance;
    return instance;
}

} // namespace authshim::auth
