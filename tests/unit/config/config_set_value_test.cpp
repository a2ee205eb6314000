// config::set_value: the splice `authshim config set` (and the MSI's UPSTREAM/LISTEN_PORT/BYPASS)
// edits configuration files with.
#include "config/config_edit.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace cfg = authshim::config;
using path = std::vector<cfg::path_step>;

namespace {

std::string set(const std::string& text, const path& where, const std::string& value) {
    const auto result = cfg::set_value(text, where, value);
    INFO("error: " << result.error);
    REQUIRE(result.text.has_value());
    CHECK(result.error.empty());
    return *result.text;
}

std::string refused(const std::string& text, const path& where, const std::string& value) {
    const auto result = cfg::set_value(text, where, value);
    INFO("text: " << result.text.value_or(""));
    REQUIRE_FALSE(result.text.has_value());
    CHECK_FALSE(result.error.empty());
    return result.error;
}

const path upstream_address{std::string("upstreams"), std::size_t{0}, std::string("address")};
const path winhttp_bypass{std::string("winhttp"), std::string("bypass")};
const path listen{std::string("listen")};

} // namespace

TEST_CASE("set_value: replaces a value in place, every other byte kept") {
    const std::string text = "// corp proxy\n"
                             "{\n"
                             "  \"upstreams\": [\n"
                             "    { \"name\": \"corp\", /* old: */ \"address\": \"old:1\" } // x\n"
                             "  ],\n"
                             "  \"listen\": [\"127.0.0.1:3128\"]\n"
                             "}\n";
    CHECK(set(text, upstream_address, "\"new.example:8080\"") ==
          "// corp proxy\n"
          "{\n"
          "  \"upstreams\": [\n"
          "    { \"name\": \"corp\", /* old: */ \"address\": \"new.example:8080\" } // x\n"
          "  ],\n"
          "  \"listen\": [\"127.0.0.1:3128\"]\n"
          "}\n");
    CHECK(set(text, listen, "[\"127.0.0.1:3130\"]").find("\"listen\": [\"127.0.0.1:3130\"]\n}") !=
          std::string::npos);
}

TEST_CASE("set_value: a multi-line value becomes the one-line value") {
    const std::string text =
        "{\"listen\": [\n  \"127.0.0.1:3128\",\n  \"[::1]:3128\"\n], \"a\": 1}";
    CHECK(set(text, listen, "[\"127.0.0.1:9\"]") == "{\"listen\": [\"127.0.0.1:9\"], \"a\": 1}");
}

TEST_CASE("set_value: missing members and objects are created") {
    SECTION("a block document gets a block, indented like its siblings, CRLF kept") {
        const std::string text = "{\r\n\t\"listen\": [\"127.0.0.1:3128\"] // here\r\n}\r\n";
        CHECK(set(text, winhttp_bypass, "\"<local>;*.corp\"") ==
              "{\r\n\t\"listen\": [\"127.0.0.1:3128\"], // here\r\n"
              "\t\"winhttp\": {\r\n\t\t\"bypass\": \"<local>;*.corp\"\r\n\t}\r\n}\r\n");
    }
    SECTION("the member of an existing object") {
        const std::string text = "{\n  \"winhttp\": {\n    \"x\": 1\n  }\n}\n";
        CHECK(set(text, winhttp_bypass, "\"a\"") ==
              "{\n  \"winhttp\": {\n    \"x\": 1,\n    \"bypass\": \"a\"\n  }\n}\n");
    }
    SECTION("three levels deep") {
        const std::string text = "{\n  \"a\": 1\n}";
        const path deep{std::string("x"), std::string("y"), std::string("z")};
        CHECK(set(text, deep, "true") ==
              "{\n  \"a\": 1,\n  \"x\": {\n    \"y\": {\n      \"z\": true\n    }\n  }\n}");
    }
    SECTION("a one-line document stays on one line") {
        CHECK(set("{\"a\": 1}", winhttp_bypass, "\"b\"") ==
              "{\"a\": 1, \"winhttp\": {\"bypass\": \"b\"}}");
        CHECK(set("{}", listen, "[]") == "{\"listen\": []}");
    }
}

TEST_CASE("set_value: refusals name the place and never a string value") {
    CHECK(refused("{\"upstreams\": []}", upstream_address, "\"h:1\"") ==
          "1:15: \"/upstreams\" has 0 element(s); there is no \"/upstreams/0\" to set");
    CHECK_THAT(refused("{\"a\": 1}", upstream_address, "\"h:1\""),
               Catch::Contains("\"/upstreams\" does not exist"));
    CHECK_THAT(refused("{\"upstreams\": {\"secret-ish\": 1}}", upstream_address, "\"h:1\""),
               Catch::Contains("\"/upstreams\" is an object; expected an array"));
    CHECK_THAT(refused("{\"winhttp\": \"s3cret\"}", winhttp_bypass, "\"b\""),
               Catch::Contains("1:13: \"/winhttp\" is a string; expected an object") &&
                   !Catch::Contains("s3cret"));
    CHECK_THAT(refused("[1]", listen, "[]"),
               Catch::Contains("the top-level value is an array; expected an object"));
    CHECK_THAT(refused("{\"listen\": 1, \"listen\": 2}", listen, "[]"),
               Catch::Contains("duplicate key \"listen\""));
    CHECK_THAT(refused("{\"a\": 1,}", listen, "[]"), Catch::StartsWith("1:"));
    CHECK_THAT(refused("{\"a\": 1}", listen, "[oops"), Catch::Contains("would not parse"));
}
