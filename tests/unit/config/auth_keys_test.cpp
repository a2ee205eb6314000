#include "config/loader.hpp"

#include "test_paths.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;
namespace cfg = authshim::config;
namespace fs = std::filesystem;
using authshim::test_paths::absolute;

namespace {

const std::string origin = "/etc/authshim/authshim.json";

cfg::load_result load(const std::string& text) {
    // The config directory: /etc/authshim, on Windows C:\etc\authshim.
    return cfg::load_string(text, origin, absolute("/etc/authshim"));
}

std::string all_of(const std::vector<cfg::diagnostic>& list) {
    std::string out;
    for (const auto& d : list)
        out += d.to_string() + '\n';
    return out;
}

/// One upstream using credentials "m" (with `upstream_extra` inside the upstream object) and
/// `credentials` as the credentials section.
std::string with_credentials(const std::string& credentials,
                             const std::string& upstream_extra = "") {
    return R"({"upstreams": [{"address": "proxy.corp.example:8080", "credentials": "m")" +
           upstream_extra + R"(}], "credentials": )" + credentials + "}";
}

/// Credentials "m" with the given password source.
std::string with_password(const std::string& source) {
    return with_credentials(R"({"m": {"username": "CORP\\svc", "password": )" + source + "}}");
}

std::string with_upstream(const std::string& upstream_fields, const std::string& rest = "") {
    return R"({"upstreams": [{"address": "proxy.corp.example:8080")" + upstream_fields + "}]" +
           (rest.empty() ? "" : ", " + rest) + "}";
}

struct bad_case {
    std::string text;
    std::string where; ///< JSON pointer
    std::string what;  ///< a substring of the message
};

void check_one_error(const std::vector<bad_case>& cases) {
    for (const auto& c : cases) {
        INFO("config: " << c.text);
        const auto result = load(c.text);
        CHECK_FALSE(result.value.has_value());
        INFO("errors:\n" << all_of(result.errors));
        CHECK(result.errors.size() == 1);
        if (result.errors.empty()) continue;
        CHECK(result.errors[0].where == origin + ": " + c.where);
        CHECK_THAT(result.errors[0].what, Catch::Contains(c.what));
    }
}

const cfg::credential& loaded_credential(const cfg::load_result& result) {
    INFO(all_of(result.errors));
    REQUIRE(result.value);
    REQUIRE(result.value->credentials.count("m") == 1);
    return result.value->credentials.at("m");
}

} // namespace

TEST_CASE("credentials with every secret source", "[loader][credentials]") {
    SECTION("env") {
        const auto result = load(with_password(R"({"env": "AUTHSHIM_PW"})"));
        const auto& m = loaded_credential(result);
        CHECK(m.username == "CORP\\svc");
        CHECK(m.password_source == cfg::secret_ref{cfg::env_secret{"AUTHSHIM_PW"}});
        CHECK(m.password.empty());
        CHECK(result.warnings.empty());
        CHECK(result.value->upstreams[0].credentials == "m");
    }
    SECTION("file, resolved against the config directory") {
        const auto result = load(with_password(R"({"file": "secrets/../pw.txt"})"));
        const auto& m = loaded_credential(result);
        CHECK(m.password_source ==
              cfg::secret_ref{cfg::file_secret{absolute("/etc/authshim/pw.txt")}});
        // Absolute on POSIX; root-relative on Windows, where it keeps the config directory's
        // drive.
        const auto rooted = load(with_password(R"({"file": "/run/secrets/pw"})"));
        CHECK(loaded_credential(rooted).password_source ==
              cfg::secret_ref{cfg::file_secret{absolute("/run/secrets/pw")}});
    }
    SECTION("plain, with a warning") {
        const auto result = load(with_password(R"({"plain": "hunter2"})"));
        const auto& m = loaded_credential(result);
        REQUIRE(std::holds_alternative<cfg::plain_secret>(m.password_source));
        CHECK(std::get<cfg::plain_secret>(m.password_source).value.expose() == "hunter2");
        REQUIRE(result.warnings.size() == 1);
        CHECK(result.warnings[0].where == origin + ": /credentials/m/password/plain");
        CHECK_THAT(result.warnings[0].what, Catch::Contains("plain text"));
        CHECK_THAT(result.warnings[0].what, Catch::Contains("prefer {\"env\""));
        CHECK_THAT(result.warnings[0].to_string(), !Catch::Contains("hunter2"));
    }
    SECTION("plain: the display mask is pointed out") {
        const auto result = load(with_password(R"({"plain": "********"})"));
        loaded_credential(result);
        REQUIRE(result.warnings.size() == 1);
        CHECK_THAT(result.warnings[0].what, Catch::Contains("not a real password"));
    }
    SECTION("dpapi, decoded") {
        const auto result = load(with_password(R"({"dpapi": "AQAAANCMnd8B"})"));
        const auto& m = loaded_credential(result);
        CHECK(m.password_source ==
              cfg::secret_ref{cfg::dpapi_secret{{0x01, 0, 0, 0, 0xd0, 0x8c, 0x9d, 0xdf, 0x01}}});
        CHECK(result.warnings.empty());
        CHECK(loaded_credential(load(with_password(R"({"dpapi": "AQI="})"))).password_source ==
              cfg::secret_ref{cfg::dpapi_secret{{1, 2}}});
        CHECK(loaded_credential(load(with_password(R"({"dpapi": "AQ"})"))).password_source ==
              cfg::secret_ref{cfg::dpapi_secret{{1}}});
    }
    SECTION("credman") {
        const auto result = load(with_password(R"({"credman": "authshim/corp proxy"})"));
        CHECK(loaded_credential(result).password_source ==
              cfg::secret_ref{cfg::credman_secret{"authshim/corp proxy"}});
    }
}

