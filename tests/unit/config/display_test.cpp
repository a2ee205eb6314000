#include "config/loader.hpp"

#include "test_paths.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace std::chrono_literals;
namespace cfg = authshim::config;
namespace paths = authshim::test_paths;

namespace {

/// Field-by-field equality of everything a file can set (`source` excepted).
void check_same(const cfg::config& a, const cfg::config& b) {
    CHECK(a.listen == b.listen);
    REQUIRE(a.upstreams.size() == b.upstreams.size());
    for (std::size_t i = 0; i < a.upstreams.size(); ++i) {
        CHECK(a.upstreams[i].name == b.upstreams[i].name);
        CHECK(a.upstreams[i].transport == b.upstreams[i].transport);
        CHECK(a.upstreams[i].address == b.upstreams[i].address);
        CHECK(a.upstreams[i].credentials == b.upstreams[i].credentials);
        CHECK(a.upstreams[i].schemes == b.upstreams[i].schemes);
        CHECK(a.upstreams[i].ca_file == b.upstreams[i].ca_file);
    }
    REQUIRE(a.credentials.size() == b.credentials.size());
    for (auto ia = a.credentials.begin(), ib = b.credentials.begin(); ia != a.credentials.end();
         ++ia, ++ib) {
        CHECK(ia->first == ib->first);
        CHECK(ia->second.username == ib->second.username);
        // A plain password is shown masked, so only its kind survives the round trip.
        CHECK(ia->second.password_source.index() == ib->second.password_source.index());
        if (!std::holds_alternative<cfg::plain_secret>(ia->second.password_source))
            CHECK(ia->second.password_source == ib->second.password_source);
    }
    CHECK(a.access.clients == b.access.clients);
    CHECK(a.access.connect_ports == b.access.connect_ports);
    CHECK(a.access.destinations == b.access.destinations);
    CHECK(a.timeouts.connect == b.timeouts.connect);
    CHECK(a.timeouts.client_header == b.timeouts.client_header);
    CHECK(a.timeouts.upstream_response == b.timeouts.upstream_response);
    CHECK(a.timeouts.tunnel_idle == b.timeouts.tunnel_idle);
    CHECK(a.timeouts.shutdown == b.timeouts.shutdown);
    CHECK(a.limits.max_connections == b.limits.max_connections);
    CHECK(a.limits.max_header_bytes == b.limits.max_header_bytes);
    CHECK(a.limits.replay_body == b.limits.replay_body);
    CHECK(a.lockout.max_rejections == b.lockout.max_rejections);
    CHECK(a.lockout.retry_after == b.lockout.retry_after);
    CHECK(a.log.level == b.log.level);
    CHECK(a.log.file == b.log.file);
    CHECK(a.log.access == b.log.access);
    CHECK(a.log.event_log == b.log.event_log);
    CHECK(a.admin.listen == b.admin.listen);
    REQUIRE(a.admin.token_source.has_value() == b.admin.token_source.has_value());
    if (a.admin.token_source) {
        // A plain token is shown masked, so only its kind survives the round trip.
        CHECK(a.admin.token_source->index() == b.admin.token_source->index());
        if (!std::holds_alternative<cfg::plain_secret>(*a.admin.token_source))
            CHECK(*a.admin.token_source == *b.admin.token_source);
    }
}

/// The config directory of `load_ok`: /etc/authshim, on Windows C:\etc\authshim.
const std::filesystem::path config_dir = paths::absolute("/etc/authshim");

cfg::config load_ok(const std::string& text, const std::filesystem::path& base = config_dir) {
    const auto result = cfg::load_string(text, "test.json", base);
    std::string all;
    for (const auto& d : result.errors)
        all += d.to_string() + '\n';
    INFO(text << "\nerrors:\n" << all);
    REQUIRE(result.value);
    return *result.value;
}

} // namespace

TEST_CASE("to_display_json of the defaults", "[display]") {
    const auto c = load_ok(R"({"upstreams": [{"address": "proxy.corp.example:8080"}]})");
    CHECK(cfg::to_display_json(c) == R"({
  "listen": [
    "127.0.0.1:3128"
  ],
  "upstreams": [
    {
      "name": "upstream",
      "address": "proxy.corp.example:8080",
      "credentials": null,
      "schemes": [
        "digest",
        "basic"
      ]
    }
  ],
  "credentials": {},
  "access": {
    "clients": [
      "127.0.0.0/8",
      "::1/128"
    ],
    "connect_ports": [
      443
    ],
    "destinations": null
  },
  "timeouts": {
    "connect": "5s",
    "client_header": "15s",
    "upstream_response": "10s",
    "tunnel_idle": "5m",
    "shutdown": "10s"
  },
  "limits": {
    "max_connections": 4096,
    "max_header_bytes": 65536,
    "replay_body": 1048576
  },
  "lockout": {
    "max_rejections": 1,
    "retry_after": null
  },
  "log": {
    "level": "info",
    "access": false,
    "event_log": true
  },
  "admin": {
    "listen": "127.0.0.1:3129",
    "token": null
  },
  "winhttp": {
    "bypass": "<local>"
  }
})");
}

