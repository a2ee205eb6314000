#include "config/loader.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace cfg = authshim::config;
using kind = cfg::destination_pattern::kind;

namespace {

const std::string origin = "/etc/a.json";

cfg::load_result load_destinations(const std::string& array) {
    return cfg::load_string(R"({"upstreams": [{"address": "proxy.corp.example:8080"}], )"
                            R"("access": {"destinations": )" +
                                array + "}}",
                            origin, "/etc");
}

std::string all_text(const std::vector<cfg::diagnostic>& list) {
    std::string out;
    for (const auto& d : list)
        out += d.to_string() + '\n';
    return out;
}

struct bad_entry {
    std::string entry; ///< JSON text of the one entry
    std::string what;  ///< a substring of the message
};

} // namespace

TEST_CASE("parse_destination: names, wildcards and address blocks", "[destinations]") {
    struct good {
        const char* text;
        kind type;
        const char* shown;
    };
    const good cases[] = {
        {"crl.example.com", kind::host, "crl.example.com"},
        {"CRL.Example.COM", kind::host, "crl.example.com"},
        {"example.com.", kind::host, "example.com"}, // fully qualified: the same host
        {"localhost", kind::host, "localhost"},
        {"under_score.example", kind::host, "under_score.example"},
        {"xn--bcher-kva.example", kind::host, "xn--bcher-kva.example"},
        {"1.example.com", kind::host, "1.example.com"}, // a numeric label, but not the last
        {"*.example.com", kind::subdomains, "*.example.com"},
        {"*.EXAMPLE.com.", kind::subdomains, "*.example.com"},
        {"*.com", kind::subdomains, "*.com"},
        {"10.0.0.0/8", kind::address, "10.0.0.0/8"},
        {"192.0.2.7", kind::address, "192.0.2.7/32"},
        {"0.0.0.0/0", kind::address, "0.0.0.0/0"},
        {"2001:DB8::/32", kind::address, "2001:db8::/32"},
        {"::1", kind::address, "::1/128"},
        {"::ffff:10.0.0.1", kind::address, "::ffff:10.0.0.1/128"},
    };
    for (const auto& c : cases) {
        INFO(c.text);
        const auto p = cfg::parse_destination(c.text);
        REQUIRE(p.has_value());
        CHECK(p->type == c.type);
        CHECK(p->to_string() == c.shown);
        // The canonical text parses back to the same pattern.
        CHECK(cfg::parse_destination(p->to_string()) == p);
    }
    CHECK(cfg::parse_destination("*.example.com")->name == "example.com");
}

TEST_CASE("parse_ip_address is strict about IPv4 spellings", "[destinations]") {
    CHECK(cfg::parse_ip_address("127.0.0.1") == std::vector<std::uint8_t>{127, 0, 0, 1});
    CHECK(cfg::parse_ip_address("::1").value().size() == 16);
    CHECK(cfg::parse_ip_address("::ffff:10.0.0.1").value().size() == 16);
    for (const char* legacy :
         {"0177.0.0.1", "0x7f.0.0.1", "0x7f.1", "127.1", "127.0.1", "2130706433", "017700000001",
          "127.0.0.1.", "127.0.0.01", "256.0.0.1", "[::1]", "fe80::1%eth0", "", " 127.0.0.1"}) {
        INFO(legacy);
        CHECK_FALSE(cfg::parse_ip_address(legacy).has_value());
    }
}

TEST_CASE("ends_in_number: what URL parsers would read as a legacy IPv4 address",
          "[destinations]") {
    for (const char* text : {"2130706433", "127.1", "0177.0.0.1", "0x7f.1", "a.0x", "a.0XFF",
                             "example.123", "example.123."}) {
        INFO(text);
        CHECK(cfg::parse_destination(text) == std::nullopt);
    }
    for (const char* text : {"a.0xg", "123.example", "0x.example", "ex0x1"}) {
        INFO(text);
        CHECK(cfg::parse_destination(text).has_value());
    }
}

TEST_CASE("access.destinations loads, and its absence or null means no allow-list",
          "[destinations][loader]") {
    auto r = load_destinations(R"(["*.example.com", "crl.example.org", "10.0.0.0/8"])");
    INFO(all_text(r.errors));
    REQUIRE(r.value);
    CHECK(r.warnings.empty());
    REQUIRE(r.value->access.destinations.size() == 3);
    CHECK(r.value->access.destinations[0].type == kind::subdomains);
    CHECK(r.value->access.destinations[1].type == kind::host);
    CHECK(r.value->access.destinations[2].type == kind::address);

    r = load_destinations("null");
    REQUIRE(r.value);
    CHECK(r.value->access.destinations.empty());

    r = cfg::load_string(R"({"upstreams": [{"address": "p:1"}]})", origin, "/etc");
    REQUIRE(r.value);
    CHECK(r.value->access.destinations.empty());
}