TEST_CASE("secret source errors", "[loader][credentials][errors]") {
    const std::string at = "/credentials/m/password";
    check_one_error({
        {with_password(R"("hunter2")"), at,
         R"(expected a secret source such as {"env": "VAR"} or {"file": "path"}, got a string)"},
        {with_password(R"("hunter2")"), at, R"(write {"plain": "..."})"},
        {with_password("42"), at, "got a number"},
        {with_password("null"), at, "got null"},
        {with_password("[]"), at, "got an empty array"},
        {with_password("{}"), at,
         R"(expected exactly one of "env", "file", "plain", "dpapi", "credman", got an empty object)"},
        {with_password(R"({"env": "A", "file": "b"})"), at,
         R"(expected exactly one of "env", "file", "plain", "dpapi", "credman", got "env", "file")"},
        {with_password(R"({"enviroment": "A"})"), at + "/enviroment",
         R"(unknown key "enviroment")"},
        {with_password(R"({"plian": "x"})"), at + "/plian", R"(did you mean "plain"?)"},
        {with_password(R"({"env": ""})"), at + "/env",
         R"(expected the name of an environment variable such as "AUTHSHIM_PASSWORD", got "")"},
        {with_password(R"({"env": 5})"), at + "/env", "got 5"},
        {with_password(R"({"env": "A=B"})"), at + "/env", "contains '='"},
        {with_password(R"({"file": ""})"), at + "/file",
         R"(expected the path of a file holding the secret such as "secrets/proxy-password", got "")"},
        {with_password(R"({"file": "secrets/"})"), at + "/file", "names a directory"},
        {with_password(R"({"file": "a\u0000b"})"), at + "/file", "NUL character"},
        {with_password(R"({"file": true})"), at + "/file", "got true"},
        {with_password(R"({"plain": ""})"), at + "/plain",
         "expected the password as a string, got an empty string"},
        {with_password(R"({"plain": 1234})"), at + "/plain",
         "expected the password as a string, got a number"},
        {with_password(R"({"dpapi": "not base64!"})"), at + "/dpapi",
         "expected a base64 DPAPI blob"},
        {with_password(R"({"dpapi": "A"})"), at + "/dpapi", "text that is not base64"},
        {with_password(R"({"dpapi": "AQ="})"), at + "/dpapi", "text that is not base64"},
        {with_password(R"({"dpapi": "AR=="})"), at + "/dpapi", "text that is not base64"},
        {with_password(R"({"dpapi": "AQID AQID"})"), at + "/dpapi", "text that is not base64"},
        {with_password(R"({"dpapi": "AQID-_"})"), at + "/dpapi", "text that is not base64"},
        {with_password(R"({"dpapi": ""})"), at + "/dpapi", "got an empty string"},
        {with_password(R"({"dpapi": "="})"), at + "/dpapi", "text that is not base64"},
        {with_password(R"({"dpapi": 7})"), at + "/dpapi", "got a number"},
        {with_password(R"({"dpapi": "<178 bytes>"})"), at + "/dpapi",
         "the masked form that the effective-configuration display shows"},
        {with_password(R"({"credman": ""})"), at + "/credman",
         "expected the target name of a Windows Credential Manager entry"},
        {with_password(R"({"credman": ["t"]})"), at + "/credman", "got an array"},
        {with_password(R"({"credman": "a\u0001"})"), at + "/credman",
         "contains a control character"},
    });
}

