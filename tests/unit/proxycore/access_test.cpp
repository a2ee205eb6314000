#include "proxycore/access.hpp"

#include "config/loader.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/ip/address.hpp>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

using authshim::config::access_policy;
using authshim::config::cidr;
using authshim::config::port_range;
using authshim::proxycore::access_rules;
namespace ip = boost::asio::ip;

namespace {

cidr block(const char* text) {
    const auto parsed = authshim::config::parse_cidr(text);
    INFO("parse_cidr(\"" << text << "\")");
    REQUIRE(parsed.has_value());
    return *parsed;
}

access_policy policy(std::initializer_list<const char*> clients,
                     std::vector<port_range> ports = {}) {
    access_policy p;
    for (const char* c : clients)
        p.clients.push_back(block(c));
    p.connect_ports = std::move(ports);
    return p;
}

ip::address addr(const char* text) {
    return ip::make_address(text);
}

ip::tcp::endpoint ep(const char* address, std::uint16_t port) {
    return ip::tcp::endpoint(ip::make_address(address), port);
}

} // namespace

TEST_CASE("client_allowed: IPv4 clients against IPv4 blocks", "[access]") {
    const access_rules rules(policy({"127.0.0.0/8", "10.1.0.0/16", "192.168.5.7"}));
    CHECK(rules.client_allowed(addr("127.0.0.1")));
    CHECK(rules.client_allowed(addr("127.255.255.255")));
    CHECK(rules.client_allowed(addr("10.1.0.0")));
    CHECK(rules.client_allowed(addr("10.1.255.254")));
    CHECK(rules.client_allowed(addr("192.168.5.7")));
    CHECK_FALSE(rules.client_allowed(addr("128.0.0.1")));
    CHECK_FALSE(rules.client_allowed(addr("10.2.0.1")));
    CHECK_FALSE(rules.client_allowed(addr("10.0.255.255")));
    CHECK_FALSE(rules.client_allowed(addr("192.168.5.8")));
    CHECK_FALSE(rules.client_allowed(addr("0.0.0.0")));
    // An IPv6 client never matches an IPv4 block unless it is IPv4-mapped.
    CHECK_FALSE(rules.client_allowed(addr("::1")));
    CHECK_FALSE(rules.client_allowed(addr("::7f00:1"))); // IPv4-compatible, not mapped
}

