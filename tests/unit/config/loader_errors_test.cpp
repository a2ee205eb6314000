#include "config/loader.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

namespace cfg = authshim::config;

namespace {

const std::string origin = "/etc/a.json";

cfg::load_result load(const std::string& text) {
    return cfg::load_string(text, origin, "/etc");
}

std::string with_upstream(const std::string& fragment) {
    return R"({"upstreams": [{"address": "proxy.corp.example:8080"}], )" + fragment + "}";
}

std::string with_address(const std::string& address) {
    return R"({"upstreams": [{"address": )" + address + "}]}";
}

struct bad_case {
    std::string text;
    std::string where; ///< after the origin: ":3:1" or ": /pointer"
    std::string what;  ///< a substring of the message
};

/// Each text has exactly one problem, reported at `where` with `what` in its message.
void check_one_error(const std::vector<bad_case>& cases) {
    for (const auto& c : cases) {
        INFO("config: " << c.text);
        const auto result = load(c.text);
        CHECK_FALSE(result.value.has_value());
        std::string all;
        for (const auto& d : result.errors)
            all += d.to_string() + '\n';
        INFO("errors:\n" << all);
        CHECK(result.errors.size() == 1);
        if (result.errors.empty()) continue;
        CHECK(result.errors[0].where == origin + c.where);
        CHECK_THAT(result.errors[0].what, Catch::Contains(c.what));
    }
}

} // namespace

TEST_CASE("JSON syntax errors are placed at line:column", "[loader][errors]") {
    check_one_error({
        {"{\n  \"upstreams\": [],\n}", ":3:1", "JSON does not allow a trailing comma"},
        {"{\"listen\": [\"127.0.0.1:1\",]}", ":1:27", "JSON does not allow a trailing comma"},
        {"{\n  \"upstreams\" []\n}", ":2:15", "expected ':'"},
        {"{\n\n    \"a\": tru\n}", ":3:13", "invalid literal"}, // the end of line 3
        {"{\"a\": 1", ":1:8", "unexpected end of input"},
        {"{\"a\": \"x\n\"}", ":1:9", "control character U+000A (LF) must be escaped"},
        {"{\"a\": 1 /* never closed", ":1:24", "missing closing '*/'"},
        {"{\"a\": 'single'}", ":1:7", "invalid literal"},
        {"{\"a\": 01}", ":1:8", "unexpected number literal"},
        {"{} {}", ":1:4", "expected end of input"},
        {"{\"\xC3\xA9t\xC3\xA9\": @}", ":1:9", "invalid literal"}, // columns count characters
        {"\xEF\xBB\xBF{,}", ":1:2", "expected string literal"},    // the BOM takes no column
        {"{\"a\": \"\xFF\"}", ":1:8", "ill-formed UTF-8"},
        {"", ":1:1", "the configuration is empty"},
        {" \n\t ", ":1:1", "the configuration is empty"},
    });
}

TEST_CASE("the top level must be an object", "[loader][errors]") {
    check_one_error({
        {"[]", ": /", "expected a JSON object at the top level"},
        {"42", ": /", "got 42"},
        {"null", ": /", "got null"},
        {"\"upstreams\"", ": /", "got \"upstreams\""},
    });
}

TEST_CASE("unknown keys are named, with a suggestion for near misses", "[loader][errors]") {
    check_one_error({
        {with_upstream(R"("lisen": ["127.0.0.1:1"])"), ": /lisen",
         R"(unknown key "lisen" (did you mean "listen"?))"},
        {with_upstream(R"("Timeouts": {})"), ": /Timeouts", R"(did you mean "timeouts"?)"},
        {with_upstream(R"("frobnicate": 1)"), ": /frobnicate",
         R"(unknown key "frobnicate"; expected one of: listen, upstreams, access, timeouts)"},
        {with_upstream(R"("timeouts": {"conect": "5s"})"), ": /timeouts/conect",
         R"(unknown key "conect" (did you mean "connect"?))"},
        {with_upstream(R"("access": {"client": []})"), ": /access/client",
         R"(did you mean "clients"?)"},
        {with_upstream(R"("limits": {"max_conns": 5})"), ": /limits/max_conns",
         "expected one of: max_connections, max_header_bytes, replay_body"},
        {with_upstream(R"("log": {"lvl": "info"})"), ": /log/lvl", "unknown key \"lvl\""},
        {R"({"upstreams": [{"address": "p:1", "adress": "q:2"}]})", ": /upstreams/0/adress",
         R"(did you mean "address"?)"},
        {with_upstream(R"("admin": {"listen": null, "tokn": {}})"), ": /admin/tokn",
         R"(did you mean "token"?)"},
        {with_upstream(R"("a/b~c": 1)"), ": /a~1b~0c", "unknown key \"a/b~c\""},
    });
}