TEST_CASE("credentials entry errors", "[loader][credentials][errors]") {
    check_one_error({
        {with_credentials(R"({"m": {"password": {"env": "P"}}})"), "/credentials/m/username",
         R"(missing required key "username")"},
        {with_credentials(R"({"m": {"username": "", "password": {"env": "P"}}})"),
         "/credentials/m/username",
         R"(expected the user name as a non-empty string such as "CORP\\svc-proxy", got "")"},
        {with_credentials(R"({"m": {"username": 7, "password": {"env": "P"}}})"),
         "/credentials/m/username", "got 7"},
        {with_credentials(R"({"m": {"username": "a\r\nb", "password": {"env": "P"}}})"),
         "/credentials/m/username", "control character"},
        {with_credentials(R"({"m": {"username": "u"}})"), "/credentials/m/password",
         R"(missing required key "password" (expected a secret source such as {"env": "VAR"})"},
        {with_credentials(R"({"m": {"username": "u", "password": {"env": "P"}, "domain": "X"}})"),
         "/credentials/m/domain", "expected one of: username, password"},
        {with_credentials(R"({"m": "u:p"})"), "/credentials/m",
         R"(expected an object such as {"username": "CORP\\svc-proxy", "password": {"env": "VAR"}}, got a string)"},
        {R"({"upstreams": [{"address": "p:1"}], "credentials": "m"})", "/credentials",
         "expected an object of named credentials such as"},
        {R"({"upstreams": [{"address": "p:1"}], "credentials": ["m"]})", "/credentials",
         "got an array"},
    });
}

TEST_CASE("an invalid credentials name is refused", "[loader][credentials][errors]") {
    const auto result = load(R"({"upstreams": [{"address": "p:1"}],
        "credentials": {"": {"username": "u", "password": {"env": "P"}}}})");
    CHECK_FALSE(result.value);
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].where == origin + ": /credentials/");
    CHECK_THAT(result.errors[0].what, Catch::Contains("expected a credentials name"));
}

TEST_CASE("upstreams[].credentials must name an entry", "[loader][credentials][errors]") {
    check_one_error({
        {with_credentials(R"({"machine": {"username": "u", "password": {"env": "P"}},
                              "other": {"username": "u", "password": {"env": "P"}}})"),
         "/upstreams/0/credentials",
         R"(there is no "credentials" entry named "m"; known: "machine", "other")"},
        {with_upstream(R"(, "credentials": "machine")"), "/upstreams/0/credentials",
         R"(there is no "credentials" entry named "machine" (the "credentials" section is missing or empty)"},
        {with_upstream(R"(, "credentials": "machine")", R"("credentials": {})"),
         "/upstreams/0/credentials", "the \"credentials\" section is missing or empty"},
        {with_upstream(R"(, "credentials": 5)"), "/upstreams/0/credentials",
         R"(expected the name of a "credentials" entry (a string) or null, got 5)"},
    });
}

TEST_CASE("a reference to an entry with errors is not reported twice",
          "[loader][credentials][errors]") {
    const auto result = load(with_credentials(R"({"m": {"username": "u"}})"));
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].where == origin + ": /credentials/m/password");
}

