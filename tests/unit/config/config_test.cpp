#include "config/config.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

using authshim::config::cidr;
using authshim::config::endpoint;
using authshim::config::log_level;
using authshim::config::port_range;
using authshim::config::upstream_transport;
using bytes = std::vector<std::uint8_t>;

namespace {

bytes v6(std::initializer_list<std::uint16_t> groups) {
    bytes out;
    for (auto group : groups) {
        out.push_back(static_cast<std::uint8_t>(group >> 8));
        out.push_back(static_cast<std::uint8_t>(group & 0xff));
    }
    return out;
}

const bytes v6_loopback = v6({0, 0, 0, 0, 0, 0, 0, 1});

} // namespace

TEST_CASE("endpoint::to_string brackets IPv6 hosts only", "[config]") {
    CHECK(endpoint{"127.0.0.1", 3128}.to_string() == "127.0.0.1:3128");
    CHECK(endpoint{"::1", 80}.to_string() == "[::1]:80");
    CHECK(endpoint{"2001:db8::1", 65535}.to_string() == "[2001:db8::1]:65535");
    CHECK(endpoint{"proxy.corp.example", 8080}.to_string() == "proxy.corp.example:8080");
    CHECK(endpoint{"127.0.0.1", 0}.to_string() == "127.0.0.1:0");
}

TEST_CASE("cidr::to_string writes RFC 5952 text and always the prefix", "[config]") {
    CHECK(cidr{{127, 0, 0, 0}, 8}.to_string() == "127.0.0.0/8");
    CHECK(cidr{{192, 0, 2, 7}, 32}.to_string() == "192.0.2.7/32");
    CHECK(cidr{v6_loopback, 128}.to_string() == "::1/128");
    CHECK(cidr{v6({0, 0, 0, 0, 0, 0, 0, 0}), 0}.to_string() == "::/0");
    CHECK(cidr{v6({0xfd00, 0, 0, 0, 0, 0, 0, 0}), 8}.to_string() == "fd00::/8");
    // The longest run of zeros is compressed; the first one on a tie; never a single group.
    CHECK(cidr{v6({0x2001, 0xdb8, 0, 0, 1, 0, 0, 1}), 128}.to_string() == "2001:db8::1:0:0:1/128");
    CHECK(cidr{v6({0x2001, 0, 0, 1, 0, 0, 0, 1}), 128}.to_string() == "2001:0:0:1::1/128");
    CHECK(cidr{v6({0x2001, 0xdb8, 0, 1, 1, 1, 1, 1}), 128}.to_string() ==
          "2001:db8:0:1:1:1:1:1/128");
    CHECK(cidr{v6({0xABCD, 0x0ef0, 0, 0, 0, 0, 0, 0}), 32}.to_string() == "abcd:ef0::/32");
    CHECK(cidr{v6({0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201}), 128}.to_string() ==
          "::ffff:192.0.2.1/128");
}

TEST_CASE("cidr::contains for IPv4 blocks", "[config]") {
    const cidr loopback{{127, 0, 0, 0}, 8};
    CHECK(loopback.contains({127, 0, 0, 1}));
    CHECK(loopback.contains({127, 255, 255, 255}));
    CHECK_FALSE(loopback.contains({128, 0, 0, 0}));
    CHECK_FALSE(loopback.contains({126, 255, 255, 255}));

    const cidr nine{{10, 0, 0, 0}, 9};
    CHECK(nine.contains({10, 127, 255, 255}));
    CHECK_FALSE(nine.contains({10, 128, 0, 0}));

    const cidr twenty_five{{192, 168, 1, 128}, 25};
    CHECK(twenty_five.contains({192, 168, 1, 200}));
    CHECK_FALSE(twenty_five.contains({192, 168, 1, 127}));

    const cidr host{{192, 0, 2, 7}, 32};
    CHECK(host.contains({192, 0, 2, 7}));
    CHECK_FALSE(host.contains({192, 0, 2, 8}));

    const cidr everything{{0, 0, 0, 0}, 0};
    CHECK(everything.contains({1, 2, 3, 4}));
    CHECK(everything.contains({255, 255, 255, 255}));
    CHECK_FALSE(everything.contains(v6_loopback)); // an IPv6 address that is not IPv4-mapped
}

TEST_CASE("cidr::contains matches IPv4-mapped IPv6 addresses against IPv4 blocks", "[config]") {
    const cidr loopback{{127, 0, 0, 0}, 8};
    CHECK(loopback.contains(v6({0, 0, 0, 0, 0, 0xffff, 0x7f00, 0x0001})));       // ::ffff:127.0.0.1
    CHECK_FALSE(loopback.contains(v6({0, 0, 0, 0, 0, 0xffff, 0x8000, 0x0001}))); // ::ffff:128.0.0.1
    CHECK_FALSE(loopback.contains(v6({0, 0, 0, 0, 0, 0, 0x7f00, 0x0001})));      // ::127.0.0.1
    CHECK_FALSE(loopback.contains(v6({0, 0, 0, 0, 0, 0xfffe, 0x7f00, 0x0001})));

    // And the other way round: an IPv4 address inside an IPv6 block of mapped addresses.
    const cidr mapped{v6({0, 0, 0, 0, 0, 0xffff, 0, 0}), 96};
    CHECK(mapped.contains({1, 2, 3, 4}));
    const cidr v6_only{v6_loopback, 128};
    CHECK_FALSE(v6_only.contains({127, 0, 0, 1}));
}

TEST_CASE("cidr::contains for IPv6 blocks", "[config]") {
    const cidr loopback{v6_loopback, 128};
    CHECK(loopback.contains(v6_loopback));
    CHECK_FALSE(loopback.contains(v6({0, 0, 0, 0, 0, 0, 0, 2})));

    const cidr ula{v6({0xfd00, 0, 0, 0, 0, 0, 0, 0}), 8};
    CHECK(ula.contains(v6({0xfdff, 0xffff, 0, 0, 0, 0, 0, 1})));
    CHECK_FALSE(ula.contains(v6({0xfe00, 0, 0, 0, 0, 0, 0, 1})));

    const cidr everything{v6({0, 0, 0, 0, 0, 0, 0, 0}), 0};
    CHECK(everything.contains(v6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 1})));
}

TEST_CASE("cidr::contains refuses malformed input", "[config]") {
    const cidr block{{10, 0, 0, 0}, 8};
    CHECK_FALSE(block.contains({}));
    CHECK_FALSE(block.contains({10, 0, 0}));
    CHECK_FALSE(block.contains({10, 0, 0, 0, 0}));
    CHECK_FALSE(cidr{}.contains({10, 0, 0, 1}));
    CHECK_FALSE(cidr{{10, 0, 0}, 8}.contains({10, 0, 0, 1}));
}

TEST_CASE("port_range::contains is inclusive", "[config]") {
    const port_range range{8000, 8080};
    CHECK(range.contains(8000));
    CHECK(range.contains(8080));
    CHECK_FALSE(range.contains(7999));
    CHECK_FALSE(range.contains(8081));
}

TEST_CASE("enum to_string", "[config]") {
    CHECK(to_string(log_level::trace) == "trace");
    CHECK(to_string(log_level::debug) == "debug");
    CHECK(to_string(log_level::info) == "info");
    CHECK(to_string(log_level::warn) == "warn");
    CHECK(to_string(log_level::error) == "error");
    CHECK(to_string(log_level::off) == "off");
    CHECK(to_string(upstream_transport::http) == "http");
    CHECK(to_string(upstream_transport::https) == "https");
}
