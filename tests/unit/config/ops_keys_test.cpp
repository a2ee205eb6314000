#include "config/loader.hpp"

#include "test_paths.hpp"

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

// The keys of issue 6: `admin.listen`, `admin.token` and `log.access`.

namespace cfg = authshim::config;
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

/// A valid upstream plus `rest` (members of the top-level object).
std::string with_upstream(const std::string& rest) {
    return R"({"upstreams": [{"address": "proxy.corp.example:8080"}], )" + rest + "}";
}

std::string with_admin(const std::string& admin) {
    return with_upstream(R"("admin": )" + admin);
}

std::string with_access_log(const std::string& access) {
    return with_upstream(R"("log": {"access": )" + access + "}");
}

cfg::config load_ok(const std::string& text) {
    const auto result = load(text);
    INFO("config: " << text << "\nerrors:\n" << all_of(result.errors));
    REQUIRE(result.value);
    return *result.value;
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

} // namespace

TEST_CASE("admin.listen defaults to 127.0.0.1:3129", "[loader][admin]") {
    for (const std::string& text :
         {with_upstream(R"("log": {})"), with_admin("{}"), with_admin(R"({"token": null})")}) {
        INFO(text);
        const auto result = load(text);
        INFO(all_of(result.errors));
        REQUIRE(result.value);
        CHECK(result.warnings.empty());
        REQUIRE(result.value->admin.listen);
        CHECK(*result.value->admin.listen == cfg::endpoint{"127.0.0.1", 3129});
        CHECK_FALSE(result.value->admin.token_source);
    }
}

TEST_CASE("admin.listen null: no admin endpoint", "[loader][admin]") {
    const auto c = load_ok(with_admin(R"({"listen": null})"));
    CHECK_FALSE(c.admin.listen);
    CHECK_FALSE(c.admin.token_source);
    // Then the default admin address is free for the proxy.
    const auto d =
        load_ok(with_upstream(R"("listen": ["127.0.0.1:3129"], "admin": {"listen": null})"));
    CHECK(d.listen == std::vector<cfg::endpoint>{{"127.0.0.1", 3129}});
}

TEST_CASE("admin.listen forms", "[loader][admin]") {
    const std::pair<std::string, cfg::endpoint> loopback[] = {
        {"127.0.0.1:3129", {"127.0.0.1", 3129}},
        {"127.0.0.1:0", {"127.0.0.1", 0}}, // ephemeral, for tests
        {"127.9.8.7:80", {"127.9.8.7", 80}},
        {"[::1]:3129", {"::1", 3129}},
        {"[0:0::1]:1", {"::1", 1}}, // canonical text
        {"[::ffff:127.0.0.1]:9", {"::ffff:127.0.0.1", 9}},
    };
    for (const auto& [text, expected] : loopback) {
        INFO(text);
        const auto result = load(with_admin(R"({"listen": ")" + text + R"("})"));
        INFO(all_of(result.errors));
        REQUIRE(result.value);
        CHECK(result.warnings.empty());
        REQUIRE(result.value->admin.listen);
        CHECK(*result.value->admin.listen == expected);
        CHECK_FALSE(result.value->admin.token_source);
    }

    // Anything else needs a token.
    const std::pair<std::string, cfg::endpoint> remote[] = {
        {"0.0.0.0:3129", {"0.0.0.0", 3129}},
        {"192.0.2.1:8080", {"192.0.2.1", 8080}},
        {"[::]:3129", {"::", 3129}},
        {"[2001:db8::1]:0", {"2001:db8::1", 0}},
    };
    for (const auto& [text, expected] : remote) {
        INFO(text);
        const auto c = load_ok(with_admin(R"({"listen": ")" + text +
                                          R"(", "token": {"env": "AUTHSHIM_ADMIN_TOKEN"}})"));
        REQUIRE(c.admin.listen);
        CHECK(*c.admin.listen == expected);
        CHECK(c.admin.token_source == cfg::secret_ref{cfg::env_secret{"AUTHSHIM_ADMIN_TOKEN"}});
    }
}