TEST_CASE("credentials no upstream uses give a warning", "[loader][credentials]") {
    const auto result = load(with_credentials(R"({
        "m": {"username": "u", "password": {"env": "P"}},
        "spare": {"username": "u", "password": {"file": "pw"}}})"));
    INFO(all_of(result.errors));
    REQUIRE(result.value);
    CHECK(result.value->credentials.size() == 2);
    REQUIRE(result.warnings.size() == 1);
    CHECK(result.warnings[0].where == origin + ": /credentials/spare");
    CHECK_THAT(result.warnings[0].what,
               Catch::Contains(R"(credentials "spare" are not used by any upstream)"));

    const auto none = load(with_upstream("", R"("credentials": {
        "a": {"username": "u", "password": {"env": "P"}}})"));
    REQUIRE(none.value);
    REQUIRE(none.warnings.size() == 1);
    CHECK(none.warnings[0].where == origin + ": /credentials/a");
}

TEST_CASE("upstreams[].credentials may be null", "[loader][credentials]") {
    const auto result = load(with_upstream(R"(, "credentials": null)"));
    INFO(all_of(result.errors));
    REQUIRE(result.value);
    CHECK_FALSE(result.value->upstreams[0].credentials.has_value());
}

TEST_CASE("schemes", "[loader][schemes]") {
    using s = cfg::auth_scheme;
    const std::pair<const char*, std::vector<s>> good[] = {
        {R"(["digest", "basic"])", {s::digest, s::basic}},
        {R"(["basic", "digest"])", {s::basic, s::digest}},
        {R"(["basic"])", {s::basic}},
        {R"(["digest"])", {s::digest}},
    };
    for (const auto& [text, expected] : good) {
        INFO(text);
        const auto result = load(with_upstream(std::string(R"(, "schemes": )") + text));
        INFO(all_of(result.errors));
        REQUIRE(result.value);
        CHECK(result.value->upstreams[0].schemes == expected);
    }
}

TEST_CASE("schemes errors", "[loader][schemes][errors]") {
    const std::string at = "/upstreams/0/schemes";
    check_one_error({
        {with_upstream(R"(, "schemes": [])"), at, "expected at least one scheme"},
        {with_upstream(R"(, "schemes": "digest")"), at,
         R"(expected an array of scheme names such as ["digest", "basic"], got "digest")"},
        {with_upstream(R"(, "schemes": ["digest", "digest"])"), at + "/1",
         R"(duplicate scheme "digest" (already at /upstreams/0/schemes/0))"},
        {with_upstream(R"(, "schemes": ["basic", "digest", "basic"])"), at + "/2",
         "already at /upstreams/0/schemes/0"},
        {with_upstream(R"(, "schemes": ["ntlm"])"), at + "/0",
         R"(the "ntlm" scheme is not supported by this version of authshim yet)"},
        {with_upstream(R"(, "schemes": ["digest", "negotiate"])"), at + "/1",
         R"(the "negotiate" scheme is not supported by this version of authshim yet)"},
        {with_upstream(R"(, "schemes": ["bearer"])"), at + "/0",
         R"(expected "digest" or "basic", got "bearer")"},
        {with_upstream(R"(, "schemes": ["Digest"])"), at + "/0", R"(did you mean "digest"?)"},
        {with_upstream(R"(, "schemes": ["basci"])"), at + "/0", R"(did you mean "basic"?)"},
        {with_upstream(R"(, "schemes": [1])"), at + "/0", R"(expected "digest" or "basic", got 1)"},
    });
}

