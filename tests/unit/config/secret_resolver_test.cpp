#include "config/secret_resolver.hpp"

#include "config/file_permissions.hpp"

#include "test_paths.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace cfg = authshim::config;
namespace fs = std::filesystem;
namespace paths = authshim::test_paths;

namespace {

/// Text that must never appear in a message.
const std::string canary = "Canary-Pa55w0rd-7f3e9a";

/// A resolver with its own environment and recorded DPAPI / Credential Manager calls.
class fake_resolver : public cfg::secret_resolver {
public:
    std::map<std::string, std::string> environment;
    mutable std::vector<std::uint8_t> last_blob;
    mutable std::string last_target;

    cfg::secret_result resolve_dpapi(std::span<const std::uint8_t> blob) const override {
        last_blob.assign(blob.begin(), blob.end());
        return cfg::secret_result::success(cfg::secret_string("from-dpapi"));
    }
    cfg::secret_result resolve_credman(const std::string& target) const override {
        last_target = target;
        if (target == "missing")
            return cfg::secret_result::failure("no Credential Manager entry \"missing\"");
        if (target == "empty") return cfg::secret_result::success(cfg::secret_string(""));
        if (target == "silent") return cfg::secret_result::failure("");
        return cfg::secret_result::success(cfg::secret_string("from-credman"));
    }
    std::optional<cfg::secret_string> read_environment(const std::string& name) const override {
        auto it = environment.find(name);
        if (it == environment.end()) return std::nullopt;
        return cfg::secret_string(it->second);
    }
};

/// A fresh directory under the system temp dir, removed at the end of the test.
class temp_dir {
public:
    temp_dir() {
        static std::atomic<int> counter{0};
        const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
        path_ = fs::temp_directory_path() /
                ("authshim-secret-test-" + std::to_string(stamp) + "-" + std::to_string(++counter));
        fs::create_directories(path_);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const fs::path& path() const { return path_; }

    /// Writes `text` to `name` with permissions `mode` (e.g. 0600).
    fs::path write(const std::string& name, const std::string& text,
                   fs::perms mode = fs::perms::owner_read | fs::perms::owner_write) const {
        const fs::path file = path_ / name;
        std::ofstream(file, std::ios::binary) << text;
        fs::permissions(file, mode);
        return file;
    }

private:
    fs::path path_;
};

constexpr auto mode_0600 = fs::perms::owner_read | fs::perms::owner_write;

cfg::secret_result resolve(const cfg::secret_ref& ref) {
    return cfg::resolve_secret(ref, fake_resolver{});
}

std::string value_of(const cfg::secret_result& result) {
    INFO("error: " << result.error);
    REQUIRE(result);
    return std::string(result.value->expose());
}

} // namespace

TEST_CASE("env: a set variable gives its value", "[secret][env]") {
    fake_resolver resolver;
    resolver.environment["AUTHSHIM_PW"] = canary;
    const auto result = cfg::resolve_secret(cfg::env_secret{"AUTHSHIM_PW"}, resolver);
    CHECK(value_of(result) == canary);
}

TEST_CASE("env: unset or empty variables are errors naming the variable", "[secret][env]") {
    fake_resolver resolver;
    resolver.environment["EMPTY_PW"] = "";
    const auto unset = cfg::resolve_secret(cfg::env_secret{"UNSET_PW"}, resolver);
    CHECK_FALSE(unset);
    CHECK(unset.error == R"(environment variable "UNSET_PW" is not set)");
    const auto empty = cfg::resolve_secret(cfg::env_secret{"EMPTY_PW"}, resolver);
    CHECK_FALSE(empty);
    CHECK(empty.error == R"(environment variable "EMPTY_PW" is empty)");
}

TEST_CASE("env: the default resolver reads the process environment", "[secret][env]") {
    const cfg::default_secret_resolver resolver;
    const char* path = std::getenv("PATH");
    if (path && *path) {
        const auto result = cfg::resolve_secret(cfg::env_secret{"PATH"}, resolver);
        CHECK(value_of(result) == path);
    }
    const auto unset =
        cfg::resolve_secret(cfg::env_secret{"AUTHSHIM_TEST_SURELY_UNSET_7f3e9a"}, resolver);
    CHECK_FALSE(unset);
    CHECK_THAT(unset.error, Catch::Contains("AUTHSHIM_TEST_SURELY_UNSET_7f3e9a"));
    CHECK_THAT(unset.error, Catch::Contains("is not set"));
}

TEST_CASE("plain: the value itself", "[secret]") {
    CHECK(value_of(resolve(cfg::plain_secret{cfg::secret_string(canary)})) == canary);
}

TEST_CASE("file: a private file gives its contents", "[secret][file]") {
    temp_dir dir;
    CHECK(value_of(resolve(cfg::file_secret{dir.write("a", canary)})) == canary);
    CHECK(value_of(resolve(cfg::file_secret{dir.write("b", canary, fs::perms::owner_read)})) ==
          canary);
    // Contents are kept byte for byte, spaces, tabs and inner line breaks included.
    CHECK(value_of(resolve(cfg::file_secret{dir.write("c", " p w\t\nx ")})) == " p w\t\nx ");
    // Through a symbolic link, the target's mode counts.
    const fs::path link = dir.path() / "link";
    std::error_code ec;
    fs::create_symlink(dir.path() / "a", link, ec);
    if (ec && !paths::posix_paths()) {
        // Windows needs a privilege (or developer mode) for symbolic links; Wine has none.
        WARN("cannot create a symbolic link here (" << ec.message()
                                                    << "): reading through a link not checked");
    } else {
        INFO("create_symlink: " << ec.message());
        REQUIRE_FALSE(ec);
        CHECK(value_of(resolve(cfg::file_secret{link})) == canary);
    }
}

TEST_CASE("file: exactly one trailing line break is removed", "[secret][file]") {
    temp_dir dir;
    const std::pair<std::string, std::string> cases[] = {
        {"pw\n", "pw"},   {"pw\r\n", "pw"},     {"pw\n\n", "pw\n"}, {"pw\r\n\r\n", "pw\r\n"},
        {"pw\r", "pw\r"}, {"pw\n\r\n", "pw\n"}, {"pw ", "pw "},     {"\npw", "\npw"},
    };
    int n = 0;
    for (const auto& [contents, expected] : cases) {
        INFO("case " << n);
        const fs::path file = dir.write("pw" + std::to_string(n++), contents);
        CHECK(value_of(resolve(cfg::file_secret{file})) == expected);
    }
}

TEST_CASE("file: refused when group or other users have access", "[secret][file]") {
    if (!cfg::secret_file_permissions_checked) {
        WARN("this platform does not check permission bits");
        return;
    }
    temp_dir dir;
    using p = fs::perms;
    const std::pair<p, std::string> cases[] = {
        {mode_0600 | p::group_read, "0640"},
        {mode_0600 | p::others_read, "0604"},
        {mode_0600 | p::group_write, "0620"},
        {p::owner_read | p::others_exec, "0401"},
        {p::all, "0777"},
    };
    for (const auto& [mode, text] : cases) {
        INFO("mode " << text);
        const fs::path file = dir.write("pw-" + text, canary + "\n", mode);
        const auto result = resolve(cfg::file_secret{file});
        CHECK_FALSE(result);
        CHECK_THAT(result.error, Catch::Contains("has mode " + text));
        CHECK_THAT(result.error, Catch::Contains("chmod 600 \"" + paths::utf8(file) + "\""));
        CHECK_THAT(result.error, !Catch::Contains(canary));
    }
}

TEST_CASE("file: missing, a directory, special, empty or too large are refused", "[secret][file]") {
    temp_dir dir;
    auto error_of = [](const fs::path& file) {
        const auto result = resolve(cfg::file_secret{file});
        CHECK_FALSE(result);
        CHECK_THAT(result.error, Catch::Contains("\"" + paths::utf8(file) + "\""));
        return result.error;
    };
    CHECK_THAT(error_of(dir.path() / "missing"), Catch::Contains("it does not exist"));
    CHECK_THAT(error_of(dir.path() / "missing" / "below"), Catch::Contains("it does not exist"));
    CHECK_THAT(error_of(dir.path()), Catch::Contains("it is a directory"));
    if (fs::exists("/dev/null"))
        CHECK_THAT(error_of("/dev/null"), Catch::Contains("it is not a regular file"));
    CHECK_THAT(error_of(dir.write("empty", "")), Catch::Contains("it is empty"));
    CHECK_THAT(error_of(dir.write("newline", "\n")), Catch::Contains("it is empty"));
    CHECK_THAT(error_of(dir.write("crlf", "\r\n")), Catch::Contains("it is empty"));
    CHECK_THAT(error_of(dir.write("large", std::string(64 * 1024 + 1, 'x'))),
               Catch::Contains("larger than 64 KiB"));
    CHECK(
        value_of(resolve(cfg::file_secret{dir.write("max", std::string(64 * 1024, 'x'))})).size() ==
        64 * 1024);
}

TEST_CASE("file: an unreadable file gives the system's reason", "[secret][file]") {
    temp_dir dir;
    const fs::path file = dir.write("locked", canary, fs::perms::none);
    if (std::ifstream(file)) {
        WARN("running with privileges that read any file: unreadable case not checked");
        return;
    }
    const auto result = resolve(cfg::file_secret{file});
    CHECK_FALSE(result);
    CHECK_THAT(result.error, Catch::Contains("Permission denied"));
}

TEST_CASE("dpapi and credman go to the platform resolver", "[secret]") {
    fake_resolver resolver;
    const auto dpapi = cfg::resolve_secret(cfg::dpapi_secret{{1, 0, 0, 0, 0xd0}}, resolver);
    CHECK(value_of(dpapi) == "from-dpapi");
    CHECK(resolver.last_blob == std::vector<std::uint8_t>{1, 0, 0, 0, 0xd0});
    const auto credman = cfg::resolve_secret(cfg::credman_secret{"authshim/corp"}, resolver);
    CHECK(value_of(credman) == "from-credman");
    CHECK(resolver.last_target == "authshim/corp");
    const auto missing = cfg::resolve_secret(cfg::credman_secret{"missing"}, resolver);
    CHECK_FALSE(missing);
    CHECK(missing.error == "no Credential Manager entry \"missing\"");
}

TEST_CASE("the default resolver says dpapi and credman need Windows", "[secret]") {
    const cfg::default_secret_resolver resolver;
    const auto dpapi = cfg::resolve_secret(cfg::dpapi_secret{{1, 2, 3}}, resolver);
    CHECK_FALSE(dpapi);
    CHECK_THAT(dpapi.error, Catch::Contains("only be decrypted on Windows"));
    const auto credman = cfg::resolve_secret(cfg::credman_secret{"t"}, resolver);
    CHECK_FALSE(credman);
    CHECK_THAT(credman.error, Catch::Contains("only available on Windows"));
}

TEST_CASE("resolve_credentials fills every password or says where it failed",
          "[secret][credentials]") {
    temp_dir dir;
    dir.write("pw", "from-file\n");
    const fs::path config_file = dir.path() / "authshim.json";
    {
        std::ofstream(config_file) << R"({
            "upstreams": [{"address": "proxy:8080", "credentials": "env"}],
            "credentials": {
                "env": {"username": "CORP\\svc", "password": {"env": "PW"}},
                "file": {"username": "u", "password": {"file": "pw"}},
                "plain": {"username": "u", "password": {"plain": "from-plain"}},
                "dpapi": {"username": "u", "password": {"dpapi": "AQID"}},
                "unset/env": {"username": "u", "password": {"env": "UNSET"}}
            }})";
    }
    auto loaded = cfg::load_file(config_file);
    REQUIRE(loaded.value);
    cfg::config c = std::move(*loaded.value);
    for (const auto& [name, entry] : c.credentials)
        CHECK(entry.password.empty()); // loading reads no secret

    fake_resolver resolver;
    resolver.environment["PW"] = "from-env";
    const auto errors = cfg::resolve_credentials(c, resolver);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].where == paths::utf8(config_file) + ": /credentials/unset~1env/password");
    CHECK(errors[0].what == R"(environment variable "UNSET" is not set)");
    CHECK(c.credentials.at("env").password.expose() == "from-env");
    CHECK(c.credentials.at("file").password.expose() == "from-file");
    CHECK(c.credentials.at("plain").password.expose() == "from-plain");
    CHECK(c.credentials.at("dpapi").password.expose() == "from-dpapi");
    CHECK(resolver.last_blob == std::vector<std::uint8_t>{1, 2, 3});
    CHECK(c.credentials.at("unset/env").password.empty());

    // Resolving again replaces what was there; a failure leaves the password empty.
    resolver.environment["PW"] = "changed";
    resolver.environment.erase("UNSET");
    c.credentials.at("plain").password_source = cfg::env_secret{"GONE"};
    const auto again = cfg::resolve_credentials(c, resolver);
    REQUIRE(again.size() == 2);
    CHECK(c.credentials.at("env").password.expose() == "changed");
    CHECK(c.credentials.at("plain").password.empty());
}

