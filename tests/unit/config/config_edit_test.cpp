#include "config/config_edit.hpp"

#include "config/loader.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace cfg = authshim::config;
using nlohmann::json;

namespace {

const std::string blob = "AQIDBAUGBwg="; // 8 bytes: 01..08
const std::string user = "CORP\\svc";    // one backslash, written "CORP\\svc" in JSON

/// The edited text; fails the test (with the error) when the edit is refused.
std::string edit(const std::string& text, const std::string& name = "corp",
                 const std::string& username = user) {
    const auto result = cfg::set_dpapi_credential(text, name, username, blob);
    INFO("error: " << result.error);
    REQUIRE(result.text.has_value());
    CHECK(result.error.empty());
    return *result.text;
}

/// The error of a refused edit; fails the test when the edit succeeds.
std::string refused(const std::string& text, const std::string& name = "corp",
                    const std::string& username = user, const std::string& dpapi = blob) {
    const auto result = cfg::set_dpapi_credential(text, name, username, dpapi);
    INFO("text: " << result.text.value_or(""));
    REQUIRE_FALSE(result.text.has_value());
    CHECK_FALSE(result.error.empty());
    CHECK(result.error.find(blob) == std::string::npos);
    return result.error;
}

json parse(const std::string& text) {
    return json::parse(text, nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
}

json expected_entry(const std::string& username = user) {
    return {{"username", username}, {"password", {{"dpapi", blob}}}};
}

/// Every byte of `original`, in order, is in `edited` (nothing lost or moved, only added).
bool keeps_every_byte(const std::string& original, const std::string& edited) {
    std::size_t at = 0;
    for (const char c : edited)
        if (at < original.size() && original[at] == c) ++at;
    return at == original.size();
}

bool has_bare_lf(const std::string& text) {
    for (std::size_t i = 0; i < text.size(); ++i)
        if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) return true;
    return false;
}

} // namespace

TEST_CASE("config_edit: an existing entry gets a new value and nothing else changes",
          "[config_edit]") {
    const std::string text = "{\n"
                             "    // the proxy account\n"
                             "    \"credentials\": {\n"
                             "        \"corp\": {\"username\": \"old\", \"password\": "
                             "{\"env\": \"PW\"}}, // keep me\n"
                             "        \"other\": {\"username\": \"x\", \"password\": "
                             "{\"env\": \"Y\"}}\n"
                             "    }\n"
                             "}\n";
    const std::string expected = "{\n"
                                 "    // the proxy account\n"
                                 "    \"credentials\": {\n"
                                 "        \"corp\": {\"username\": \"CORP\\\\svc\", \"password\": "
                                 "{\"dpapi\": \"AQIDBAUGBwg=\"}}, // keep me\n"
                                 "        \"other\": {\"username\": \"x\", \"password\": "
                                 "{\"env\": \"Y\"}}\n"
                                 "    }\n"
                                 "}\n";
    CHECK(edit(text) == expected);
}

TEST_CASE("config_edit: a multi-line entry is replaced by a block at its indentation",
          "[config_edit]") {
    const std::string text = "{\n"
                             "  \"credentials\": {\n"
                             "    \"corp\": {\n"
                             "      \"username\": \"old\",\n"
                             "      \"password\": { \"plain\": \"hunter2\" } /* inside */\n"
                             "    }\n"
                             "  }\n"
                             "}";
    const std::string expected = "{\n"
                                 "  \"credentials\": {\n"
                                 "    \"corp\": {\n"
                                 "      \"username\": \"CORP\\\\svc\",\n"
                                 "      \"password\": {\"dpapi\": \"AQIDBAUGBwg=\"}\n"
                                 "    }\n"
                                 "  }\n"
                                 "}";
    const auto result = edit(text);
    CHECK(result == expected);
    CHECK(result.find("hunter2") == std::string::npos);
}