TEST_CASE("admin.listen may share a port or an address with listen, not both", "[loader][admin]") {
    const char* fine[] = {
        R"("listen": ["127.0.0.1:3128"], "admin": {"listen": "127.0.0.2:3128"})",
        R"("listen": ["127.0.0.1:3128"], "admin": {"listen": "127.0.0.1:3130"})",
        R"("listen": ["127.0.0.1:3128"], "admin": {"listen": "[::1]:3128"})",
        R"("listen": ["127.0.0.1:0"], "admin": {"listen": "127.0.0.1:0"})",
        R"("listen": ["[::]:3129"], "access": {"clients": ["::1"]})", // another family
        R"("listen": ["127.0.0.1:3130"])",
    };
    for (const char* text : fine) {
        INFO(text);
        CHECK(load_ok(with_upstream(text)).admin.listen.has_value());
    }
}

TEST_CASE("admin.token accepts every secret source", "[loader][admin]") {
    SECTION("env, file, dpapi, credman") {
        const std::pair<std::string, cfg::secret_ref> cases[] = {
            {R"({"env": "AUTHSHIM_ADMIN_TOKEN"})", cfg::env_secret{"AUTHSHIM_ADMIN_TOKEN"}},
            {R"({"file": "secrets/admin-token"})",
             cfg::file_secret{absolute("/etc/authshim/secrets/admin-token")}},
            {R"({"file": "/run/secrets/token"})", cfg::file_secret{absolute("/run/secrets/token")}},
            {R"({"dpapi": "AQID"})", cfg::dpapi_secret{{1, 2, 3}}},
            {R"({"credman": "authshim/admin"})", cfg::credman_secret{"authshim/admin"}},
        };
        for (const auto& [source, expected] : cases) {
            INFO(source);
            const auto result = load(with_admin(R"({"token": )" + source + "}"));
            INFO(all_of(result.errors));
            REQUIRE(result.value);
            CHECK(result.warnings.empty());
            REQUIRE(result.value->admin.token_source);
            CHECK(*result.value->admin.token_source == expected);
            CHECK(result.value->admin.token.empty()); // loading reads no secret
        }
    }
    SECTION("plain, with a warning") {
        const auto result = load(with_admin(R"({"token": {"plain": "t0ken"}})"));
        INFO(all_of(result.errors));
        REQUIRE(result.value);
        REQUIRE(result.value->admin.token_source);
        CHECK(*result.value->admin.token_source ==
              cfg::secret_ref{cfg::plain_secret{cfg::secret_string("t0ken")}});
        REQUIRE(result.warnings.size() == 1);
        CHECK(result.warnings[0].where == origin + ": /admin/token/plain");
        CHECK_THAT(result.warnings[0].what,
                   Catch::Contains("the token is written in plain text in the configuration file"));
        CHECK_THAT(result.warnings[0].what, !Catch::Contains("t0ken"));
    }
    SECTION("plain, with the display's mask") {
        const auto result = load(with_admin(R"({"token": {"plain": "********"}})"));
        REQUIRE(result.value);
        REQUIRE(result.warnings.size() == 1);
        CHECK_THAT(result.warnings[0].what,
                   Catch::Contains("not a real token: copy the original \"token\" instead"));
    }
    SECTION("a token without an admin endpoint is unused") {
        const auto result = load(with_admin(R"({"listen": null, "token": {"env": "T"}})"));
        INFO(all_of(result.errors));
        REQUIRE(result.value);
        CHECK_FALSE(result.value->admin.listen);
        REQUIRE(result.warnings.size() == 1);
        CHECK(result.warnings[0].where == origin + ": /admin/token");
        CHECK_THAT(result.warnings[0].what, Catch::Contains("the token is not used"));
    }
}

