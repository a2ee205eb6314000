#include "auth/basic.hpp"

#include "auth/crypto.hpp"
#include "auth/detail_text.hpp"

namespace authshim::auth {

std::string basic_authorization(std::string_view user, std::string_view password) {
    std::string plain;
    plain.reserve(user.size() + 1 + password.size());
    plain += user;
    plain += ':';
    plain += password;
    std::string out = "Basic " + detail::base64_encode(plain);
    crypto::cleanse(plain);
    return out;
}

} // namespace authshim::auth
