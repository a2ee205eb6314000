#include "config/loader.hpp"

#include "test_paths.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

using namespace std::chrono_literals;
namespace cfg = authshim::config;
namespace fs = std::filesystem;
namespace paths = authshim::test_paths;
using paths::absolute;

namespace {

const std::string minimal = R"({"upstreams": [{"address": "proxy.corp.example:8080"}]})";

/// The config directory of `load`: /etc/authshim, on Windows C:\etc\authshim.
const fs::path config_dir = absolute("/etc/authshim");

cfg::load_result load(const std::string& text, const fs::path& base = config_dir) {
    return cfg::load_string(text, "/etc/authshim/authshim.json", base);
}

/// `{"upstreams": [...], <fragment>}`: a valid upstream plus the part under test.
std::string with_upstream(const std::string& fragment) {
    return R"({"upstreams": [{"address": "proxy.corp.example:8080"}], )" + fragment + "}";
}

std::string all_errors(const cfg::load_result& result) {
    std::string out;
    for (const auto& d : result.errors)
        out += d.to_string() + '\n';
    return out;
}

/// A fresh directory under the system temp dir, removed at the end of the test.
class temp_dir {
public:
    temp_dir() {
        static std::atomic<int> counter{0};
        const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
        path_ = fs::temp_directory_path() /
                ("authshim-config-test-" + std::to_string(stamp) + "-" + std::to_string(++counter));
        fs::create_directories(path_);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::permissions(path_ / "unreadable.json", fs::perms::owner_all, ec);
        fs::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const fs::path& path() const { return path_; }

    fs::path write(const std::string& name, const std::string& text) const {
        const fs::path file = path_ / name;
        fs::create_directories(file.parent_path());
        std::ofstream(file, std::ios::binary) << text;
        return file;
    }

private:
    fs::path path_;
};

/// Makes `dir` the working directory until destroyed.
class working_directory {
public:
    explicit working_directory(const fs::path& dir) : previous_(fs::current_path()) {
        fs::current_path(dir);
    }
    ~working_directory() {
        std::error_code ec;
        fs::current_path(previous_, ec);
    }
    working_directory(const working_directory&) = delete;
    working_directory& operator=(const working_directory&) = delete;

private:
    fs::path previous_;
};

} // namespace

TEST_CASE("a minimal config gets every default", "[loader]") {
    const auto result = load(minimal);
    INFO(all_errors(result));
    REQUIRE(result.errors.empty());
    CHECK(result.warnings.empty());
    REQUIRE(result.value);
    const cfg::config& c = *result.value;

    CHECK(c.source.empty());
    REQUIRE(c.listen.size() == 1);
    CHECK(c.listen[0] == cfg::endpoint{"127.0.0.1", 3128});

    REQUIRE(c.upstreams.size() == 1);
    CHECK(c.upstreams[0].name == "upstream");
    CHECK(c.upstreams[0].transport == cfg::upstream_transport::http);
    CHECK(c.upstreams[0].address == cfg::endpoint{"proxy.corp.example", 8080});
    CHECK_FALSE(c.upstreams[0].credentials.has_value());
    CHECK(c.upstreams[0].schemes ==
          std::vector<cfg::auth_scheme>{cfg::auth_scheme::digest, cfg::auth_scheme::basic});
    CHECK_FALSE(c.upstreams[0].ca_file.has_value());
    CHECK(c.credentials.empty());

    REQUIRE(c.access.clients.size() == 2);
    CHECK(c.access.clients[0] == cfg::cidr{{127, 0, 0, 0}, 8});
    CHECK(c.access.clients[1] == cfg::cidr{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128});
    CHECK_FALSE(c.access.clients_explicit);
    REQUIRE(c.access.connect_ports.size() == 1);
    CHECK(c.access.connect_ports[0] == cfg::port_range{443, 443});

    CHECK(c.timeouts.connect == 5s);
    CHECK(c.timeouts.client_header == 15s);
    CHECK(c.timeouts.upstream_response == 10s);
    CHECK(c.timeouts.tunnel_idle == 5min);
    CHECK(c.timeouts.shutdown == 10s);

    CHECK(c.limits.max_connections == 4096);
    CHECK(c.limits.max_header_bytes == 65536);
    CHECK(c.limits.replay_body == 1048576);

    CHECK(c.lockout.max_rejections == 1);
    CHECK_FALSE(c.lockout.retry_after.has_value());

    CHECK(c.log.level == cfg::log_level::info);
    CHECK_FALSE(c.log.file.has_value());
    CHECK_FALSE(c.log.access.has_value());
    CHECK(c.log.event_log);

    REQUIRE(c.admin.listen.has_value());
    CHECK(*c.admin.listen == cfg::endpoint{"127.0.0.1", 3129});
    CHECK_FALSE(c.admin.token_source.has_value());
    CHECK(c.admin.token.empty());
}

TEST_CASE("empty sections keep the defaults", "[loader]") {
    const auto result = load(with_upstream(
        R"("access": {}, "timeouts": {}, "limits": {}, "log": {}, "credentials": {}, "lockout": {})"));
    INFO(all_errors(result));
    REQUIRE(result.value);
    CHECK(result.value->access.clients.size() == 2);
    CHECK_FALSE(result.value->access.clients_explicit);
    CHECK(result.value->access.connect_ports == std::vector<cfg::port_range>{{443, 443}});
    CHECK(result.value->timeouts.tunnel_idle == 5min);
    CHECK(result.value->limits.max_connections == 4096);
    CHECK(result.value->log.level == cfg::log_level::info);
    CHECK(result.value->limits.replay_body == 1048576);
    CHECK(result.value->lockout.max_rejections == 1);
    CHECK(result.value->credentials.empty());
    CHECK(result.warnings.empty());
}

TEST_CASE("every key of this version is read", "[loader]") {
    const auto result = load(R"({
        "listen": ["127.0.0.1:0", "[::1]:3128", "10.1.2.3:8080"],
        "upstreams": [{"name": "corp", "address": "http://[2001:db8::7]:3128/"}],
        "access": {"clients": ["10.0.0.0/8", "::1", "192.0.2.7"],
                   "connect_ports": [443, "8443-8445", 563]},
        "timeouts": {"connect": "250ms", "client_header": "1m", "upstream_response": "2s",
                     "tunnel_idle": "1h", "shutdown": "24h"},
        "limits": {"max_connections": 1, "max_header_bytes": 16777216},
        "log": {"level": "trace", "file": "/var/log/authshim.log"}
    })");
    INFO(all_errors(result));
    REQUIRE(result.value);
    const cfg::config& c = *result.value;
    CHECK(c.listen ==
          std::vector<cfg::endpoint>{{"127.0.0.1", 0}, {"::1", 3128}, {"10.1.2.3", 8080}});
    REQUIRE(c.upstreams.size() == 1);
    CHECK(c.upstreams[0].name == "corp");
    CHECK(c.upstreams[0].transport == cfg::upstream_transport::http);
    CHECK(c.upstreams[0].address == cfg::endpoint{"2001:db8::7", 3128});
    CHECK(c.access.clients_explicit);
    REQUIRE(c.access.clients.size() == 3);
    CHECK(c.access.clients[0].to_string() == "10.0.0.0/8");
    CHECK(c.access.clients[1].to_string() == "::1/128");
    CHECK(c.access.clients[2].to_string() == "192.0.2.7/32");
    CHECK(c.access.connect_ports ==
          std::vector<cfg::port_range>{{443, 443}, {8443, 8445}, {563, 563}});
    CHECK(c.timeouts.connect == 250ms);
    CHECK(c.timeouts.client_header == 1min);
    CHECK(c.timeouts.upstream_response == 2s);
    CHECK(c.timeouts.tunnel_idle == 1h);
    CHECK(c.timeouts.shutdown == 24h);
    CHECK(c.limits.max_connections == 1);
    CHECK(c.limits.max_header_bytes == 16777216);
    CHECK(c.log.level == cfg::log_level::trace);
    // On Windows "/var/log/authshim.log" is root-relative: it takes the config directory's drive.
    CHECK(c.log.file == absolute("/var/log/authshim.log"));
}