TEST_CASE("admin errors", "[loader][admin][errors]") {
    const std::string expected =
        R"(expected an IP address and port such as "127.0.0.1:3129" or "[::1]:3129", or null for no admin endpoint, got )";
    const std::string needs_token = "is not a loopback address, so \"admin.token\" is required: "
                                    "the admin endpoint can reload the configuration and shows "
                                    "traffic counters; give a token";
    check_one_error({
        {with_admin("null"), "/admin",
         R"(expected an object such as {"listen": "127.0.0.1:3129"} or {"listen": null}, got null)"},
        {with_admin(R"("127.0.0.1:3129")"), "/admin", R"(got "127.0.0.1:3129")"},
        {with_admin(R"({"listen": 3129})"), "/admin/listen", expected + "3129"},
        {with_admin(R"({"listen": true})"), "/admin/listen", expected + "true"},
        {with_admin(R"({"listen": ["127.0.0.1:3129"]})"), "/admin/listen", expected + "an array"},
        {with_admin(R"({"listen": ""})"), "/admin/listen", R"(got "", which is empty)"},
        {with_admin(R"({"listen": "localhost:3129"})"), "/admin/listen",
         "which has a host name: admin addresses must be IP addresses"},
        {with_admin(R"({"listen": "127.0.0.1"})"), "/admin/listen", "which has no port"},
        {with_admin(R"({"listen": "127.0.0.1:65536"})"), "/admin/listen", "port out of range"},
        {with_admin(R"({"listen": "::1:3129"})"), "/admin/listen", "without brackets"},
        {with_admin(R"({"listen": "0.0.0.0:3129"})"), "/admin/listen",
         "admin address \"0.0.0.0:3129\" " + needs_token},
        {with_admin(R"({"listen": "192.0.2.1:3129", "token": null})"), "/admin/listen",
         needs_token},
        {with_admin(R"({"listen": "[::]:0"})"), "/admin/listen", needs_token},
        {with_admin(R"({"listen": "[2001:db8::1]:3129"})"), "/admin/listen",
         R"(or listen on a loopback address such as "127.0.0.1:3129")"},
        {with_admin(R"({"listn": "127.0.0.1:3129"})"), "/admin/listn",
         R"(unknown key "listn" (did you mean "listen"?); expected one of: listen, token)"},
        {with_admin(R"({"listen": null, "tokn": {}})"), "/admin/tokn", R"(did you mean "token"?)"},
        {with_admin(R"({"listen": null, "metrics": true})"), "/admin/metrics",
         "expected one of: listen, token"},
    });
}

TEST_CASE("admin.listen must not take a listen address", "[loader][admin][errors]") {
    check_one_error({
        {with_upstream(R"("listen": ["127.0.0.1:3128"], "admin": {"listen": "127.0.0.1:3128"})"),
         "/admin/listen",
         R"(admin address "127.0.0.1:3128" is also a listen address (at /listen/0): the proxy and the admin endpoint need their own ports)"},
        {with_upstream(
             R"("listen": ["127.0.0.1:1", "[::1]:3128"], "admin": {"listen": "[0::1]:3128"})"),
         "/admin/listen", R"(is also a listen address (at /listen/1))"},
        {with_admin(R"({"listen": "127.0.0.1:3128"})"), "/admin/listen",
         R"(is also a listen address (the default of "listen"))"},
        {with_upstream(
             R"("listen": ["0.0.0.0:3128"], "access": {"clients": ["10.0.0.0/8"]}, "admin": {"listen": "127.0.0.1:3128"})"),
         "/admin/listen",
         R"(admin address "127.0.0.1:3128" overlaps listen address "0.0.0.0:3128" (at /listen/0; a wildcard address covers every address of its family on that port))"},
        {with_upstream(
             R"("listen": ["127.0.0.1:3128"], "admin": {"listen": "0.0.0.0:3128", "token": {"env": "T"}})"),
         "/admin/listen", R"(overlaps listen address "127.0.0.1:3128")"},
        // The default admin address is taken by the proxy: said where the proxy's is written.
        {with_upstream(R"("listen": ["127.0.0.1:3129"])"), "/listen/0",
         R"(listen address "127.0.0.1:3129" is also the admin endpoint's default address "127.0.0.1:3129"; choose another port, or move the admin endpoint)"},
        // An `admin` of the wrong type is reported once, not also as taking the default.
        {with_upstream(R"("listen": ["127.0.0.1:3129"], "admin": "127.0.0.1:3130")"), "/admin",
         R"(expected an object such as {"listen": "127.0.0.1:3129"})"},
        {with_upstream(
             R"("listen": ["127.0.0.1:1", "0.0.0.0:3129"], "access": {"clients": ["::1"]}, "admin": {})"),
         "/listen/1", R"(overlaps the admin endpoint's default address "127.0.0.1:3129")"},
    });
}