TEST_CASE("durations are shown in the largest exact unit", "[display]") {
    cfg::config c;
    c.timeouts.connect = 250ms;
    c.timeouts.client_header = 90s;
    c.timeouts.upstream_response = 1500ms;
    c.timeouts.tunnel_idle = 120min;
    c.timeouts.shutdown = 61min;
    const std::string text = cfg::to_display_json(c);
    CHECK_THAT(text, Catch::Contains(R"("connect": "250ms")"));
    CHECK_THAT(text, Catch::Contains(R"("client_header": "90s")"));
    CHECK_THAT(text, Catch::Contains(R"("upstream_response": "1500ms")"));
    CHECK_THAT(text, Catch::Contains(R"("tunnel_idle": "2h")"));
    CHECK_THAT(text, Catch::Contains(R"("shutdown": "61m")"));
}

TEST_CASE("to_display_json writes ranges, IPv6 and the log file", "[display]") {
    const auto c = load_ok(R"({
        "listen": ["[::1]:0", "127.0.0.1:8080"],
        "upstreams": [{"name": "corp", "address": "http://[2001:db8::7]:3128"}],
        "access": {"clients": ["::1", "10.0.0.0/8"], "connect_ports": [443, "8000-8080"]},
        "log": {"level": "warn", "file": "logs/authshim.log"}
    })");
    const std::string text = cfg::to_display_json(c);
    CHECK_THAT(text, Catch::Contains(R"("[::1]:0")"));
    CHECK_THAT(text, Catch::Contains(R"("address": "[2001:db8::7]:3128")"));
    CHECK_THAT(text, Catch::Contains(R"("name": "corp")"));
    CHECK_THAT(text, Catch::Contains("\"::1/128\",\n      \"10.0.0.0/8\""));
    CHECK_THAT(text, Catch::Contains("443,\n      \"8000-8080\""));
    CHECK_THAT(text, Catch::Contains(R"("level": "warn")"));
    const auto log_file = paths::absolute("/etc/authshim/logs/authshim.log");
    CHECK_THAT(text, Catch::Contains(R"("file": )" + paths::json_string(log_file)));
}

TEST_CASE("to_display_json output loads again to an equal config", "[display]") {
    const char* texts[] = {
        R"({"upstreams": [{"address": "proxy.corp.example:8080"}]})",
        R"({
            "listen": ["127.0.0.1:0", "[::1]:3128", "0.0.0.0:8080", "[::ffff:127.0.0.1]:1"],
            "upstreams": [{"name": "corp", "address": "HTTP://[2001:DB8::7]:3128/"}],
            "access": {"clients": ["10.0.0.0/8", "::1", "192.0.2.7", "::ffff:0:0/96"],
                       "connect_ports": [443, "8443-8445", "1-65535"]},
            "timeouts": {"connect": "250ms", "client_header": "60s", "upstream_response": "1500ms",
                         "tunnel_idle": "24h", "shutdown": "3600000ms"},
            "limits": {"max_connections": 1, "max_header_bytes": 1024},
            "log": {"level": "off", "file": "../logs/a b.log", "access": false, "event_log": false},
            "admin": {"listen": null}
        })",
        R"({"upstreams": [{"address": "p:1"}], "access": {"connect_ports": []},
            "log": {"level": "trace", "file": "/var/log/\u00e9t\u00e9.log"}})",
        R"({"upstreams": [{"name": "tls", "address": "HTTPS://proxy.corp.example:8443/",
                           "ca_file": "certs/ca.pem", "credentials": "machine",
                           "schemes": ["basic"]}],
            "credentials": {
                "machine": {"username": "CORP\\svc", "password": {"plain": "p4ss"}},
                "e": {"username": "u", "password": {"env": "AUTHSHIM_PW"}},
                "f": {"username": "u", "password": {"file": "../secrets/pw"}},
                "c": {"username": "u", "password": {"credman": "authshim/corp"}}},
            "limits": {"replay_body": 0},
            "lockout": {"max_rejections": 100, "retry_after": "90s"}})",
        R"({"upstreams": [{"address": "https://p:1", "ca_file": null, "credentials": null}],
            "lockout": {"retry_after": null}})",
        R"({"upstreams": [{"address": "p:1"}],
            "log": {"file": "logs/a.log", "access": "logs/access.jsonl"},
            "admin": {"listen": "[::1]:0", "token": {"env": "AUTHSHIM_ADMIN_TOKEN"}}})",
        R"({"upstreams": [{"address": "p:1"}], "listen": ["0.0.0.0:3128"],
            "access": {"clients": ["10.0.0.0/8"]},
            "log": {"access": {"file": "/var/log/a.jsonl", "query": "keep",
                               "max_bytes": 1099511627776, "max_files": 100}},
            "admin": {"listen": "0.0.0.0:3129", "token": {"plain": "t0ken"}}})",
        R"({"upstreams": [{"address": "p:1"}],
            "admin": {"listen": "192.0.2.1:9", "token": {"file": "admin.token"}}})",
        R"({"upstreams": [{"address": "p:1"}],
            "access": {"destinations": ["CRL.Example.com.", "*.WindowsUpdate.com", "10.0.0.0/8",
                                        "192.0.2.7", "2001:DB8::/32", "::ffff:10.0.0.1", "*.a_b"]}})",
        R"({"upstreams": [{"address": "p:1"}], "access": {"destinations": null}})",
        R"({"upstreams": [{"address": "p:1"}],
            "admin": {"listen": null, "token": {"credman": "authshim/admin"}}})",
    };
    for (const char* text : texts) {
        const auto first = load_ok(text);
        const std::string shown = cfg::to_display_json(first);
        INFO(shown);
        // Loaded from another directory: log.file is absolute, so nothing depends on it.
        const auto second = load_ok(shown, "/somewhere/else");
        check_same(first, second);
        CHECK(cfg::to_display_json(second) == shown);
    }
}