TEST_CASE("config_edit: a new entry follows the last one, indented like it", "[config_edit]") {
    const std::string text =
        "{\n"
        "    \"credentials\": {\n"
        "        \"a\": {\"username\": \"u\", \"password\": {\"env\": \"A\"}}\n"
        "    }\n"
        "}\n";
    const std::string expected = "{\n"
                                 "    \"credentials\": {\n"
                                 "        \"a\": {\"username\": \"u\", \"password\": "
                                 "{\"env\": \"A\"}},\n"
                                 "        \"corp\": {\n"
                                 "            \"username\": \"CORP\\\\svc\",\n"
                                 "            \"password\": {\"dpapi\": \"AQIDBAUGBwg=\"}\n"
                                 "        }\n"
                                 "    }\n"
                                 "}\n";
    CHECK(edit(text) == expected);
}

TEST_CASE("config_edit: comments after the last member stay with it", "[config_edit]") {
    const std::string head = "{\n  \"credentials\": {\n    \"a\": {\"env\": 1}";
    const std::string added = "\n    \"corp\": {\n      \"username\": \"CORP\\\\svc\",\n"
                              "      \"password\": {\"dpapi\": \"AQIDBAUGBwg=\"}\n    }";

    SECTION("a line comment on the member's line") {
        CHECK(edit(head + " // primary\n  }\n}") == head + ", // primary" + added + "\n  }\n}");
    }
    SECTION("block comments ending on the member's line") {
        CHECK(edit(head + " /* one */ /* two } \" */\n  }\n}") ==
              head + ", /* one */ /* two } \" */" + added + "\n  }\n}");
    }
    SECTION("a comment on the following line stays after the new member") {
        CHECK(edit(head + "\n    // \"b\": {} retired\n  }\n}") ==
              head + "," + added + "\n    // \"b\": {} retired\n  }\n}");
    }
    SECTION("a block comment running onto the next lines stays after the new member") {
        CHECK(edit(head + " /* multi\n line */\n  }\n}") ==
              head + "," + added + " /* multi\n line */\n  }\n}");
    }
    SECTION("the closing brace on the member's line") {
        CHECK(edit(head + " }\n}") == head + "," + added + " }\n}");
    }
}

TEST_CASE("config_edit: an empty credentials object gets the entry one level deeper",
          "[config_edit]") {
    const std::string block = "\"corp\": {\n"
                              "            \"username\": \"CORP\\\\svc\",\n"
                              "            \"password\": {\"dpapi\": \"AQIDBAUGBwg=\"}\n"
                              "        }";
    auto document = [](const std::string& credentials) {
        return "{\n    \"upstreams\": [],\n    \"credentials\": " + credentials +
               ",\n    \"log\": {}\n}\n";
    };
    CHECK(edit(document("{}")) == document("{\n        " + block + "\n    }"));
    CHECK(edit(document("{ }")) == document("{\n        " + block + "\n    }"));
    CHECK(edit(document("{\n    }")) == document("{\n        " + block + "\n    }"));
    CHECK(edit(document("{ // none yet\n    }")) ==
          document("{ // none yet\n        " + block + "\n    }"));
    CHECK(edit(document("{ /* none { yet */ }")) ==
          document("{ /* none { yet */\n        " + block + "\n    }"));
}

TEST_CASE("config_edit: without credentials the section is added as the last top-level member",
          "[config_edit]") {
    SECTION("indented like the other members") {
        const std::string text = "{\n"
                                 "  \"upstreams\": [{\"address\": \"proxy.corp.example:8080\", "
                                 "\"credentials\": \"corp\"}]\n"
                                 "}\n";
        const std::string expected = "{\n"
                                     "  \"upstreams\": [{\"address\": \"proxy.corp.example:8080\", "
                                     "\"credentials\": \"corp\"}],\n"
                                     "  \"credentials\": {\n"
                                     "    \"corp\": {\n"
                                     "      \"username\": \"CORP\\\\svc\",\n"
                                     "      \"password\": {\"dpapi\": \"AQIDBAUGBwg=\"}\n"
                                     "    }\n"
                                     "  }\n"
                                     "}\n";
        CHECK(edit(text) == expected);
    }
    SECTION("an empty document object") {
        CHECK(edit("{ }") == R"({"credentials": {"corp": {"username": "CORP\\svc", )"
                             R"("password": {"dpapi": "AQIDBAUGBwg="}}}})");
        CHECK(edit("{}\n") == "{\n"
                              "    \"credentials\": {\n"
                              "        \"corp\": {\n"
                              "            \"username\": \"CORP\\\\svc\",\n"
                              "            \"password\": {\"dpapi\": \"AQIDBAUGBwg=\"}\n"
                              "        }\n"
                              "    }\n"
                              "}\n");
    }
    SECTION("tab indentation") {
        CHECK(edit("{\n\t\"log\": {}\n}") == "{\n"
                                             "\t\"log\": {},\n"
                                             "\t\"credentials\": {\n"
                                             "\t\t\"corp\": {\n"
                                             "\t\t\t\"username\": \"CORP\\\\svc\",\n"
                                             "\t\t\t\"password\": {\"dpapi\": \"AQIDBAUGBwg=\"}\n"
                                             "\t\t}\n"
                                             "\t}\n"
                                             "}");
    }
}