TEST_CASE("https upstreams and ca_file", "[loader][https]") {
    SECTION("https without ca_file uses the system store") {
        const auto result =
            load(R"({"upstreams": [{"address": "https://proxy.corp.example:8443"}]})");
        INFO(all_of(result.errors));
        REQUIRE(result.value);
        CHECK(result.value->upstreams[0].transport == cfg::upstream_transport::https);
        CHECK(result.value->upstreams[0].address == cfg::endpoint{"proxy.corp.example", 8443});
        CHECK_FALSE(result.value->upstreams[0].ca_file.has_value());
    }
    SECTION("ca_file is resolved against the config directory") {
        const auto result = load(
            R"({"upstreams": [{"address": "HTTPS://[2001:db8::1]:443/", "ca_file": "certs/ca.pem"}]})");
        INFO(all_of(result.errors));
        REQUIRE(result.value);
        CHECK(result.value->upstreams[0].transport == cfg::upstream_transport::https);
        CHECK(result.value->upstreams[0].ca_file == absolute("/etc/authshim/certs/ca.pem"));
    }
    SECTION("null is the default") {
        const auto result = load(R"({"upstreams": [{"address": "p:1", "ca_file": null}]})");
        REQUIRE(result.value);
        CHECK_FALSE(result.value->upstreams[0].ca_file.has_value());
    }
}

TEST_CASE("ca_file errors", "[loader][https][errors]") {
    const std::string at = "/upstreams/0/ca_file";
    check_one_error({
        {R"({"upstreams": [{"address": "proxy:8080", "ca_file": "ca.pem"}]})", at,
         R"("ca_file" is only used for TLS to the upstream proxy: write the address as https://host:port)"},
        {R"({"upstreams": [{"address": "http://proxy:8080", "ca_file": "ca.pem"}]})", at,
         "only used for TLS"},
        {R"({"upstreams": [{"address": "https://proxy:8443", "ca_file": ""}]})", at,
         R"(expected the path of a PEM file of CA certificates such as "corp-proxy-ca.pem")"},
        {R"({"upstreams": [{"address": "https://proxy:8443", "ca_file": "certs/"}]})", at,
         "names a directory"},
        {R"({"upstreams": [{"address": "https://proxy:8443", "ca_file": 1}]})", at, "got 1"},
    });
    // With an invalid address, only the address is reported.
    const auto result = load(R"({"upstreams": [{"address": "proxy", "ca_file": "ca.pem"}]})");
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].where == origin + ": /upstreams/0/address");
}

TEST_CASE("limits.replay_body", "[loader][limits]") {
    for (const std::size_t value : {std::size_t{0}, std::size_t{1}, std::size_t{67108864}}) {
        const auto result =
            load(with_upstream("", R"("limits": {"replay_body": )" + std::to_string(value) + "}"));
        INFO(all_of(result.errors));
        REQUIRE(result.value);
        CHECK(result.value->limits.replay_body == value);
    }
    const std::string expected = "expected an integer from 0 to 67108864";
    check_one_error({
        {with_upstream("", R"("limits": {"replay_body": 67108865})"), "/limits/replay_body",
         expected + ", got 67108865, which is out of range"},
        {with_upstream("", R"("limits": {"replay_body": -1})"), "/limits/replay_body",
         expected + ", got -1"},
        {with_upstream("", R"("limits": {"replay_body": 1.5})"), "/limits/replay_body",
         "not a whole number"},
        {with_upstream("", R"("limits": {"replay_body": "1MB"})"), "/limits/replay_body",
         "write the number without quotes"},
        {with_upstream("", R"("limits": {"replay_body": null})"), "/limits/replay_body",
         expected + ", got null"},
    });
}

TEST_CASE("lockout", "[loader][lockout]") {
    const std::pair<std::string, cfg::lockout_policy> good[] = {
        {R"({})", {1, std::nullopt}},
        {R"({"max_rejections": 1, "retry_after": null})", {1, std::nullopt}},
        {R"({"max_rejections": 100})", {100, std::nullopt}},
        {R"({"retry_after": "1s"})", {1, 1s}},
        {R"({"retry_after": "1000ms"})", {1, 1s}},
        {R"({"max_rejections": 3, "retry_after": "30m"})", {3, 30min}},
        {R"({"retry_after": "24h"})", {1, 24h}},
    };
    for (const auto& [text, expected] : good) {
        INFO(text);
        const auto result = load(with_upstream("", R"("lockout": )" + text));
        INFO(all_of(result.errors));
        REQUIRE(result.value);
        CHECK(result.value->lockout.max_rejections == expected.max_rejections);
        CHECK(result.value->lockout.retry_after == expected.retry_after);
    }
}

TEST_CASE("lockout errors", "[loader][lockout][errors]") {
    check_one_error({
        {with_upstream("", R"("lockout": null)"), "/lockout", "expected an object such as"},
        {with_upstream("", R"("lockout": {"max_rejections": 0})"), "/lockout/max_rejections",
         "expected an integer from 1 to 100, got 0"},
        {with_upstream("", R"("lockout": {"max_rejections": 101})"), "/lockout/max_rejections",
         "expected an integer from 1 to 100, got 101"},
        {with_upstream("", R"("lockout": {"max_rejections": "1"})"), "/lockout/max_rejections",
         "without quotes"},
        {with_upstream("", R"("lockout": {"retry_after": "999ms"})"), "/lockout/retry_after",
         R"(expected a duration from 1s to 24h, got "999ms", which is shorter than 1s)"},
        {with_upstream("", R"("lockout": {"retry_after": "25h"})"), "/lockout/retry_after",
         "which is longer than 24h"},
        {with_upstream("", R"("lockout": {"retry_after": 60})"), "/lockout/retry_after",
         "got 60, which has no unit"},
        {with_upstream("", R"("lockout": {"retry_after": "never"})"), "/lockout/retry_after",
         "or null to wait until the credential changes"},
        {with_upstream("", R"("lockout": {"retry_after": false})"), "/lockout/retry_after",
         "got false"},
        {with_upstream("", R"("lockout": {"max_rejection": 2})"), "/lockout/max_rejection",
         R"(did you mean "max_rejections"?)"},
    });
}

TEST_CASE("to_display_json masks passwords and shows references", "[display][credentials]") {
    const auto result = load(R"({
        "upstreams": [{"address": "proxy:8080", "credentials": "plain", "schemes": ["basic"]}],
        "credentials": {
            "plain": {"username": "CORP\\svc", "password": {"plain": "Canary-Pa55w0rd-7f3e9a"}},
            "env": {"username": "u", "password": {"env": "AUTHSHIM_PW"}},
            "file": {"username": "u", "password": {"file": "pw.txt"}},
            "dpapi": {"username": "u", "password": {"dpapi": "AQAAANCMnd8BFdERjHoAwE/Cl+s="}},
            "credman": {"username": "u", "password": {"credman": "authshim/corp"}}
        },
        "lockout": {"max_rejections": 2, "retry_after": "10m"}})");
    INFO(all_of(result.errors));
    REQUIRE(result.value);
    cfg::config c = *result.value;
    // A resolved password is never shown either.
    c.credentials.at("env").password = cfg::secret_string("Resolved-Canary-91c2");
    const std::string text = cfg::to_display_json(c);
    INFO(text);
    CHECK_THAT(text, !Catch::Contains("Canary"));
    CHECK_THAT(text, !Catch::Contains("AQAAANCMnd8B"));
    CHECK_THAT(text, Catch::Contains(R"("plain": "********")"));
    CHECK_THAT(text, Catch::Contains(R"("env": "AUTHSHIM_PW")"));
    const auto pw_file = absolute("/etc/authshim/pw.txt");
    CHECK_THAT(text, Catch::Contains(R"("file": )" + authshim::test_paths::json_string(pw_file)));
    CHECK_THAT(text, Catch::Contains(R"("dpapi": "<20 bytes>")"));
    CHECK_THAT(text, Catch::Contains(R"("credman": "authshim/corp")"));
    CHECK_THAT(text, Catch::Contains(R"("username": "CORP\\svc")"));
    CHECK_THAT(text, Catch::Contains(R"("credentials": "plain")"));
    CHECK_THAT(text, Catch::Contains("\"schemes\": [\n        \"basic\"\n      ]"));
    CHECK_THAT(text, Catch::Contains(R"("max_rejections": 2)"));
    CHECK_THAT(text, Catch::Contains(R"("retry_after": "10m")"));

    // Loading the display again refuses only the masked DPAPI blob, and says why.
    const auto again = load(text);
    REQUIRE(again.errors.size() == 1);
    CHECK(again.errors[0].where == origin + ": /credentials/dpapi/password/dpapi");
    CHECK_THAT(again.errors[0].what, Catch::Contains("masked form"));
}
