#include "config/loader.hpp"

#include "config/file_permissions.hpp"
#include "config/secret_resolver.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

// A distinctive password is put everywhere a password can be written, right and wrong; it must
// never come back in a diagnostic or in the displayed configuration.

namespace cfg = authshim::config;
namespace fs = std::filesystem;

namespace {

const std::string canary = "Canary-Pa55w0rd-7f3e9a";
const std::string number_canary = "918273645";

std::string upstream_using_m(const std::string& rest) {
    return R"({"upstreams": [{"address": "proxy.corp.example:8080", "credentials": "m"}], )" +
           rest + "}";
}

/// An admin endpoint on a non-loopback address (which needs a token) with `source` as the token.
std::string with_token(const std::string& source) {
    return R"({"upstreams": [{"address": "p:1"}], "listen": ["127.0.0.1:3128"], "admin": {"listen": "0.0.0.0:3129", "token": )" +
           source + "}}";
}

std::string with_password(const std::string& source) {
    return upstream_using_m(R"("credentials": {"m": {"username": "u", "password": )" + source +
                            "}}");
}

/// Everything a load says, plus the display of what it loaded.
std::string everything_said(const cfg::load_result& result) {
    std::string out;
    for (const auto& d : result.errors)
        out += d.to_string() + '\n';
    for (const auto& d : result.warnings)
        out += d.to_string() + '\n';
    if (result.value) out += cfg::to_display_json(*result.value);
    return out;
}

void check_never_said(const std::vector<std::string>& texts, bool expect_errors) {
    for (const auto& text : texts) {
        INFO("config: " << text);
        const auto result = cfg::load_string(text, "/etc/authshim/authshim.json", "/etc/authshim");
        const std::string said = everything_said(result);
        INFO("said:\n" << said);
        CHECK(result.errors.empty() != expect_errors);
        CHECK(said.find(canary) == std::string::npos);
        CHECK(said.find("Canary") == std::string::npos);
        CHECK(said.find(number_canary) == std::string::npos);
    }
}

} // namespace

TEST_CASE("a password never appears in a load error", "[canary]") {
    const std::string c = canary;
    check_never_said(
        {
            with_password('"' + c + '"'),
            with_password(R"({"plain": ")" + c + R"(", "env": "X"})"),
            with_password(R"({"plian": ")" + c + R"("})"),
            with_password(R"({"PLAIN": ")" + c + R"("})"),
            with_password(R"({"plain": [")" + c + R"("]})"),
            with_password(R"({"plain": {"x": ")" + c + R"("}})"),
            with_password(R"({"plain": )" + number_canary + "}"),
            with_password(number_canary),
            with_password(R"([")" + c + R"("])"),
            with_password(R"({"plain": ")" + c + R"(", "plain": "x"})"),
            with_password(R"({"plain": ")" + c + R"("}, "password": {"plain": ")" + c + R"("})"),
            with_password(R"({"dpapi": ")" + c + R"("})"),
            with_password(R"({"dpapi": )" + number_canary + "}"),
            with_password(R"({"plain": ")" + c + R"(\q"})"),      // a syntax error inside it
            with_password(R"({"plain": ")" + c + R"(\u12"})"),    // a bad escape
            with_password(R"({"plain": ")" + c + "\n" + R"("})"), // a raw control character
            R"({"upstreams": [{"address": "p:1"}], "credentials": {"m": {"password": {"plain": ")" +
                c + R"("}}}})",
            R"({"upstreams": [{"address": "p:1", "credentials": "m"}], "credentials": {"m": {"username": "u", "password": {"plain": ")" +
                c, // cut off mid-string
            upstream_using_m(R"("credentials": {"m": ")" + c + R"("})"),
            upstream_using_m(R"("credentials": {"m": [")" + c + R"("]})"),
            upstream_using_m(R"("credentials": {"m": )" + number_canary + "}"),
            upstream_using_m(R"("credentials": ")" + c + R"(")"),
            upstream_using_m(R"("credentials": )" + number_canary),
            upstream_using_m(R"("credentials": {"m": {"username": "u", "password": {"plain": ")" +
                             c + R"("}}}, "colour": "blue", "lockout": {"max_rejections": 0})"),
            R"({"upstreams": [{"address": "http://svc:)" + c + R"(@proxy:8080"}]})",
            with_token('"' + c + '"'),
            with_token(number_canary),
            with_token(R"([")" + c + R"("])"),
            with_token(R"({"plain": ")" + c + R"(", "env": "X"})"),
            with_token(R"({"plian": ")" + c + R"("})"),
            with_token(R"({"plain": [")" + c + R"("]})"),
            with_token(R"({"plain": )" + number_canary + "}"),
            with_token(R"({"dpapi": ")" + c + R"("})"),
            with_token(R"({"plain": ")" + c + R"(\q"})"), // a syntax error inside it
            with_token(R"({"plain": ")" + c + R"("}, "token": {"plain": ")" + c + R"("})"),
            // A valid plain token beside other errors: the default admin address taken by
            // `listen`, and an unknown key holding the token.
            R"({"upstreams": [{"address": "p:1"}], "listen": ["127.0.0.1:3129"], "admin": {"token": {"plain": ")" +
                c + R"("}, "tokn": ")" + c + R"("}})",
        },
        true);
}