TEST_CASE("limits accept their bounds", "[loader]") {
    const auto low =
        load(with_upstream(R"("limits": {"max_connections": 1, "max_header_bytes": 1024})"));
    REQUIRE(low.value);
    CHECK(low.value->limits.max_connections == 1);
    CHECK(low.value->limits.max_header_bytes == 1024);
    const auto high = load(
        with_upstream(R"("limits": {"max_connections": 1000000, "max_header_bytes": 16777216})"));
    REQUIRE(high.value);
    CHECK(high.value->limits.max_connections == 1000000);
    CHECK(high.value->limits.max_header_bytes == 16777216);
}

TEST_CASE("log levels", "[loader]") {
    const std::pair<const char*, cfg::log_level> levels[] = {
        {"trace", cfg::log_level::trace}, {"debug", cfg::log_level::debug},
        {"info", cfg::log_level::info},   {"warn", cfg::log_level::warn},
        {"error", cfg::log_level::error}, {"off", cfg::log_level::off},
    };
    for (const auto& [name, level] : levels) {
        const auto result =
            load(with_upstream(std::string(R"("log": {"level": ")") + name + "\"}"));
        INFO(name);
        REQUIRE(result.value);
        CHECK(result.value->log.level == level);
    }
}

TEST_CASE("upstream address forms", "[loader]") {
    const std::pair<const char*, cfg::endpoint> forms[] = {
        {"proxy.corp.example:8080", {"proxy.corp.example", 8080}},
        {"http://proxy.corp.example:8080", {"proxy.corp.example", 8080}},
        {"HTTP://proxy.corp.example:8080/", {"proxy.corp.example", 8080}},
        {"192.0.2.10:3128", {"192.0.2.10", 3128}},
        {"[2001:db8::10]:1", {"2001:db8::10", 1}},
        {"proxy:65535", {"proxy", 65535}},
    };
    for (const auto& [text, expected] : forms) {
        INFO(text);
        const auto result = load(std::string(R"({"upstreams": [{"address": ")") + text + "\"}]}");
        INFO(all_errors(result));
        REQUIRE(result.value);
        CHECK(result.value->upstreams.at(0).address == expected);
        CHECK(result.value->upstreams.at(0).transport == cfg::upstream_transport::http);
    }
}