TEST_CASE("listen errors", "[loader][errors]") {
    const std::string example = R"(expected an IP address and port such as "127.0.0.1:3128")";
    check_one_error({
        {with_upstream(R"("listen": "127.0.0.1:3128")"), ": /listen",
         R"(expected an array of addresses such as ["127.0.0.1:3128"], got "127.0.0.1:3128")"},
        {with_upstream(R"("listen": [])"), ": /listen", "expected at least one address"},
        {with_upstream(R"("listen": [3128])"), ": /listen/0",
         example + R"( or "[::1]:3128", got 3128)"},
        {with_upstream(R"("listen": ["localhost:3128"])"), ": /listen/0",
         "listen addresses must be IP addresses"},
        {with_upstream(R"("listen": ["127.0.0.1"])"), ": /listen/0", "which has no port"},
        {with_upstream(R"("listen": ["127.0.0.1:65536"])"), ": /listen/0",
         "port out of range (expected 0-65535)"},
        {with_upstream(R"("listen": ["[::1]"])"), ": /listen/0", "has no port"},
        {with_upstream(R"("listen": ["::1:3128"])"), ": /listen/0", "without brackets"},
        {with_upstream(R"("listen": ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:1"])"), ": /listen/2",
         R"(duplicate listen address "127.0.0.1:1" (already at /listen/0))"},
        {with_upstream(R"("listen": ["[::1]:1", "[0:0::1]:1"])"), ": /listen/1",
         R"(duplicate listen address "[::1]:1")"},
        {with_upstream(R"("listen": ["0.0.0.0:1", "127.0.0.1:1"], "access": {"clients": ["::1"]})"),
         ": /listen/1", R"(overlaps "0.0.0.0:1" at /listen/0)"},
        {with_upstream(R"("listen": ["0.0.0.0:3128"])"), ": /listen/0",
         "authshim must never be an open proxy by accident"},
    });
}