TEST_CASE("a password never appears in warnings or the display", "[canary]") {
    check_never_said(
        {
            with_password(R"({"plain": ")" + canary + R"("})"),
            with_password(R"({"plain": ")" + canary + R"(\u0001"})"),
            R"({"upstreams": [{"address": "p:1"}], "credentials": {"m": {"username": "u", "password": {"plain": ")" +
                canary + R"("}}}})", // unused: a warning names the entry only
            with_token(R"({"plain": ")" + canary + R"("})"),
            R"({"upstreams": [{"address": "p:1"}], "admin": {"listen": null, "token": {"plain": ")" +
                canary + R"("}}})", // unused: a warning says so
        },
        false);
}

TEST_CASE("a password never appears in a resolution error", "[canary]") {
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    const fs::path dir = fs::temp_directory_path() / ("authshim-canary-" + std::to_string(stamp));
    fs::create_directories(dir);
    struct cleanup {
        fs::path path;
        ~cleanup() {
            std::error_code ec;
            fs::remove_all(path, ec);
        }
    } remove_dir{dir};

    // Readable by everyone: refused (where permission bits exist), contents not shown.
    std::ofstream(dir / "shared") << canary << '\n';
    fs::permissions(dir / "shared", fs::perms::owner_read | fs::perms::owner_write |
                                        fs::perms::group_read | fs::perms::others_read);
    std::ofstream(dir / "config.json") << R"({
        "upstreams": [{"address": "p:1", "credentials": "file"}],
        "credentials": {
            "file": {"username": "u", "password": {"file": "shared"}},
            "dpapi": {"username": "u", "password": {"dpapi": "AQID"}},
            "credman": {"username": "u", "password": {"credman": "t"}},
            "env": {"username": "u", "password": {"env": "AUTHSHIM_CANARY_SURELY_UNSET"}}
        },
        "admin": {"token": {"file": "shared"}}})";
    auto loaded = cfg::load_file(dir / "config.json");
    REQUIRE(loaded.value);
    const auto errors = cfg::resolve_credentials(*loaded.value, cfg::default_secret_resolver{});
    // The password file and the token file are refused where permission bits are checked.
    CHECK(errors.size() == (cfg::secret_file_permissions_checked ? 5u : 3u));
    std::string said;
    for (const auto& d : errors)
        said += d.to_string() + '\n';
    INFO(said);
    CHECK(said.find("Canary") == std::string::npos);
    CHECK(cfg::to_display_json(*loaded.value).find("Canary") == std::string::npos);
}