TEST_CASE("access.destinations errors name the entry, what is wrong and a valid form",
          "[destinations][loader][errors]") {
    const std::string expected =
        R"(expected a host pattern such as "crl.example.com", "*.example.com" (its sub-domains) or "10.0.0.0/8" (IP addresses in the block), got )";
    const std::vector<bad_entry> cases{
        {R"("")", R"(got "", which is empty)"},
        {R"(" example.com")", "contains whitespace"},
        {R"("example.com ")", "contains whitespace"},
        {R"("exa mple.com")", "contains whitespace"},
        {R"("*")", R"(is a lone "*" (to allow every destination, leave access.destinations out))"},
        {R"("*.")", R"(has nothing after "*.")"},
        {R"("**.example.com")", R"(has a "*" that is not a leading "*.")"},
        {R"("*example.com")", R"(has a "*" that is not a leading "*.")"},
        {R"("*.*.example.com")", R"(has a "*" that is not a leading "*.")"},
        {R"("www.*.example.com")", R"(has a "*" that is not a leading "*.")"},
        {R"("example.*")", R"(has a "*" that is not a leading "*.")"},
        {R"(".example.com")", R"(starts with "." (write "*.example.com" for the sub-domains)"},
        {R"("example.com:443")", "has a port (a pattern is a host only; the ports CONNECT may "
                                 "reach are access.connect_ports)"},
        {R"("10.0.0.1:80")", "has a port"},
        {R"("[2001:db8::1]")", "has brackets (write IPv6 addresses without them"},
        {R"("[::1]:443")", "has brackets"},
        {R"("http://example.com")",
         R"(has a scheme (write the host alone, such as "crl.example.com")"},
        {R"("https://example.com/")", "has a scheme"},
        {R"("user@example.com")", R"(has user information ("user@"))"},
        {R"("user:pw@example.com")", "has user information"},
        {R"("example.com/crl")", "has a path"},
        {R"("10.0.0.0/33")", "has a prefix length out of range (expected 0-32 for IPv4)"},
        {R"("10.0.0.1/8")", "did you mean 10.0.0.0/8?"},
        {R"("10.0.0.256/8")", "is not an IPv4 or IPv6 address"},
        {R"("2001:db8::/129")", "expected 0-128 for IPv6"},
        {R"("2001:db8::1::2")", "is not a valid IPv6 address"},
        {R"("fe80::1%eth0")", "zone ID"},
        {R"("0177.0.0.1")", "ends in a number"},
        {R"("2130706433")", "ends in a number"},
        {R"("0x7f.1")", "ends in a number"},
        {R"("127.1")", "ends in a number"},
        {R"("10.0.0.1.")", "ends in a number"},
        {R"("ex%61mple.com")", "has percent-encoding"},
        {R"("b\u00fccher.example")", "xn--bcher-kva.example"},
        {R"("example..com")", R"(has an empty label (".."))"},
        {R"("-example.com")", "is not a valid host name"},
        {R"("exa!mple.com")", "is not a valid host name"},
        {R"("example.com?x")", "is not a valid host name"},
        {"\"" + std::string(64, 'a') + ".example\"", "is not a valid host name"},
        {"5", "got 5"},
        {"null", "got null"},
        {R"(["example.com"])", "got an array"},
    };
    for (const auto& c : cases) {
        INFO("entry: " << c.entry);
        const auto r = load_destinations(R"(["crl.example.com", )" + c.entry + "]");
        INFO("errors:\n" << all_text(r.errors));
        CHECK_FALSE(r.value.has_value());
        REQUIRE(r.errors.size() == 1);
        CHECK(r.errors[0].where == origin + ": /access/destinations/1");
        CHECK_THAT(r.errors[0].what, Catch::StartsWith(expected));
        CHECK_THAT(r.errors[0].what, Catch::Contains(c.what));
    }
}

TEST_CASE("access.destinations: the array itself", "[destinations][loader][errors]") {
    auto r = load_destinations("[]");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].where == origin + ": /access/destinations");
    CHECK_THAT(r.errors[0].what, Catch::Contains("got an empty array (no destination could be "
                                                 "reached; leave access.destinations out, or "
                                                 "null, to allow every destination)"));
    r = load_destinations(R"("*.example.com")");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].where == origin + ": /access/destinations");
    CHECK_THAT(r.errors[0].what, Catch::Contains("expected an array of host patterns"));
    CHECK_THAT(r.errors[0].what, Catch::Contains(R"(got "*.example.com")"));
}

TEST_CASE("access.destinations: every bad entry is reported at once", "[destinations][loader]") {
    const auto r = load_destinations(R"(["ok.example", "*", "a:1", "ok2.example", "http://x"])");
    INFO(all_text(r.errors));
    CHECK_FALSE(r.value);
    REQUIRE(r.errors.size() == 3);
    CHECK(r.errors[0].where == origin + ": /access/destinations/1");
    CHECK(r.errors[1].where == origin + ": /access/destinations/2");
    CHECK(r.errors[2].where == origin + ": /access/destinations/4");
}

TEST_CASE("access.destinations warnings: duplicates, /0 and top-level wildcards",
          "[destinations][loader]") {
    const auto r = load_destinations(
        R"(["Example.com", "example.com.", "0.0.0.0/0", "::/0", "*.com", "*.example.com"])");
    INFO(all_text(r.errors));
    REQUIRE(r.value);
    const auto text = all_text(r.warnings);
    INFO(text);
    REQUIRE(r.warnings.size() == 4);
    CHECK(r.warnings[0].where == origin + ": /access/destinations/1");
    CHECK_THAT(
        r.warnings[0].what,
        Catch::Contains(R"("example.com" is listed twice (also at /access/destinations/0))"));
    CHECK(r.warnings[1].where == origin + ": /access/destinations/2");
    CHECK_THAT(r.warnings[1].what, Catch::Contains("every IPv4 address"));
    CHECK(r.warnings[2].where == origin + ": /access/destinations/3");
    CHECK_THAT(r.warnings[2].what, Catch::Contains("IPv4 ones too"));
    CHECK(r.warnings[3].where == origin + ": /access/destinations/4");
    CHECK_THAT(r.warnings[3].what,
               Catch::Contains(R"(every name under the top-level domain "com")"));
    // The duplicate is kept once.
    CHECK(r.value->access.destinations.size() == 5);
}