TEST_CASE("config_edit: an object written on one line stays on one line", "[config_edit]") {
    CHECK(edit(R"({"upstreams": []})") ==
          R"({"upstreams": [], "credentials": {"corp": {"username": "CORP\\svc", )"
          R"("password": {"dpapi": "AQIDBAUGBwg="}}}})");
    CHECK(edit(R"({"credentials": {"a": {"env": 1} /* first */}})") ==
          R"({"credentials": {"a": {"env": 1}, /* first */ "corp": {"username": "CORP\\svc", )"
          R"("password": {"dpapi": "AQIDBAUGBwg="}}}})");
}

TEST_CASE("config_edit: CRLF documents get CRLF lines", "[config_edit]") {
    const std::string text = "{\r\n"
                             "    \"credentials\": {\r\n"
                             "        \"a\": {\"env\": 1} // first\r\n"
                             "    }\r\n"
                             "}\r\n";
    const std::string expected = "{\r\n"
                                 "    \"credentials\": {\r\n"
                                 "        \"a\": {\"env\": 1}, // first\r\n"
                                 "        \"corp\": {\r\n"
                                 "            \"username\": \"CORP\\\\svc\",\r\n"
                                 "            \"password\": {\"dpapi\": \"AQIDBAUGBwg=\"}\r\n"
                                 "        }\r\n"
                                 "    }\r\n"
                                 "}\r\n";
    const auto result = edit(text);
    CHECK(result == expected);
    CHECK_FALSE(has_bare_lf(result));
    CHECK_FALSE(has_bare_lf(edit("{\r\n}")));
    CHECK_FALSE(has_bare_lf(edit("{\r\n  \"credentials\": {}\r\n}")));
    CHECK(has_bare_lf(edit("{\n  \"credentials\": {}\n}")));
}

TEST_CASE("config_edit: a byte-order mark is kept and takes no column", "[config_edit]") {
    const std::string bom = "\xEF\xBB\xBF";
    const auto result = edit(bom + "{\n    \"log\": {}\n}\n");
    CHECK(result.starts_with(bom + "{\n    \"log\": {},\n    \"credentials\": {\n"));
    CHECK(parse(result)["credentials"]["corp"] == expected_entry());

    CHECK(edit(bom + "{}").starts_with(bom + "{\"credentials\": {\"corp\": {"));
    CHECK(refused(bom + "[]").starts_with("1:1: the top-level value is an array"));
    CHECK(refused(bom + "{\"credentials\": 5}").starts_with("1:17: \"credentials\" is a number"));
}