TEST_CASE("resolve_credentials with the default resolver on this platform",
          "[secret][credentials]") {
    auto loaded = cfg::load_string(R"({
            "upstreams": [{"address": "proxy:8080", "credentials": "m"}],
            "credentials": {
                "m": {"username": "u", "password": {"dpapi": "AQAAANCMnd8BFdERjHoAwE/Cl+s="}},
                "c": {"username": "u", "password": {"credman": "authshim/corp"}}
            }})",
                                   "", "/etc/authshim");
    REQUIRE(loaded.value);
    const auto errors = cfg::resolve_credentials(*loaded.value, cfg::default_secret_resolver{});
    REQUIRE(errors.size() == 2);
    CHECK(errors[0].where == "(config): /credentials/c/password");
    CHECK_THAT(errors[0].what, Catch::Contains("only available on Windows"));
    CHECK(errors[1].where == "(config): /credentials/m/password");
    CHECK_THAT(errors[1].what, Catch::Contains("only be decrypted on Windows"));
}

namespace {

/// Loads `admin` (a JSON object) beside a valid upstream, from `dir` when given.
cfg::config load_with_admin(const std::string& admin, const fs::path& base = "/etc/authshim") {
    auto loaded = cfg::load_string(
        R"({"upstreams": [{"address": "proxy:8080"}], "admin": )" + admin + "}", "", base);
    std::string all;
    for (const auto& d : loaded.errors)
        all += d.to_string() + '\n';
    INFO(admin << "\nerrors:\n" << all);
    REQUIRE(loaded.value);
    CHECK(loaded.value->admin.token.empty()); // loading reads no secret
    return std::move(*loaded.value);
}

} // namespace

