// Inputs found by the fuzz targets (tests/fuzz/config.cpp) that broke the configuration loader,
// each with what went wrong. They run here under ASan+UBSan like every unit test.
#include "config/loader.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace cfg = authshim::config;

TEST_CASE("fuzz: a number too large for a double is an error, not a crash", "[loader][fuzz]") {
    // nlohmann-json reports `1e400` with out_of_range (406), which is not a parse_error: the
    // loader let it escape and authshim ended in std::terminate. The fuzzer's input had it in
    // the schemes list of the ARCHITECTURE.md example; any place does it.
    for (const std::string number : {"1e400", "-1e400", "1E+999"}) {
        INFO(number);
        const auto result = cfg::load_string(
            R"({"upstreams": [{"address": "proxy:8080", "schemes": ["digest", )" + number + "]}]}",
            "/etc/a.json", "/etc");
        CHECK_FALSE(result.value);
        REQUIRE(result.errors.size() == 1);
        CHECK(result.errors[0].where == "/etc/a.json");
        CHECK_THAT(result.errors[0].what, Catch::Contains("number overflow") &&
                                              Catch::Contains(number) &&
                                              Catch::Contains("must fit a double"));
    }
}