TEST_CASE("config_edit: keys are compared decoded, not as written", "[config_edit]") {
    const std::string text = R"({"cred\u0065ntials": {"c\u006frp": {"env": 1}, "x": {"env": 2}}})";
    const auto result = edit(text);
    CHECK(result == R"({"cred\u0065ntials": {"c\u006frp": {"username": "CORP\\svc", )"
                    R"("password": {"dpapi": "AQIDBAUGBwg="}}, "x": {"env": 2}}})");
    CHECK(parse(result)["credentials"].size() == 2);

    // Every short escape decodes to its character; the key keeps its spelling.
    const auto escaped =
        edit(R"({"credentials": {"l\/i\r\n\"q\"\\\b\f\t": {"env": 1}}})", "l/i\r\n\"q\"\\\b\f\t");
    CHECK(escaped.starts_with(R"({"credentials": {"l\/i\r\n\"q\"\\\b\f\t": {"username")"));
    CHECK(parse(escaped)["credentials"].size() == 1);

    // Surrogate pairs decode to the same UTF-8 as the name given.
    const auto emoji = edit(R"({"credentials": {"\ud83d\ude00": {"env": 1}}})", "\xF0\x9F\x98\x80");
    CHECK(emoji.starts_with(R"({"credentials": {"\ud83d\ude00": {"username")"));
}

TEST_CASE("config_edit: look-alikes in strings, comments and nested objects are not matched",
          "[config_edit]") {
    const std::string text =
        "{\n"
        "    // \"credentials\": {\"corp\": {}},\n"
        "    /* \"credentials\": { \"corp\" */\n"
        "    \"note\": \"\\\"credentials\\\": {\\\"corp\\\": {} // }\",\n"
        "    \"upstreams\": [{\"credentials\": \"corp\", \"x\": {\"corp\": 1}}]\n"
        "}";
    const auto result = edit(text);
    const json parsed = parse(result);
    CHECK(parsed["credentials"] == json{{"corp", expected_entry()}});
    CHECK(parsed["note"] == "\"credentials\": {\"corp\": {} // }");
    CHECK(parsed["upstreams"][0]["x"]["corp"] == 1);
    CHECK(keeps_every_byte(text, result));
}

TEST_CASE("config_edit: names and user names are escaped", "[config_edit]") {
    const std::string name = "a\"b\\c/d\te";
    const std::string odd_user = "CORP\\svc \"x\"\n\x01\x1f\x7f J\xC3\xBCrgen \xE2\x82\xAC";
    const auto result = edit("{}", name, odd_user);
    CHECK(result.find(R"("a\"b\\c/d\te": {)") != std::string::npos);
    CHECK(result.find(R"("username": "CORP\\svc \"x\"\n\u0001\u001f)"
                      "\x7f J\xC3\xBCrgen \xE2\x82\xAC\",") != std::string::npos);
    CHECK(parse(result)["credentials"][name] == expected_entry(odd_user));

    // The escaped name is found again: a second edit replaces, not adds.
    const auto again = edit(result, name, "second");
    CHECK(parse(again)["credentials"].size() == 1);
    CHECK(parse(again)["credentials"][name]["username"] == "second");
}

TEST_CASE("config_edit: syntax errors are refused with their position", "[config_edit]") {
    CHECK(refused("").starts_with("1:1: "));
    const auto comma = refused("{\n  \"credentials\": {\n    \"a\": 1,\n  }\n}");
    CHECK(comma.starts_with("4:3: "));
    CHECK(comma.find("unexpected '}'") != std::string::npos);
    CHECK(refused("{\"a\": 1} x").starts_with("1:10: "));
    // Where the parser stopped, as the loader reports it: the end for an open comment.
    const auto comment = refused("{ /* never closed }");
    CHECK(comment.starts_with("1:20: "));
    CHECK(comment.find("missing closing '*/'") != std::string::npos);
    CHECK(refused("{\"a\": tru}") == "1:10: syntax error while parsing value - invalid literal");
}

TEST_CASE("config_edit: error texts quote no secret", "[config_edit]") {
    // nlohmann quotes the token it stopped in; the blob (or a plain password) may be in it.
    const auto bad_blob =
        refused(R"({"credentials": {"corp": {"password": {"dpapi": ")" + blob + R"(\q"}}}})");
    CHECK(bad_blob.find("AQIDBAUG") == std::string::npos);
    const auto bad_plain =
        refused("{\"credentials\": {\"corp\": {\"password\": {\"plain\": \"hunter2\x01\"}}}}");
    CHECK(bad_plain.starts_with("1:"));
    CHECK(bad_plain.find("hunter2") == std::string::npos);
}

TEST_CASE("config_edit: wrong shapes and duplicates are refused with where they are",
          "[config_edit]") {
    CHECK(refused("[1, 2]") == "1:1: the top-level value is an array; expected an object such "
                               "as {\"credentials\": {}}");
    CHECK(refused("\n  \"text\"").starts_with("2:3: the top-level value is a string"));
    CHECK(refused("{\n  \"credentials\": \"corp\"\n}")
              .starts_with("2:18: \"credentials\" is a string; expected an object"));
    CHECK(refused("{\"credentials\": [{}]}").starts_with("1:17: \"credentials\" is an array"));
    CHECK(refused("{\"credentials\": null}").starts_with("1:17: \"credentials\" is null"));

    CHECK(refused("{\n  \"credentials\": {},\n  // again\n  \"credentials\": {}\n}") ==
          "4:3: duplicate key \"credentials\" in the top-level object (first at 2:3); the "
          "loader refuses duplicate keys, remove one");
    CHECK(refused(R"({"cred\u0065ntials": {}, "credentials": {}})")
              .starts_with("1:26: duplicate key \"credentials\""));
    CHECK(refused(R"({"credentials": {"corp": {}, "corp": {}}})") ==
          "1:30: duplicate key \"corp\" in \"credentials\" (first at 1:18); the loader refuses "
          "duplicate keys, remove one");
    CHECK(refused(R"({"credentials": {"a": {}, "a": {}}})").starts_with("1:27: duplicate key"));
    CHECK(refused(R"({"log": {}, "log": {}})").starts_with("1:13: duplicate key \"log\""));
}

TEST_CASE("config_edit: bad arguments are refused", "[config_edit]") {
    CHECK(refused("{}", "") ==
          "the credential name is empty; expected a name such as \"corp-proxy\"");
    CHECK(refused("{}", "corp", "").starts_with("the user name is empty"));
    CHECK(refused("{}", "\xC3") == "the credential name is not valid UTF-8");
    CHECK(refused("{}", "corp", "CORP\\\xFF") == "the user name is not valid UTF-8");
    CHECK(refused("{}", "corp", user, "not base64!").starts_with("the DPAPI blob is not base64"));
    CHECK(refused("{}", "corp", user, "").starts_with("the DPAPI blob is not base64"));
    // Argument errors come before the document is looked at.
    CHECK(refused("[", "").starts_with("the credential name is empty"));
}

TEST_CASE("config_edit: never crashes on a truncated document", "[config_edit]") {
    const std::string text =
        "\xEF\xBB\xBF{ // c\n  \"credentials\": { \"a\": {\"u\": \"x\\u00e9\\\"\"},"
        " /* } */ \"corp\": [1.5e3, true, null] },\n  \"s\": \"//\"\n}";
    for (std::size_t length = 0; length <= text.size(); ++length) {
        const auto result = cfg::set_dpapi_credential(text.substr(0, length), "corp", user, blob);
        INFO("length " << length << ": " << result.error);
        CHECK(result.text.has_value() == result.error.empty());
        if (result.text) CHECK(parse(*result.text)["credentials"]["corp"] == expected_entry());
    }
    // Deep nesting is walked without recursion.
    const std::string deep = "{\"x\": " + std::string(5000, '[') + std::string(5000, ']') + "}";
    CHECK(parse(edit(deep))["credentials"]["corp"] == expected_entry());
}

TEST_CASE("config_edit: round trip keeps everything but the entry", "[config_edit]") {
    struct document {
        std::string text;
        std::vector<std::string> kept; ///< comments and odd strings that must survive as written
        std::string old_value;         ///< the value replaced, when the entry exists
    };
    const std::string bom = "\xEF\xBB\xBF";
    const std::vector<document> documents = {
        {"// authshim\n{\n  /* { \"credentials\": \"}\" */\n  \"upstreams\": [{\"address\": "
         "\"proxy.corp.example:8080\", \"credentials\": \"corp\"}], // one proxy\n"
         "  \"credentials\": { // accounts\n"
         "    \"corp\": { \"username\": \"old\", /* { */ \"password\": { \"env\": \"PW\" } },\n"
         "    \"other\": { \"username\": \"x\", \"password\": { \"file\": \"/run/pw\" } }\n"
         "  }, /* after */\n  \"log\": { \"level\": \"info\" }\n}\n// end\n",
         {"// authshim\n", "/* { \"credentials\": \"}\" */", "// one proxy", "// accounts",
          "/* after */", "// end\n"},
         "{ \"username\": \"old\", /* { */ \"password\": { \"env\": \"PW\" } }"},
        {"{\n    \"urls\": [\"http://a/*b*/\", \"{//}\"],\n    \"credentials\": {\n"
         "        \"a\": {\"username\": \"u\\\\v\", \"password\": {\"env\": \"A\"}} // last\n"
         "        // trailing note { \"corp\": }\n    }\n}",
         {"\"http://a/*b*/\"", "\"{//}\"", "// last", "// trailing note { \"corp\": }"},
         ""},
        {bom + "{\r\n  \"upstreams\": [],\r\n  \"timeouts\": {\"connect\": \"5s\"} /* t */ // x\r\n"
               "  // commented: \"credentials\": {}\r\n}\r\n",
         {bom + "{\r\n", "/* t */ // x", "// commented: \"credentials\": {}\r\n"},
         ""},
        {"{\"credentials\": {/* none */}, \"s\": \"\\\"}\\\\\"}",
         {"/* none */", "\"s\": \"\\\"}\\\\\"}"},
         ""},
        {"{\n\t\"credentials\": {\n\t\t\"corp\": {\n\t\t\t\"username\": \"old\",\n"
         "\t\t\t\"password\": {\"plain\": \"x\"}\n\t\t}\n\t} // tabs\n}",
         {"// tabs"},
         "{\n\t\t\t\"username\": \"old\",\n\t\t\t\"password\": {\"plain\": \"x\"}\n\t\t}"},
    };

    for (const auto& doc : documents) {
        INFO("document:\n" << doc.text);
        const std::string result = edit(doc.text);
        INFO("result:\n" << result);

        json before = parse(doc.text);
        json after = parse(result);
        REQUIRE(after.contains("credentials"));
        CHECK(after["credentials"]["corp"] == expected_entry());
        after["credentials"].erase("corp");
        if (before.contains("credentials"))
            before["credentials"].erase("corp");
        else
            after.erase("credentials");
        CHECK(after == before);

        for (const auto& kept : doc.kept)
            CHECK(result.find(kept) != std::string::npos);
        if (doc.old_value.empty()) {
            CHECK(keeps_every_byte(doc.text, result));
        } else {
            const auto at = doc.text.find(doc.old_value);
            REQUIRE(at != std::string::npos);
            const std::string rest = doc.text.substr(at + doc.old_value.size());
            CHECK(result.substr(0, at) == doc.text.substr(0, at));
            CHECK(result.ends_with(rest));
            CHECK(result.size() - at - rest.size() < 100); // only the new value in between
        }
        CHECK(has_bare_lf(result) == has_bare_lf(doc.text));
        CHECK(result.starts_with(bom) == doc.text.starts_with(bom));
    }
}

TEST_CASE("config_edit: the loader accepts the edited configuration", "[config_edit]") {
    const std::string text = "{\n"
                             "  // corp proxy\n"
                             "  \"upstreams\": [{\"address\": \"proxy.corp.example:8080\", "
                             "\"credentials\": \"corp\"}]\n"
                             "}\n";
    const std::string edited = edit(text);
    const auto loaded = cfg::load_string(edited, "test.json", "/etc/authshim");
    std::string errors;
    for (const auto& d : loaded.errors)
        errors += d.to_string() + '\n';
    INFO(errors);
    REQUIRE(loaded.value.has_value());
    REQUIRE(loaded.value->credentials.count("corp") == 1);
    CHECK(loaded.value->credentials.at("corp").username == user);
    CHECK(loaded.value->credentials.at("corp").password_source ==
          cfg::secret_ref{cfg::dpapi_secret{{1, 2, 3, 4, 5, 6, 7, 8}}});

    // Setting it again replaces the entry in place.
    const auto again = cfg::set_dpapi_credential(edited, "corp", "CORP\\other", "AQI=");
    REQUIRE(again.text.has_value());
    const auto reloaded = cfg::load_string(*again.text, "test.json", "/etc/authshim");
    REQUIRE(reloaded.value.has_value());
    CHECK(reloaded.value->credentials.at("corp").username == "CORP\\other");
    CHECK(again.text->find(blob) == std::string::npos);
    CHECK(again.text->find("// corp proxy") != std::string::npos);
}