TEST_CASE("resolve_credentials resolves the admin token from every source", "[secret][admin]") {
    temp_dir dir;
    dir.write("token", "from-file\n");
    fake_resolver resolver;
    resolver.environment["TOKEN"] = "from-env";
    const std::pair<std::string, std::string> cases[] = {
        {R"({"token": {"env": "TOKEN"}})", "from-env"},
        {R"({"token": {"file": "token"}})", "from-file"},
        {R"({"token": {"plain": "from-plain"}})", "from-plain"},
        {R"({"token": {"dpapi": "AQID"}})", "from-dpapi"},
        {R"({"token": {"credman": "authshim/admin"}})", "from-credman"},
        {R"({"listen": "0.0.0.0:3129", "token": {"env": "TOKEN"}})", "from-env"},
    };
    for (const auto& [admin, expected] : cases) {
        INFO(admin);
        cfg::config c = load_with_admin(admin, dir.path());
        const auto errors = cfg::resolve_credentials(c, resolver);
        CHECK(errors.empty());
        CHECK(c.admin.token.expose() == expected);
    }
}

TEST_CASE("resolve_credentials: admin token errors are at /admin/token", "[secret][admin]") {
    fake_resolver resolver;
    const std::pair<std::string, std::string> cases[] = {
        {R"({"token": {"env": "UNSET"}})", R"(environment variable "UNSET" is not set)"},
        {R"({"token": {"credman": "missing"}})", R"(no Credential Manager entry "missing")"},
        {R"({"token": {"credman": "empty"}})", "the admin token is empty"},
        {R"({"token": {"credman": "silent"}})", "the admin token could not be resolved"},
        {R"({"token": {"file": "/nonexistent/authshim-admin-token"}})", "it does not exist"},
    };
    for (const auto& [admin, expected] : cases) {
        INFO(admin);
        cfg::config c = load_with_admin(admin);
        c.admin.token = cfg::secret_string("stale"); // a failure leaves the token empty
        const auto errors = cfg::resolve_credentials(c, resolver);
        REQUIRE(errors.size() == 1);
        CHECK(errors[0].where == "(config): /admin/token");
        CHECK_THAT(errors[0].what, Catch::Contains(expected));
        CHECK(c.admin.token.empty());
    }
    resolver.environment["EMPTY"] = "";
    cfg::config c = load_with_admin(R"({"token": {"env": "EMPTY"}})");
    const auto errors = cfg::resolve_credentials(c, resolver);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].what == R"(environment variable "EMPTY" is empty)");
}