TEST_CASE("to_display_json of an https upstream keeps the scheme and shows ca_file", "[display]") {
    cfg::config c;
    c.upstreams.push_back({"tls", cfg::upstream_transport::https, {"proxy", 443}});
    CHECK_THAT(cfg::to_display_json(c), Catch::Contains(R"("address": "https://proxy:443")"));
    CHECK_THAT(cfg::to_display_json(c), Catch::Contains(R"("ca_file": null)"));
    c.upstreams[0].ca_file = "/etc/authshim/ca.pem";
    CHECK_THAT(cfg::to_display_json(c), Catch::Contains(R"("ca_file": "/etc/authshim/ca.pem")"));
}

TEST_CASE("to_display_json shows log.access with every default", "[display][log]") {
    const auto c = load_ok(R"({"upstreams": [{"address": "p:1"}],
        "log": {"file": "logs/authshim.log", "access": "logs/access.jsonl"}})");
    const std::string text = cfg::to_display_json(c);
    INFO(text);
    const auto access = paths::absolute("/etc/authshim/logs/access.jsonl");
    CHECK_THAT(text, Catch::Contains(R"("access": {
      "file": )" + paths::json_string(access) +
                                     R"(,
      "query": "redact",
      "max_bytes": 10485760,
      "max_files": 5
    },
    "event_log": true)"));

    const auto keep = load_ok(R"({"upstreams": [{"address": "p:1"}],
        "log": {"access": {"file": "a.jsonl", "query": "keep", "max_bytes": 65536,
                           "max_files": 100}}})");
    const std::string kept = cfg::to_display_json(keep);
    CHECK_THAT(kept, Catch::Contains(R"("query": "keep")"));
    CHECK_THAT(kept, Catch::Contains(R"("max_bytes": 65536)"));
    CHECK_THAT(kept, Catch::Contains(R"("max_files": 100)"));
}

TEST_CASE("to_display_json shows the admin endpoint, its token masked", "[display][admin]") {
    cfg::config c;
    c.admin.listen.reset();
    CHECK_THAT(cfg::to_display_json(c),
               Catch::Contains("\"admin\": {\n    \"listen\": null,\n    \"token\": null\n  }"));

    c.admin.listen = cfg::endpoint{"::1", 0};
    CHECK_THAT(cfg::to_display_json(c), Catch::Contains(R"("listen": "[::1]:0")"));

    // The resolved token is never shown, whatever its source.
    c.admin.token = cfg::secret_string("Resolved-Canary-Token-5d1e");
    const std::pair<cfg::secret_ref, std::string> sources[] = {
        {cfg::plain_secret{cfg::secret_string("Plain-Canary-Token-77aa")},
         R"("token": {
      "plain": "********"
    })"},
        {cfg::env_secret{"AUTHSHIM_ADMIN_TOKEN"}, R"("env": "AUTHSHIM_ADMIN_TOKEN")"},
        {cfg::file_secret{paths::absolute("/etc/authshim/admin.token")},
         R"("file": )" + paths::json_string(paths::absolute("/etc/authshim/admin.token"))},
        {cfg::dpapi_secret{{1, 2, 3, 4, 5}}, R"("dpapi": "<5 bytes>")"},
        {cfg::credman_secret{"authshim/admin"}, R"("credman": "authshim/admin")"},
    };
    for (const auto& [source, shown] : sources) {
        c.admin.token_source = source;
        const std::string text = cfg::to_display_json(c);
        INFO(text);
        CHECK_THAT(text, Catch::Contains(shown));
        CHECK_THAT(text, !Catch::Contains("Canary"));
        CHECK_THAT(text, !Catch::Contains("AQIDBAU")); // the blob's base64
    }
}

TEST_CASE("to_display_json shows access.destinations in canonical form",
          "[display][destinations]") {
    const auto c = load_ok(R"({"upstreams": [{"address": "p:1"}],
        "access": {"destinations": ["CRL.Example.com.", "*.WindowsUpdate.com", "192.0.2.7",
                                    "2001:DB8::/32"]}})");
    CHECK_THAT(cfg::to_display_json(c), Catch::Contains(R"("destinations": [
      "crl.example.com",
      "*.windowsupdate.com",
      "192.0.2.7/32",
      "2001:db8::/32"
    ])"));
}
