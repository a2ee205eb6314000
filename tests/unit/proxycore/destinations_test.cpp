#include "proxycore/destinations.hpp"

#include "config/loader.hpp"
#include "proxycore/access.hpp"
#include "proxycore/request_rules.hpp"

#include <catch2/catch.hpp>

#include <initializer_list>
#include <string>
#include <vector>

namespace cfg = authshim::config;
namespace pc = authshim::proxycore;
using host_kind = pc::destination_host::kind;

namespace {

std::vector<cfg::destination_pattern> patterns(std::initializer_list<const char*> texts) {
    std::vector<cfg::destination_pattern> out;
    for (const char* t : texts) {
        auto p = cfg::parse_destination(t);
        INFO("parse_destination(\"" << t << "\")");
        REQUIRE(p.has_value());
        out.push_back(*p);
    }
    return out;
}

/// The host of an absolute-form request-target, as the session hands it to the rule.
std::string host_of_url(const std::string& url) {
    const auto target = pc::parse_absolute_http_target(url);
    INFO(url);
    REQUIRE(target.has_value());
    return target->host;
}

std::string host_of_connect(const std::string& authority) {
    const auto target = pc::parse_authority_target(authority);
    INFO(authority);
    REQUIRE(target.has_value());
    return target->host;
}

void check_allowed(const std::vector<cfg::destination_pattern>& list,
                   std::initializer_list<const char*> allowed,
                   std::initializer_list<const char*> refused) {
    for (const char* host : allowed) {
        INFO("expected allowed: " << host);
        CHECK(pc::destination_allowed(list, host));
    }
    for (const char* host : refused) {
        INFO("expected refused: " << host);
        CHECK_FALSE(pc::destination_allowed(list, host));
    }
}

} // namespace

TEST_CASE("no allow-list: every destination", "[destinations]") {
    check_allowed({}, {"example.com", "10.0.0.1", "::1", "0x7f.1", "ex%61mple.com", ""}, {});
}

TEST_CASE("an exact name matches that host only, case-insensitive, trailing dot ignored",
          "[destinations]") {
    check_allowed(patterns({"example.com"}),
                  {"example.com", "EXAMPLE.com", "Example.COM.", "example.com."},
                  {"www.example.com", "a.b.example.com", "evil-example.com", "example.com.evil.com",
                   "example.co", "xample.com", "example.com..", ".example.com", "example.comm",
                   "ex%61mple.com", "example.com%2e", "", "."});
}

TEST_CASE("*.example.com matches sub-domains at any depth, not example.com itself",
          "[destinations]") {
    check_allowed(patterns({"*.example.com"}),
                  {"a.example.com", "A.B.C.Example.Com", "www.example.com.", "1.example.com",
                   "_srv.example.com", "xn--bcher-kva.example.com"},
                  {"example.com", "example.com.", "evil-example.com", "evilexample.com",
                   "example.com.evil.com", "a.example.com.evil.com", "a.example.co",
                   "a..example.com", ".example.com", "a.example.com..", "%2e.example.com",
                   "a%2eexample.com", "a.b%2eexample.com", "a!.example.com", "a$.example.com",
                   "a.example.com%00"});
}

TEST_CASE("address blocks match IP literals only, never names", "[destinations]") {
    const auto list = patterns({"10.0.0.0/8", "192.0.2.7", "2001:db8::/32"});
    check_allowed(list,
                  {"10.0.0.1", "10.255.255.255", "192.0.2.7", "2001:db8::1", "2001:DB8:ffff::5",
                   // IPv4-mapped IPv6 is the IPv4 address it carries.
                   "::ffff:10.0.0.1", "::ffff:a00:1", "::FFFF:192.0.2.7"},
                  {"11.0.0.1", "192.0.2.8", "9.255.255.255", "2001:db9::1", "::1",
                   // IPv4-compatible (deprecated) and NAT64 forms are other addresses.
                   "::10.0.0.1", "64:ff9b::a00:1",
                   // Legacy spellings of 10.0.0.1 / 127.0.0.1 (inet_aton reads some of them):
                   // no pattern may match them, names or blocks.
                   "012.0.0.1", "0x0a.0.0.1", "0xa.1", "10.1", "10.0.1", "167772161", "0x0a000001",
                   "012.0.0.01", "10.0.0.1.", "10.0.0.01",
                   // Names are not resolved: localhost is not 127.0.0.1 here, nor any name 10/8.
                   "localhost", "ten.example.com"});
    // 127.0.0.1 in any spelling is not in these blocks.
    check_allowed(patterns({"127.0.0.0/8"}), {"127.0.0.1", "::ffff:127.0.0.1"},
                  {"0177.0.0.1", "0x7f.1", "0x7f.0.0.1", "2130706433", "127.1", "017700000001",
                   "localhost", "127.0.0.1.", "::127.0.0.1", "::1"});
}

TEST_CASE("a name list is not bypassed with an IP literal", "[destinations]") {
    check_allowed(patterns({"*.example.com", "example.com"}), {"example.com", "a.example.com"},
                  {"93.184.216.34", "::ffff:93.184.216.34",
                   "2606:2800:220:1::", "1.example.com.0x1", "example.com.1", "a.example.com.123"});
}