TEST_CASE("resolve_credentials: a shared token file is refused like a password file",
          "[secret][admin][file]") {
    if (!cfg::secret_file_permissions_checked) {
        WARN("this platform does not check permission bits");
        return;
    }
    temp_dir dir;
    const fs::path file = dir.write("token", canary + "\n", mode_0600 | fs::perms::group_read);
    std::ofstream(dir.path() / "authshim.json") << R"({
        "upstreams": [{"address": "proxy:8080"}],
        "admin": {"listen": "127.0.0.1:0", "token": {"file": "token"}}})";
    auto loaded = cfg::load_file(dir.path() / "authshim.json");
    REQUIRE(loaded.value);
    const auto errors = cfg::resolve_credentials(*loaded.value, fake_resolver{});
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].where == paths::utf8(dir.path() / "authshim.json") + ": /admin/token");
    CHECK_THAT(errors[0].what, Catch::Contains("has mode 0640"));
    CHECK_THAT(errors[0].what, Catch::Contains("chmod 600 \"" + paths::utf8(file) + "\""));
    CHECK_THAT(errors[0].what, !Catch::Contains(canary));
    CHECK(loaded.value->admin.token.empty());
}

TEST_CASE("resolve_credentials: no token source leaves no token", "[secret][admin]") {
    cfg::config c = load_with_admin(R"({"listen": "127.0.0.1:3129"})");
    c.admin.token = cfg::secret_string("left over");
    CHECK(cfg::resolve_credentials(c, fake_resolver{}).empty());
    CHECK(c.admin.token.empty());
}

TEST_CASE("resolve_credentials reports the token after the passwords", "[secret][admin]") {
    auto loaded = cfg::load_string(R"({
            "upstreams": [{"address": "proxy:8080", "credentials": "m"}],
            "credentials": {"m": {"username": "u", "password": {"env": "NO_PW"}}},
            "admin": {"token": {"env": "NO_TOKEN"}}})",
                                   "", "/etc/authshim");
    REQUIRE(loaded.value);
    const auto errors = cfg::resolve_credentials(*loaded.value, fake_resolver{});
    REQUIRE(errors.size() == 2);
    CHECK(errors[0].where == "(config): /credentials/m/password");
    CHECK(errors[1].where == "(config): /admin/token");
    CHECK_THAT(errors[1].what, Catch::Contains("\"NO_TOKEN\""));
}