TEST_CASE("comments are accepted", "[loader]") {
    const auto result = load(R"(// authshim configuration
{
    /* the corporate proxy */
    "upstreams": [{"address": "proxy.corp.example:8080"}], // one for now
    "log": {"level": /* inline */ "debug"}
}
// trailing comment)");
    INFO(all_errors(result));
    REQUIRE(result.value);
    CHECK(result.value->log.level == cfg::log_level::debug);
}

TEST_CASE("a UTF-8 byte order mark is accepted", "[loader]") {
    const auto result = load("\xEF\xBB\xBF" + minimal);
    INFO(all_errors(result));
    CHECK(result.value);
}

TEST_CASE("log.file is resolved against the config directory", "[loader]") {
    auto file_of = [](const std::string& path, const fs::path& base) {
        const auto result = load(with_upstream(R"("log": {"file": ")" + path + "\"}"), base);
        INFO(all_errors(result));
        REQUIRE(result.value);
        REQUIRE(result.value->log.file);
        return *result.value->log.file;
    };
    CHECK(file_of("logs/authshim.log", config_dir) == absolute("/etc/authshim/logs/authshim.log"));
    CHECK(file_of("./authshim.log", config_dir) == absolute("/etc/authshim/authshim.log"));
    CHECK(file_of("../../var/log/a.log", config_dir) == absolute("/var/log/a.log"));
    // Absolute on POSIX; root-relative on Windows, where it keeps the config directory's drive.
    CHECK(file_of("/var/log/authshim.log", config_dir) == absolute("/var/log/authshim.log"));
    if (!paths::posix_paths()) {
        // A path with a drive is absolute there, whatever the config directory's drive.
        CHECK(file_of(paths::json_escaped(R"(D:\logs\a.log)"), config_dir) ==
              fs::path(R"(D:\logs\a.log)"));
        CHECK(file_of("D:/logs/a.log", config_dir) == fs::path(R"(D:\logs\a.log)"));
    }
    // A base directory without a drive (on Windows) takes the working directory's drive.
    CHECK(file_of("a.log", "/etc/authshim") ==
          (fs::current_path().root_name() / "/etc/authshim/a.log").lexically_normal());
    // A relative base directory is itself made absolute.
    const fs::path relative = file_of("a.log", "conf");
    CHECK(relative.is_absolute());
    CHECK(relative == (fs::current_path() / "conf" / "a.log").lexically_normal());
}