TEST_CASE("a list with every kind of pattern", "[destinations]") {
    check_allowed(
        patterns({"crl.example.org", "*.windowsupdate.com", "192.0.2.0/24", "::1"}),
        {"crl.example.org", "CRL.EXAMPLE.ORG.", "fe2.update.windowsupdate.com", "192.0.2.200",
         "::1"},
        {"ocsp.example.org", "windowsupdate.com", "example.org", "192.0.3.1", "::2", "127.0.0.1"});
}

TEST_CASE("hosts as the request parser hands them over", "[destinations]") {
    const auto list = patterns({"*.example.com", "10.0.0.0/8", "2001:db8::/32"});
    CHECK(pc::destination_allowed(list, host_of_url("http://a.EXAMPLE.com./crl?x")));
    CHECK(pc::destination_allowed(list, host_of_url("http://10.1.2.3:8080/")));
    CHECK(pc::destination_allowed(list, host_of_url("http://[2001:db8::1]/")));
    CHECK(pc::destination_allowed(list, host_of_url("http://[::ffff:10.0.0.1]/")));
    CHECK(pc::destination_allowed(list, host_of_connect("a.example.com:443")));
    CHECK(pc::destination_allowed(list, host_of_connect("[2001:db8::5]:443")));
    CHECK(pc::destination_allowed(list, host_of_connect("[::ffff:10.0.0.1]:443")));

    CHECK_FALSE(pc::destination_allowed(list, host_of_url("http://example.com/")));
    CHECK_FALSE(pc::destination_allowed(list, host_of_url("http://evil-example.com/")));
    CHECK_FALSE(pc::destination_allowed(list, host_of_url("http://example.com.evil.com/")));
    CHECK_FALSE(pc::destination_allowed(list, host_of_url("http://a%2eexample.com/")));
    CHECK_FALSE(pc::destination_allowed(list, host_of_url("http://0x0a.1/")));
    CHECK_FALSE(pc::destination_allowed(list, host_of_url("http://167772161/")));
    CHECK_FALSE(pc::destination_allowed(list, host_of_url("http://012.0.0.1/")));
    CHECK_FALSE(pc::destination_allowed(list, host_of_url("http://[::10.0.0.1]/")));
    CHECK_FALSE(pc::destination_allowed(list, host_of_url("http://[2001:db9::1]/")));
    CHECK_FALSE(pc::destination_allowed(list, host_of_connect("example.com:443")));
    CHECK_FALSE(pc::destination_allowed(list, host_of_connect("11.0.0.1:443")));
    CHECK_FALSE(pc::destination_allowed(list, host_of_connect("0x0a.1:443")));
    // Raw UTF-8 (an IDN not in its xn-- form) and userinfo never reach the rule: the request
    // is refused earlier (400).
    CHECK_FALSE(pc::parse_absolute_http_target("http://b\xc3\xbc"
                                               "cher.example.com/")
                    .has_value());
    CHECK_FALSE(pc::parse_authority_target("b\xc3\xbc"
                                           "cher.example.com:443")
                    .has_value());
    CHECK_FALSE(pc::parse_absolute_http_target("http://a.example.com@evil.com/").has_value());
    CHECK_FALSE(pc::parse_absolute_http_target("http://evil.com@a.example.com/").has_value());
}

TEST_CASE("classify_destination", "[destinations]") {
    auto c = pc::classify_destination("WWW.Example.COM.");
    CHECK(c.type == host_kind::name);
    CHECK(c.name == "www.example.com");
    c = pc::classify_destination("::ffff:10.0.0.1");
    CHECK(c.type == host_kind::address);
    CHECK(c.address.size() == 16);
    c = pc::classify_destination("10.0.0.1");
    CHECK(c.type == host_kind::address);
    CHECK(c.address == std::vector<std::uint8_t>{10, 0, 0, 1});
    for (const char* unusable :
         {"", ".", "..", "a..b", "0x7f.1", "2130706433", "127.1", "10.0.0.1.", "ex%61mple.com",
          "a!b", "a~b",
          "b\xc3\xbc"
          "cher.example",
          "-a.example", "a-.example", "zone%25eth0", "fe80::1%eth0", ":::"}) {
        INFO(unusable);
        CHECK(pc::classify_destination(unusable).type == host_kind::unusable);
    }
    const std::string long_label(64, 'a');
    CHECK(pc::classify_destination(long_label + ".example").type == host_kind::unusable);
    CHECK(pc::classify_destination(std::string(63, 'a') + ".example").type == host_kind::name);
}

TEST_CASE("access_rules::destination_allowed follows the policy", "[destinations][access]") {
    cfg::access_policy policy;
    CHECK(pc::access_rules(policy).destination_allowed("anything.example"));
    policy.destinations = patterns({"*.example.com"});
    const pc::access_rules rules(policy);
    CHECK(rules.destination_allowed("a.example.com"));
    CHECK_FALSE(rules.destination_allowed("anything.example"));
}