TEST_CASE("admin.token errors never quote the value", "[loader][admin][errors]") {
    const std::string at = "/admin/token";
    check_one_error({
        {with_admin(R"({"token": "hunter2"})"), at,
         R"(expected a secret source such as {"env": "VAR"} or {"file": "path"}, got a string (to keep the token in this file write {"plain": "..."})"},
        // The token's own error only: a non-loopback address does not also ask for a token.
        {with_admin(R"({"listen": "0.0.0.0:3129", "token": "hunter2"})"), at, "got a string"},
        {with_admin(R"({"token": 4242})"), at, "got a number"},
        {with_admin(R"({"token": true})"), at, "got a boolean"},
        {with_admin(R"({"token": ["hunter2"]})"), at, "got an array"},
        {with_admin(R"({"token": {}})"), at,
         R"(expected exactly one of "env", "file", "plain", "dpapi", "credman", got an empty object)"},
        {with_admin(R"({"token": {"env": "A", "file": "b"}})"), at, R"(got "env", "file")"},
        {with_admin(R"({"token": {"plian": "hunter2"}})"), at + "/plian",
         R"(did you mean "plain"?)"},
        {with_admin(R"({"token": {"plain": ""}})"), at + "/plain",
         "expected the token as a string, got an empty string"},
        {with_admin(R"({"token": {"plain": 4242}})"), at + "/plain",
         "expected the token as a string, got a number"},
        {with_admin(R"({"token": {"env": ""}})"), at + "/env",
         "expected the name of an environment variable"},
        {with_admin(R"({"token": {"env": "A=hunter2"}})"), at + "/env", "contains '='"},
        {with_admin(R"({"token": {"file": "secrets/"}})"), at + "/file", "names a directory"},
        {with_admin(R"({"token": {"dpapi": "hunter2!"}})"), at + "/dpapi",
         "text that is not base64"},
        {with_admin(R"({"token": {"credman": ""}})"), at + "/credman",
         "expected the target name of a Windows Credential Manager entry"},
    });
    for (const char* text : {R"({"token": "hunter2"})", R"({"token": {"plain": ["hunter2"]}})",
                             R"({"token": {"dpapi": "hunter2!"}})"}) {
        const auto result = load(with_admin(text));
        CHECK_THAT(all_of(result.errors) + all_of(result.warnings), !Catch::Contains("hunter2"));
    }
}

TEST_CASE("log.access: false (the default) is no access log", "[loader][log]") {
    CHECK_FALSE(load_ok(with_upstream(R"("log": {})")).log.access);
    CHECK_FALSE(load_ok(with_access_log("false")).log.access);
}