TEST_CASE("a non-loopback listen address needs explicit access.clients", "[loader]") {
    SECTION("loopback addresses need nothing") {
        const auto result = load(with_upstream(
            R"("listen": ["127.0.0.1:1", "127.9.9.9:2", "[::1]:3", "[::ffff:127.0.0.1]:4"])"));
        INFO(all_errors(result));
        CHECK(result.value);
    }
    SECTION("refused without access.clients, one error per address") {
        const auto result = load(with_upstream(
            R"("listen": ["127.0.0.1:3000", "0.0.0.0:3128", "[::]:3129", "192.0.2.1:3130"],
               "access": {"connect_ports": [443]})"));
        CHECK_FALSE(result.value);
        REQUIRE(result.errors.size() == 3);
        CHECK(result.errors[0].where == "/etc/authshim/authshim.json: /listen/1");
        CHECK(result.errors[1].where == "/etc/authshim/authshim.json: /listen/2");
        CHECK(result.errors[2].where == "/etc/authshim/authshim.json: /listen/3");
        for (const auto& error : result.errors) {
            CHECK_THAT(error.what, Catch::Contains("not a loopback address"));
            CHECK_THAT(error.what, Catch::Contains("access.clients"));
            CHECK_THAT(error.what, Catch::Contains("never be an open proxy by accident"));
        }
        CHECK_THAT(result.errors[0].what, Catch::Contains("\"0.0.0.0:3128\""));
        CHECK_THAT(result.errors[1].what, Catch::Contains("\"[::]:3129\""));
    }
    SECTION("accepted with access.clients") {
        const auto result = load(with_upstream(
            R"("listen": ["0.0.0.0:3128", "[::]:3129"], "access": {"clients": ["10.0.0.0/8"]})"));
        INFO(all_errors(result));
        REQUIRE(result.value);
        CHECK(result.value->access.clients_explicit);
        CHECK(result.value->access.clients == std::vector<cfg::cidr>{{{10, 0, 0, 0}, 8}});
    }
}

TEST_CASE("an access.clients block of /0 is allowed with a warning", "[loader]") {
    const auto result = load(with_upstream(R"("access": {"clients": ["0.0.0.0/0", "::/0"]})"));
    REQUIRE(result.value);
    REQUIRE(result.warnings.size() == 2);
    CHECK(result.warnings[0].where == "/etc/authshim/authshim.json: /access/clients/0");
    CHECK_THAT(result.warnings[0].what, Catch::Contains("every IPv4 client"));
    CHECK_THAT(result.warnings[1].what, Catch::Contains("every IPv6 client"));
}

TEST_CASE("an empty connect_ports list allows no CONNECT", "[loader]") {
    const auto result = load(with_upstream(R"("access": {"connect_ports": []})"));
    REQUIRE(result.value);
    CHECK(result.value->access.connect_ports.empty());
}

TEST_CASE("several ephemeral listen ports are not duplicates", "[loader]") {
    const auto result = load(with_upstream(R"("listen": ["127.0.0.1:0", "127.0.0.1:0"])"));
    INFO(all_errors(result));
    REQUIRE(result.value);
    CHECK(result.value->listen.size() == 2);
}

TEST_CASE("the example config of ARCHITECTURE.md loads", "[loader]") {
    // Verbatim from shared/docs/ARCHITECTURE.md, except the DPAPI blob, which the document cuts
    // short with "..." (the loader refuses that: it is not base64).
    const auto result = load(R"({
  "listen": ["127.0.0.1:3128"],
  "upstreams": [
    { "name": "corp", "address": "proxy.corp.example:8080",
      "credentials": "machine", "schemes": ["digest", "basic"] }
  ],
  "credentials": {
    "machine": { "username": "CORP\\svc-pki", "password": { "dpapi": "AQAAANCMnd8B" } }
  },
  "access": { "clients": ["127.0.0.0/8", "::1/128"], "connect_ports": [443] },
  "timeouts": { "connect": "5s", "client_header": "15s", "upstream_response": "10s",
                "tunnel_idle": "5m", "shutdown": "10s" },
  "limits": { "max_connections": 4096, "max_header_bytes": 65536, "replay_body": 1048576 },
  "lockout": { "max_rejections": 1, "retry_after": null },
  "admin": { "listen": "127.0.0.1:3129" },
  "log": { "level": "info", "file": "logs/authshim.log", "access": false, "event_log": true }
})");
    INFO(all_errors(result));
    REQUIRE(result.value);
    CHECK(result.warnings.empty());
    const cfg::config& c = *result.value;
    REQUIRE(c.admin.listen);
    CHECK(*c.admin.listen == cfg::endpoint{"127.0.0.1", 3129});
    CHECK_FALSE(c.admin.token_source);
    CHECK_FALSE(c.log.access);
    CHECK(c.log.file == absolute("/etc/authshim/logs/authshim.log"));
    CHECK(c.credentials.at("machine").username == "CORP\\svc-pki");
}