TEST_CASE("client_allowed: IPv6 clients against IPv6 blocks", "[access]") {
    const access_rules rules(policy({"::1/128", "fd00::/8", "2001:db8:1::/48"}));
    CHECK(rules.client_allowed(addr("::1")));
    CHECK(rules.client_allowed(addr("fd00::1")));
    CHECK(rules.client_allowed(addr("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
    CHECK(rules.client_allowed(addr("2001:db8:1::")));
    CHECK(rules.client_allowed(addr("2001:db8:1:ffff::5")));
    CHECK_FALSE(rules.client_allowed(addr("::2")));
    CHECK_FALSE(rules.client_allowed(addr("fc00::1")));
    CHECK_FALSE(rules.client_allowed(addr("fe00::1")));
    CHECK_FALSE(rules.client_allowed(addr("2001:db8:2::1")));
    CHECK_FALSE(rules.client_allowed(addr("2001:db8::1")));
    // IPv4 clients are not in IPv6 blocks that do not cover their mapped form.
    CHECK_FALSE(rules.client_allowed(addr("127.0.0.1")));
}

TEST_CASE("client_allowed: IPv4-mapped IPv6 clients match IPv4 blocks", "[access]") {
    const access_rules rules(policy({"127.0.0.0/8", "10.0.0.0/8"}));
    CHECK(rules.client_allowed(addr("::ffff:127.0.0.1")));
    CHECK(rules.client_allowed(addr("::ffff:10.20.30.40")));
    CHECK_FALSE(rules.client_allowed(addr("::ffff:11.0.0.1")));
    CHECK_FALSE(rules.client_allowed(addr("::ffff:192.168.0.1")));

    SECTION("and an IPv6 block written as the mapped range matches plain IPv4 clients") {
        const access_rules mapped(policy({"::ffff:192.168.0.0/112"}));
        CHECK(mapped.client_allowed(addr("192.168.1.2")));
        CHECK(mapped.client_allowed(addr("::ffff:192.168.1.2")));
        CHECK_FALSE(mapped.client_allowed(addr("192.169.1.2")));
    }
}

TEST_CASE("client_allowed: the default policy and an empty list", "[access]") {
    const access_rules defaults(policy({"127.0.0.0/8", "::1/128"}));
    CHECK(defaults.client_allowed(addr("127.0.0.1")));
    CHECK(defaults.client_allowed(addr("::1")));
    CHECK(defaults.client_allowed(addr("::ffff:127.0.0.1")));
    CHECK_FALSE(defaults.client_allowed(addr("192.0.2.1")));
    CHECK_FALSE(defaults.client_allowed(addr("2001:db8::1")));

    const access_rules nobody(policy({}));
    CHECK_FALSE(nobody.client_allowed(addr("127.0.0.1")));
    CHECK_FALSE(nobody.client_allowed(addr("::1")));

    const access_rules everybody(policy({"0.0.0.0/0", "::/0"}));
    CHECK(everybody.client_allowed(addr("203.0.113.9")));
    CHECK(everybody.client_allowed(addr("2001:db8::1")));
}

TEST_CASE("connect_port_allowed: single ports, ranges and an empty list", "[access]") {
    SECTION("the default, 443 only") {
        const access_rules rules(policy({}, {port_range{443, 443}}));
        CHECK(rules.connect_port_allowed(443));
        CHECK_FALSE(rules.connect_port_allowed(442));
        CHECK_FALSE(rules.connect_port_allowed(444));
        CHECK_FALSE(rules.connect_port_allowed(80));
        CHECK_FALSE(rules.connect_port_allowed(0));
        CHECK_FALSE(rules.connect_port_allowed(65535));
    }
    SECTION("single ports and inclusive ranges") {
        const access_rules rules(
            policy({}, {port_range{443, 443}, port_range{8443, 8445}, port_range{60000, 65535}}));
        CHECK(rules.connect_port_allowed(443));
        CHECK(rules.connect_port_allowed(8443));
        CHECK(rules.connect_port_allowed(8444));
        CHECK(rules.connect_port_allowed(8445));
        CHECK(rules.connect_port_allowed(60000));
        CHECK(rules.connect_port_allowed(65535));
        CHECK_FALSE(rules.connect_port_allowed(8442));
        CHECK_FALSE(rules.connect_port_allowed(8446));
        CHECK_FALSE(rules.connect_port_allowed(59999));
        CHECK_FALSE(rules.connect_port_allowed(1));
    }
    SECTION("an empty list allows nothing") {
        const access_rules rules(policy({}, {}));
        CHECK_FALSE(rules.connect_port_allowed(443));
        CHECK_FALSE(rules.connect_port_allowed(1));
        CHECK_FALSE(rules.connect_port_allowed(65535));
    }
}

TEST_CASE("targets_self: nothing before set_own_endpoints", "[access]") {
    const access_rules rules(policy({"127.0.0.0/8"}));
    CHECK_FALSE(rules.targets_self("localhost", 3128));
    CHECK_FALSE(rules.targets_self("127.0.0.1", 3128));
}

TEST_CASE("targets_self: a 127.0.0.1:3128 listener", "[access]") {
    access_rules rules(policy({"127.0.0.0/8"}));
    rules.set_own_endpoints({ep("127.0.0.1", 3128)});

    for (const char* host :
         {"localhost", "LOCALHOST", "LocalHost", "127.0.0.1", "127.0.0.2", "127.255.255.254", "::1",
          "foo.localhost", "a.b.FOO.LOCALHOST", "0.0.0.0"}) {
        INFO(host << ":3128");
        CHECK(rules.targets_self(host, 3128));
    }
    for (const char* host : {"localhost", "127.0.0.1", "::1", "foo.localhost"}) {
        INFO(host << " on other ports");
        CHECK_FALSE(rules.targets_self(host, 3129));
        CHECK_FALSE(rules.targets_self(host, 80));
        CHECK_FALSE(rules.targets_self(host, 443));
    }
    for (const char* host : {"example.com", "localhost.example.com", "notlocalhost", "xlocalhost",
                             "192.0.2.1", "10.0.0.1", "2001:db8::1", "localhos"}) {
        INFO(host << ":3128");
        CHECK_FALSE(rules.targets_self(host, 3128));
    }
}

TEST_CASE("targets_self: inet_aton spellings and a trailing dot reach the listener too",
          "[access]") {
    // Resolvers and clients (getaddrinfo, curl, Squid) read these as 127.0.0.1 / 0.0.0.0.
    access_rules rules(policy({"127.0.0.0/8"}));
    rules.set_own_endpoints({ep("127.0.0.1", 3128)});
    for (const char* host : {"127.1", "127.0.1", "2130706433", "0x7f000001", "0X7F000001", "0x7f.1",
                             "0177.0.0.1", "0177.1", "127.256" /* 127.0.1.0 */, "0", "0.0",
                             "localhost.", "LocalHost.", "127.0.0.1.", "foo.localhost."}) {
        INFO(host << ":3128");
        CHECK(rules.targets_self(host, 3128));
        CHECK_FALSE(rules.targets_self(host, 3129));
    }
    for (const char* host : {"256.1", "4294967296", "0x100000000", "1.2.3.4.5", "127..1", "08",
                             "0x7g", "1e3", ".", "..", "192.0.2.1", "3232235777", "localhost.."}) {
        INFO(host << ":3128");
        CHECK_FALSE(rules.targets_self(host, 3128));
    }
    SECTION("a non-loopback listener is matched by its numeric spellings") {
        rules.set_own_endpoints({ep("192.0.2.10", 3128)});
        CHECK(rules.targets_self("3221225994", 3128)); // 192.0.2.10
        CHECK(rules.targets_self("192.0.522", 3128));  // 2 * 256 + 10
        CHECK(rules.targets_self("0xc0.0.2.0xa", 3128));
        CHECK_FALSE(rules.targets_self("3221225995", 3128));
    }
}

TEST_CASE("targets_self: an IPv4-mapped loopback literal reaches a 127.0.0.1 listener",
          "[access]") {
    // Connecting to [::ffff:127.0.0.1]:3128 lands on the 127.0.0.1:3128 listener.
    access_rules rules(policy({"127.0.0.0/8"}));
    rules.set_own_endpoints({ep("127.0.0.1", 3128)});
    CHECK(rules.targets_self("::ffff:127.0.0.1", 3128));
    CHECK_FALSE(rules.targets_self("::ffff:127.0.0.1", 3129));
}

TEST_CASE("targets_self: a 0.0.0.0 wildcard listener", "[access]") {
    access_rules rules(policy({"0.0.0.0/0"}));
    rules.set_own_endpoints({ep("0.0.0.0", 8080)});
    for (const char* host : {"localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "0.0.0.0", "::1",
                             "proxy.localhost"}) {
        INFO(host << ":8080");
        CHECK(rules.targets_self(host, 8080));
    }
    CHECK_FALSE(rules.targets_self("localhost", 3128));
    CHECK_FALSE(rules.targets_self("127.0.0.1", 8081));
    CHECK_FALSE(rules.targets_self("example.com", 8080));
    // Only loopback, wildcard and the listener's own address are recognised (no interface
    // enumeration): another address is not taken for ourselves.
    CHECK_FALSE(rules.targets_self("192.0.2.10", 8080));
}

TEST_CASE("targets_self: a ::1 listener", "[access]") {
    access_rules rules(policy({"::1/128"}));
    rules.set_own_endpoints({ep("::1", 3128)});
    for (const char* host :
         {"::1", "0:0:0:0:0:0:0:1", "localhost", "Foo.LocalHost", "127.0.0.1", "::"}) {
        INFO(host << ":3128");
        CHECK(rules.targets_self(host, 3128));
    }
    CHECK_FALSE(rules.targets_self("::1", 3127));
    CHECK_FALSE(rules.targets_self("localhost", 80));
    CHECK_FALSE(rules.targets_self("example.com", 3128));
    CHECK_FALSE(rules.targets_self("2001:db8::1", 3128));
}

TEST_CASE("targets_self: a non-loopback listener and several listeners", "[access]") {
    access_rules rules(policy({"0.0.0.0/0"}));
    rules.set_own_endpoints({ep("192.0.2.10", 3128), ep("127.0.0.1", 8080)});
    CHECK(rules.targets_self("192.0.2.10", 3128));
    // localhost:3128 is not the 192.0.2.10 listener.
    CHECK_FALSE(rules.targets_self("localhost", 3128));
    CHECK_FALSE(rules.targets_self("127.0.0.1", 3128));
    CHECK_FALSE(rules.targets_self("192.0.2.11", 3128));
    CHECK_FALSE(rules.targets_self("192.0.2.10", 8080));
    CHECK(rules.targets_self("localhost", 8080));
    CHECK(rules.targets_self("127.0.0.1", 8080));

    SECTION("set_own_endpoints replaces the previous list") {
        rules.set_own_endpoints({ep("127.0.0.1", 9000)});
        CHECK_FALSE(rules.targets_self("192.0.2.10", 3128));
        CHECK_FALSE(rules.targets_self("localhost", 8080));
        CHECK(rules.targets_self("localhost", 9000));
    }
}