TEST_CASE("log.access: a path, with every default", "[loader][log]") {
    const auto c = load_ok(with_access_log(R"("logs/access.jsonl")"));
    REQUIRE(c.log.access);
    CHECK(c.log.access->file == absolute("/etc/authshim/logs/access.jsonl"));
    CHECK(c.log.access->redact_query);
    CHECK(c.log.access->max_bytes == 10'485'760);
    CHECK(c.log.access->max_files == 5);

    // Resolved like log.file: against the config directory, normalised; absolute kept.
    CHECK(load_ok(with_access_log(R"("../var/./log/a.jsonl")")).log.access->file ==
          absolute("/etc/var/log/a.jsonl"));
    CHECK(load_ok(with_access_log(R"("/var/log/authshim/access.jsonl")")).log.access->file ==
          absolute("/var/log/authshim/access.jsonl"));
}

TEST_CASE("log.access: the object form", "[loader][log]") {
    SECTION("only the file: the defaults") {
        const auto c = load_ok(with_access_log(R"({"file": "access.jsonl"})"));
        REQUIRE(c.log.access);
        CHECK(*c.log.access == cfg::access_log_settings{absolute("/etc/authshim/access.jsonl")});
    }
    SECTION("every key, at the low bounds") {
        const auto c = load_ok(with_access_log(
            R"({"file": "a.jsonl", "query": "keep", "max_bytes": 65536, "max_files": 1})"));
        REQUIRE(c.log.access);
        CHECK(c.log.access->file == absolute("/etc/authshim/a.jsonl"));
        CHECK_FALSE(c.log.access->redact_query);
        CHECK(c.log.access->max_bytes == 65'536);
        CHECK(c.log.access->max_files == 1);
    }
    SECTION("at the high bounds, query redact") {
        const auto c = load_ok(with_access_log(
            R"({"file": "a.jsonl", "query": "redact", "max_bytes": 1099511627776, "max_files": 100})"));
        REQUIRE(c.log.access);
        CHECK(c.log.access->redact_query);
        CHECK(c.log.access->max_bytes == 1'099'511'627'776);
        CHECK(c.log.access->max_files == 100);
    }
    SECTION("beside log.file") {
        const auto c = load_ok(with_upstream(
            R"("log": {"file": "logs/authshim.log", "access": {"file": "logs/access.jsonl"}})"));
        REQUIRE(c.log.access);
        CHECK(c.log.file == absolute("/etc/authshim/logs/authshim.log"));
        CHECK(c.log.access->file == absolute("/etc/authshim/logs/access.jsonl"));
    }
}

TEST_CASE("log.access errors", "[loader][log][errors]") {
    const std::string at = "/log/access";
    const std::string any =
        R"(expected false (no access log), a file path such as "logs/access.jsonl" or an object such as {"file": "logs/access.jsonl", "query": "redact"}, got )";
    const std::string bytes = "expected an integer from 65536 to 1099511627776, got ";
    const std::string files = "expected an integer from 1 to 100, got ";
    check_one_error({
        {with_access_log("true"), at, any + "true (there is no default access log file: name one)"},
        {with_access_log("null"), at, any + "null"},
        {with_access_log("5"), at, any + "5"},
        {with_access_log(R"(["a.jsonl"])"), at, any + "an array"},
        {with_access_log(R"("")"), at,
         R"(expected a file path such as "logs/access.jsonl" (or false for no access log), got "")"},
        {with_access_log(R"("logs/")"), at, "names a directory"},
        {with_access_log(R"("a\u0000b")"), at, "NUL character"},
        {with_access_log("{}"), at + "/file",
         R"(missing required key "file" (expected a file path such as "logs/access.jsonl"))"},
        {with_access_log(R"({"query": "keep"})"), at + "/file", R"(missing required key "file")"},
        {with_access_log(R"({"file": ""})"), at + "/file", R"(got "")"},
        {with_access_log(R"({"file": 5})"), at + "/file", "got 5"},
        {with_access_log(R"({"file": false})"), at + "/file", "got false"},
        {with_access_log(R"({"file": "a", "query": "drop"})"), at + "/query",
         R"(expected "redact" (log the path with "?..." in place of its query, which may carry tokens) or "keep", got "drop")"},
        {with_access_log(R"({"file": "a", "query": "Keep"})"), at + "/query",
         R"(did you mean "keep"?)"},
        {with_access_log(R"({"file": "a", "query": "redacted"})"), at + "/query",
         R"(did you mean "redact"?)"},
        {with_access_log(R"({"file": "a", "query": true})"), at + "/query", "got true"},
        {with_access_log(R"({"file": "a", "max_bytes": 65535})"), at + "/max_bytes",
         bytes + "65535, which is out of range"},
        {with_access_log(R"({"file": "a", "max_bytes": 1099511627777})"), at + "/max_bytes",
         bytes + "1099511627777"},
        {with_access_log(R"({"file": "a", "max_bytes": "10MB"})"), at + "/max_bytes",
         "write the number without quotes"},
        {with_access_log(R"({"file": "a", "max_bytes": 1048576.5})"), at + "/max_bytes",
         "not a whole number"},
        {with_access_log(R"({"file": "a", "max_files": 0})"), at + "/max_files",
         files + "0, which is out of range"},
        {with_access_log(R"({"file": "a", "max_files": 101})"), at + "/max_files", files + "101"},
        {with_access_log(R"({"file": "a", "max_files": -1})"), at + "/max_files", files + "-1"},
        {with_access_log(R"({"file": "a", "max_file": 5})"), at + "/max_file",
         R"(unknown key "max_file" (did you mean "max_files"?))"},
        {with_access_log(R"({"file": "a", "rotate": "daily"})"), at + "/rotate",
         "expected one of: file, query, max_bytes, max_files"},
    });
}

TEST_CASE("log.access must not be log.file", "[loader][log][errors]") {
    const std::string same = R"(is the same file as "log.file": two writers on one file)";
    check_one_error({
        {with_upstream(R"("log": {"file": "logs/a.log", "access": "logs/a.log"})"), "/log/access",
         same},
        {with_upstream(R"("log": {"access": "./logs/../logs/a.log", "file": "logs/a.log"})"),
         "/log/access", same},
        {with_upstream(R"("log": {"file": "/etc/authshim/a.log", "access": {"file": "a.log"}})"),
         "/log/access/file", same},
    });
    const auto result =
        load(with_upstream(R"("log": {"file": "logs/a.log", "access": "logs/a.log"})"));
    REQUIRE(result.errors.size() == 1);
    CHECK_THAT(result.errors[0].what,
               Catch::Contains("give the access log its own file such as \"logs/access.jsonl\""));
}

// `winhttp.bypass` (issue 8: the MSI's BYPASS property is written there; `winhttp apply` uses it
// when --bypass is not given).
TEST_CASE("winhttp.bypass: default <local>, any valid list accepted") {
    CHECK(load_ok(with_upstream(R"("log": {})")).winhttp.bypass == "<local>");
    CHECK(load_ok(with_upstream(R"("winhttp": {})")).winhttp.bypass == "<local>");
    CHECK(
        load_ok(with_upstream(R"("winhttp": {"bypass": "*.local;10.*;<local>"})")).winhttp.bypass ==
        "*.local;10.*;<local>");
}

TEST_CASE("winhttp.bypass: bad values are errors at their place") {
    check_one_error({
        {with_upstream(R"("winhttp": "<local>")"), "/winhttp", "expected an object"},
        {with_upstream(R"("winhttp": {"bypass": ["a"]})"), "/winhttp/bypass",
         "expected a bypass list"},
        {with_upstream(R"("winhttp": {"bypass": ""})"), "/winhttp/bypass", "is empty"},
        {with_upstream(R"("winhttp": {"bypass": "a; b"})"), "/winhttp/bypass", "whitespace"},
        {with_upstream(R"("winhttp": {"bypas": "a"})"), "/winhttp/bypas", "bypass"},
    });
}