TEST_CASE("load_file reads a file and resolves against its directory", "[loader][file]") {
    temp_dir dir;
    const fs::path file = dir.write(
        "etc/authshim.json",
        R"({"upstreams": [{"address": "proxy.corp.example:8080"}], "log": {"file": "logs/a.log"}})");
    const auto result = cfg::load_file(file);
    INFO(all_errors(result));
    REQUIRE(result.value);
    CHECK(result.value->source == file);
    CHECK(result.value->source.is_absolute());
    REQUIRE(result.value->log.file);
    CHECK(*result.value->log.file == dir.path() / "etc" / "logs" / "a.log");
}

TEST_CASE("load_file makes a relative file name absolute", "[loader][file]") {
    temp_dir dir;
    const fs::path file = dir.write("a.json", minimal);
    fs::path relative = fs::relative(file, fs::current_path());
    std::optional<working_directory> cwd;
    if (relative.empty()) {
        // No relative path leads there from the working directory (on Windows: another drive,
        // e.g. Z:\ under Wine against a temp dir on C:\): start from a directory beside it.
        fs::create_directories(dir.path() / "cwd");
        cwd.emplace(dir.path() / "cwd");
        relative = fs::path("..") / "a.json";
    }
    REQUIRE_FALSE(relative.empty());
    REQUIRE(relative.is_relative());
    const auto result = cfg::load_file(relative);
    INFO(all_errors(result));
    REQUIRE(result.value);
    CHECK(result.value->source == file);
}

TEST_CASE("load_file names the file in every diagnostic", "[loader][file]") {
    temp_dir dir;
    const fs::path file = dir.write("bad.json", "{\n  \"upstreams\": [],\n  \"x\": 1\n}\n");
    const auto result = cfg::load_file(file);
    CHECK_FALSE(result.value);
    REQUIRE(result.errors.size() == 2);
    CHECK(result.errors[0].where == paths::utf8(file) + ": /x");
    CHECK(result.errors[1].where == paths::utf8(file) + ": /upstreams");

    const fs::path syntax = dir.write("syntax.json", "{\n  \"upstreams\": [}\n");
    const auto broken = cfg::load_file(syntax);
    REQUIRE(broken.errors.size() == 1);
    CHECK(broken.errors[0].where == paths::utf8(syntax) + ":2:17");
}