TEST_CASE("upstreams errors", "[loader][errors]") {
    const std::string expected = "expected host:port, http://host:port or https://host:port";
    check_one_error({
        {"{}", ": /upstreams", R"(missing required key "upstreams")"},
        {R"({"upstreams": {"address": "p:1"}})", ": /upstreams",
         "expected an array with exactly one upstream"},
        {R"({"upstreams": []})", ": /upstreams",
         "exactly one upstream is supported until failover exists, got none"},
        {R"({"upstreams": [{"address": "a:1"}, {"address": "b:2"}]})", ": /upstreams",
         "exactly one upstream is supported until failover exists, got 2"},
        {R"({"upstreams": ["proxy:8080"]})", ": /upstreams/0",
         R"(expected an object such as {"address": "proxy.corp.example:8080"}, got "proxy:8080")"},
        {R"({"upstreams": [{"name": "corp"}]})", ": /upstreams/0/address",
         R"(missing required key "address")"},
        {with_address("8080"), ": /upstreams/0/address",
         expected + " such as \"proxy.corp.example:8080\", got 8080"},
        {with_address(R"("https://proxy")"), ": /upstreams/0/address",
         R"(got "https://proxy", which has no port)"},
        {with_address(R"("https://proxy:8443/x")"), ": /upstreams/0/address",
         "must not have a path (expected host:port, http://host:port or https://host:port)"},
        {with_address(R"("socks5://proxy:1080")"), ": /upstreams/0/address",
         R"(unsupported scheme "socks5://")"},
        {with_address(R"("proxy.corp.example")"), ": /upstreams/0/address",
         R"(got "proxy.corp.example", which has no port)"},
        {with_address(R"("proxy:0")"), ": /upstreams/0/address", "has port 0 (expected 1-65535)"},
        {with_address(R"("proxy:65536")"), ": /upstreams/0/address",
         "port out of range (expected 1-65535)"},
        {with_address(R"("http://proxy:8080/path")"), ": /upstreams/0/address",
         "must not have a path"},
        {with_address(R"("proxy..corp:8080")"), ": /upstreams/0/address",
         "neither a valid DNS name nor an IP address"},
        {with_address(R"("")"), ": /upstreams/0/address", "got \"\", which is empty"},
        {with_address(R"(" proxy:8080")"), ": /upstreams/0/address", "contains whitespace"},
        {R"({"upstreams": [{"address": "p:1", "name": ""}]})", ": /upstreams/0/name",
         "expected a non-empty name"},
        {R"({"upstreams": [{"address": "p:1", "name": 7}]})", ": /upstreams/0/name", "got 7"},
        {R"({"upstreams": [{"address": "p:1", "name": "a\u0001"}]})", ": /upstreams/0/name",
         "without control characters"},
    });
}

TEST_CASE("credentials in an upstream address are never repeated", "[loader][errors]") {
    const auto result = load(with_address(R"("http://svc:Secr3t@proxy:8080")"));
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].where == origin + ": /upstreams/0/address");
    CHECK_THAT(result.errors[0].what, Catch::Contains("must not contain credentials"));
    CHECK_THAT(result.errors[0].to_string(), !Catch::Contains("Secr3t"));
}

TEST_CASE("access errors", "[loader][errors]") {
    const std::string block = R"(expected an address block such as "10.0.0.0/8")";
    const std::string port = "expected a port number such as 443 or a range such as \"8000-8080\"";
    check_one_error({
        {with_upstream(R"("access": [])"), ": /access", "expected an object such as"},
        {with_upstream(R"("access": {"clients": "127.0.0.1"})"), ": /access/clients",
         "expected an array of address blocks"},
        {with_upstream(R"("access": {"clients": []})"), ": /access/clients",
         "no client could connect"},
        {with_upstream(R"("access": {"clients": ["1.2.3.4/33"]})"), ": /access/clients/0",
         block +
             R"(, "192.0.2.7" or "fd00::/8", got "1.2.3.4/33", which has a prefix length out of range (expected 0-32 for IPv4))"},
        {with_upstream(R"("access": {"clients": ["::/129"]})"), ": /access/clients/0",
         "expected 0-128 for IPv6"},
        {with_upstream(R"("access": {"clients": ["10.0.0.1/8"]})"), ": /access/clients/0",
         "did you mean 10.0.0.0/8?"},
        {with_upstream(R"("access": {"clients": ["127.0.0.0/8", 10]})"), ": /access/clients/1",
         "got 10"},
        {with_upstream(R"("access": {"clients": ["localhost"]})"), ": /access/clients/0",
         "is not an IPv4 or IPv6 address"},
        {with_upstream(R"("access": {"clients": [" 10.0.0.0/8"]})"), ": /access/clients/0",
         "contains whitespace"},
        {with_upstream(R"("access": {"connect_ports": 443})"), ": /access/connect_ports",
         "expected an array of ports and ranges"},
        {with_upstream(R"("access": {"connect_ports": ["443"]})"), ": /access/connect_ports/0",
         "write a single port as a number, without quotes"},
        {with_upstream(R"("access": {"connect_ports": [0]})"), ": /access/connect_ports/0",
         "expected an integer from 1 to 65535, got 0, which is out of range"},
        {with_upstream(R"("access": {"connect_ports": [443, 65536]})"), ": /access/connect_ports/1",
         "expected an integer from 1 to 65535, got 65536"},
        {with_upstream(R"("access": {"connect_ports": [-443]})"), ": /access/connect_ports/0",
         "got -443, which is out of range"},
        {with_upstream(R"("access": {"connect_ports": [443.5]})"), ": /access/connect_ports/0",
         "got 443.5, which is not a whole number"},
        {with_upstream(R"("access": {"connect_ports": ["10-5"]})"), ": /access/connect_ports/0",
         "is reversed (write the lower port first)"},
        {with_upstream(R"("access": {"connect_ports": ["0-5"]})"), ": /access/connect_ports/0",
         "port out of range (expected 1-65535)"},
        {with_upstream(R"("access": {"connect_ports": ["1-65536"]})"), ": /access/connect_ports/0",
         "port out of range"},
        {with_upstream(R"("access": {"connect_ports": ["a-b"]})"), ": /access/connect_ports/0",
         "not a range \"lo-hi\""},
        {with_upstream(R"("access": {"connect_ports": ["1-2-3"]})"), ": /access/connect_ports/0",
         "not a range \"lo-hi\""},
        {with_upstream(R"("access": {"connect_ports": [true]})"), ": /access/connect_ports/0",
         port + ", got true"},
    });
}

TEST_CASE("timeouts errors", "[loader][errors]") {
    const std::string expected = R"(expected a duration such as "15s" or "5m")";
    check_one_error({
        {with_upstream(R"("timeouts": "5s")"), ": /timeouts", "expected an object"},
        {with_upstream(R"("timeouts": {"connect": "15 seconds"})"), ": /timeouts/connect",
         expected +
             R"( (a whole number and ms, s, m or h), got "15 seconds", which contains whitespace)"},
        {with_upstream(R"("timeouts": {"client_header": 15})"), ": /timeouts/client_header",
         expected + " (a whole number and ms, s, m or h), got 15, which has no unit"},
        {with_upstream(R"("timeouts": {"upstream_response": "15"})"),
         ": /timeouts/upstream_response", "has no unit"},
        {with_upstream(R"("timeouts": {"tunnel_idle": "0s"})"), ": /timeouts/tunnel_idle",
         "must be greater than zero"},
        {with_upstream(R"("timeouts": {"shutdown": "25h"})"), ": /timeouts/shutdown",
         R"(expected a duration from 1ms to 24h, got "25h")"},
        {with_upstream(R"("timeouts": {"shutdown": "1441m"})"), ": /timeouts/shutdown",
         "longer than 24h"},
        {with_upstream(R"("timeouts": {"connect": "-5s"})"), ": /timeouts/connect",
         "must start with a positive whole number"},
        {with_upstream(R"("timeouts": {"connect": "1.5s"})"), ": /timeouts/connect",
         "write 1500ms, not 1.5s"},
        {with_upstream(R"("timeouts": {"connect": "5S"})"), ": /timeouts/connect",
         R"(unknown unit "S" (expected ms, s, m or h))"},
        {with_upstream(R"("timeouts": {"connect": "1d"})"), ": /timeouts/connect",
         R"(unknown unit "d")"},
        {with_upstream(R"("timeouts": {"connect": "99999999999999999999s"})"),
         ": /timeouts/connect", "is too large"},
        {with_upstream(R"("timeouts": {"connect": ""})"), ": /timeouts/connect", "is empty"},
        {with_upstream(R"("timeouts": {"connect": null})"), ": /timeouts/connect", "got null"},
    });
}

TEST_CASE("limits errors", "[loader][errors]") {
    const std::string connections = "expected an integer from 1 to 1000000";
    const std::string header = "expected an integer from 1024 to 16777216";
    check_one_error({
        {with_upstream(R"("limits": 5)"), ": /limits", "expected an object"},
        {with_upstream(R"("limits": {"max_connections": 0})"), ": /limits/max_connections",
         connections + ", got 0, which is out of range"},
        {with_upstream(R"("limits": {"max_connections": 1000001})"), ": /limits/max_connections",
         connections + ", got 1000001"},
        {with_upstream(R"("limits": {"max_connections": -1})"), ": /limits/max_connections",
         connections + ", got -1"},
        {with_upstream(R"("limits": {"max_connections": 1.5})"), ": /limits/max_connections",
         connections + ", got 1.5, which is not a whole number"},
        {with_upstream(R"("limits": {"max_connections": 100.0})"), ": /limits/max_connections",
         "not a whole number"},
        {with_upstream(R"("limits": {"max_connections": 1e20})"), ": /limits/max_connections",
         connections},
        {with_upstream(R"("limits": {"max_connections": 99999999999999999999})"),
         ": /limits/max_connections", connections},
        {with_upstream(R"("limits": {"max_connections": "4096"})"), ": /limits/max_connections",
         "write the number without quotes"},
        {with_upstream(R"("limits": {"max_connections": true})"), ": /limits/max_connections",
         connections + ", got true"},
        {with_upstream(R"("limits": {"max_header_bytes": 1023})"), ": /limits/max_header_bytes",
         header + ", got 1023"},
        {with_upstream(R"("limits": {"max_header_bytes": 16777217})"), ": /limits/max_header_bytes",
         header},
    });
}

TEST_CASE("log errors", "[loader][errors]") {
    check_one_error({
        {with_upstream(R"("log": "info")"), ": /log", "expected an object"},
        {with_upstream(R"("log": {"level": "verbose"})"), ": /log/level",
         R"(expected one of "trace", "debug", "info", "warn", "error", "off", got "verbose")"},
        {with_upstream(R"("log": {"level": "INFO"})"), ": /log/level", R"(did you mean "info"?)"},
        {with_upstream(R"("log": {"level": "warning"})"), ": /log/level",
         R"(did you mean "warn"?)"},
        {with_upstream(R"("log": {"level": 3})"), ": /log/level", "got 3"},
        {with_upstream(R"("log": {"file": ""})"), ": /log/file",
         R"(expected a file path such as "logs/authshim.log")"},
        {with_upstream(R"("log": {"file": null})"), ": /log/file", "to log to stderr"},
        {with_upstream(R"("log": {"file": 5})"), ": /log/file", "got 5"},
        {with_upstream(R"("log": {"file": "logs/"})"), ": /log/file", "names a directory"},
        {with_upstream(R"("log": {"file": "a\u0000b"})"), ": /log/file", "NUL character"},
        {with_upstream(R"("log": {"event_log": "no"})"), ": /log/event_log",
         R"(expected true or false, got "no")"},
    });
}

TEST_CASE("duplicate keys are reported, at any depth", "[loader][errors]") {
    check_one_error({
        {R"({"upstreams": [{"address": "p:1"}], "upstreams": [{"address": "p:1"}]})",
         ": /upstreams", R"(duplicate key "upstreams")"},
        {with_upstream(R"("timeouts": {"connect": "1s", "connect": "2s"})"), ": /timeouts/connect",
         R"(duplicate key "connect" (only the last one would count)"},
        {R"({"upstreams": [{"address": "p:1", "address": "p:2"}]})", ": /upstreams/0/address",
         "duplicate key"},
        {with_upstream(
             R"("listen": ["127.0.0.1:1"], "log": {"level": "info"}, "access": {"clients": ["::1"], "connect_ports": [1], "clients": ["::1"]})"),
         ": /access/clients", "duplicate key \"clients\""},
    });
}

TEST_CASE("duplicate keys inside nested arrays carry the right index", "[loader][errors]") {
    // Only the pointer tracking is under test: the duplicates sit in values validated later.
    const auto result = load(R"({"upstreams": [{"address": "p:1"}],
        "access": {"connect_ports": [1, 2], "clients": ["::1"]},
        "x": [[], {"a": 1}, [{"b": 1, "b": 2}], {"c": [0, {"d": 1, "d": 1}]}]})");
    std::set<std::string> wheres;
    for (const auto& d : result.errors)
        wheres.insert(d.where);
    CHECK(wheres ==
          std::set<std::string>{origin + ": /x", origin + ": /x/2/0/b", origin + ": /x/3/c/1/d"});
}

TEST_CASE("every error is reported at once", "[loader][errors]") {
    const auto result = load(R"({
        "listen": ["0.0.0.0:3128", "localhost:1"],
        "upstreams": [{"address": "ftp://proxy:8443", "nmae": "corp"}],
        "timeouts": {"connect": "5 s", "tunnel_idle": "2d", "connect": "6s"}, // "6s" counts
        "limits": {"max_connections": 0, "max_header_bytes": 10.5},
        "log": {"level": "loud", "file": ""},
        "admin": {"listen": "0.0.0.0:3129"}, // not loopback, and no token
        "colour": "blue"
    })");
    CHECK_FALSE(result.value);
    std::vector<std::string> wheres;
    for (const auto& d : result.errors)
        wheres.push_back(d.where);
    const std::string o = origin + ": ";
    CHECK(wheres == std::vector<std::string>{
                        o + "/timeouts/connect", // duplicate key, found while parsing
                        o + "/colour",           // unknown keys before values
                        o + "/listen/0",         // not loopback, no access.clients
                        o + "/listen/1",         // a host name
                        o + "/upstreams/0/nmae",
                        o + "/upstreams/0/address",
                        o + "/timeouts/tunnel_idle",
                        o + "/limits/max_connections",
                        o + "/limits/max_header_bytes",
                        o + "/log/level",
                        o + "/log/file",
                        o + "/admin/listen",
                    });
}

TEST_CASE("syntax errors do not quote the text they stopped in", "[loader][errors]") {
    // The token could be part of a secret (later versions keep passwords in the file).
    const auto result = load(R"({"upstreams": [{"address": "p:1"}], "x": "hunter2\q"})");
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].where == origin + ":1:51");
    CHECK_THAT(result.errors[0].what, Catch::Contains("invalid string"));
    CHECK_THAT(result.errors[0].what, !Catch::Contains("hunter2"));
}