TEST_CASE("load_file reports a missing or unreadable file once", "[loader][file]") {
    temp_dir dir;
    SECTION("missing") {
        const fs::path missing = dir.path() / "missing.json";
        const auto result = cfg::load_file(missing);
        CHECK_FALSE(result.value);
        REQUIRE(result.errors.size() == 1);
        CHECK(result.errors[0].where == paths::utf8(missing));
        CHECK_THAT(result.errors[0].what, Catch::Contains("cannot read the configuration file"));
        CHECK_THAT(result.errors[0].what, Catch::Contains("No such file or directory"));
    }
    SECTION("a directory") {
        const auto result = cfg::load_file(dir.path());
        REQUIRE(result.errors.size() == 1);
        CHECK_THAT(result.errors[0].what, Catch::Contains("is a directory"));
    }
    SECTION("empty") {
        const fs::path empty = dir.write("empty.json", "  \n");
        const auto result = cfg::load_file(empty);
        REQUIRE(result.errors.size() == 1);
        CHECK(result.errors[0].where == paths::utf8(empty) + ":1:1");
        CHECK_THAT(result.errors[0].what, Catch::Contains("the configuration is empty"));
    }
    SECTION("unreadable") {
        const fs::path file = dir.write("unreadable.json", minimal);
        fs::permissions(file, fs::perms::none);
        if (std::ifstream(file)) {
            WARN("running with privileges that read any file: unreadable case not checked");
            return;
        }
        const auto result = cfg::load_file(file);
        REQUIRE(result.errors.size() == 1);
        CHECK(result.errors[0].where == paths::utf8(file));
        CHECK_THAT(result.errors[0].what, Catch::Contains("Permission denied"));
    }
}

TEST_CASE("diagnostic::to_string is where: what", "[loader]") {
    const cfg::diagnostic d{"/etc/a.json: /listen", "expected an array"};
    CHECK(d.to_string() == "/etc/a.json: /listen: expected an array");
}

TEST_CASE("the packaged example config loads with the documented defaults", "[loader][file]") {
    // Made absolute as load_file makes it: on Windows __FILE__ may have no drive.
    const fs::path example =
        fs::absolute(fs::path(__FILE__).parent_path() / "../../../packaging/authshim.example.json")
            .lexically_normal();
    if (!fs::exists(example)) {
        WARN("source tree not found from " __FILE__ ": example config not checked");
        return;
    }
    const auto result = cfg::load_file(example);
    INFO(all_errors(result));
    REQUIRE(result.value);
    CHECK(result.warnings.empty());
    const cfg::config& c = *result.value;
    CHECK(c.source == example);
    CHECK(c.source.is_absolute());
    CHECK(c.listen == std::vector<cfg::endpoint>{{"127.0.0.1", 3128}});
    REQUIRE(c.upstreams.size() == 1);
    CHECK(c.upstreams[0].name == "corp");
    CHECK(c.upstreams[0].address == cfg::endpoint{"proxy.corp.example", 8080});

    // Everything else is spelled out at its default value.
    const auto defaults = load(minimal);
    REQUIRE(defaults.value);
    const cfg::config& d = *defaults.value;
    CHECK(c.access.clients == d.access.clients);
    CHECK(c.access.clients_explicit);
    CHECK(c.access.connect_ports == d.access.connect_ports);
    CHECK(c.timeouts.connect == d.timeouts.connect);
    CHECK(c.timeouts.client_header == d.timeouts.client_header);
    CHECK(c.timeouts.upstream_response == d.timeouts.upstream_response);
    CHECK(c.timeouts.tunnel_idle == d.timeouts.tunnel_idle);
    CHECK(c.timeouts.shutdown == d.timeouts.shutdown);
    CHECK(c.limits.max_connections == d.limits.max_connections);
    CHECK(c.limits.max_header_bytes == d.limits.max_header_bytes);
    CHECK(c.limits.replay_body == d.limits.replay_body);
    CHECK(c.lockout.max_rejections == d.lockout.max_rejections);
    CHECK(c.lockout.retry_after == d.lockout.retry_after);
    CHECK(c.upstreams[0].schemes == d.upstreams[0].schemes);
    CHECK(c.log.level == d.log.level);
    CHECK_FALSE(c.log.file.has_value());
    CHECK(c.log.access == d.log.access);
    CHECK(c.admin.listen == d.admin.listen);
    CHECK(c.admin.token_source == d.admin.token_source);
}
