#include "config/loader.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

using namespace std::chrono_literals;
using authshim::config::cidr;
using authshim::config::endpoint;
using authshim::config::parse_cidr;
using authshim::config::parse_duration;
using authshim::config::parse_endpoint;

TEST_CASE("parse_duration accepts a positive integer and a unit", "[parse]") {
    CHECK(parse_duration("250ms") == 250ms);
    CHECK(parse_duration("1ms") == 1ms);
    CHECK(parse_duration("15s") == 15s);
    CHECK(parse_duration("5m") == 5min);
    CHECK(parse_duration("1h") == 1h);
    CHECK(parse_duration("24h") == 24h);
    CHECK(parse_duration("007s") == 7s);
    // No upper bound here (the loader applies 24h to timeouts), only no overflow.
    CHECK(parse_duration("25h") == 25h);
    CHECK(parse_duration("1000000000000h") == std::chrono::hours(1'000'000'000'000));
}

TEST_CASE("parse_duration refuses everything else", "[parse]") {
    const char* bad[] = {
        "",
        "0s",
        "0ms",
        "000h",
        "-1s",
        "+1s",
        "1.5s",
        "1,5s",
        "15",
        "s",
        "ms",
        "15 s",
        " 15s",
        "15s ",
        "\t15s",
        "15S",
        "15Ms",
        "15sec",
        "15 seconds",
        "1d",
        "1w",
        "1e3ms",
        "0x10s",
        "1s2s",
        "1h30m",
        "99999999999999999999s",
        "1000000000001h",
        "18446744073709551617ms",
    };
    for (const char* text : bad) {
        INFO('"' << text << '"');
        CHECK_FALSE(parse_duration(text).has_value());
    }
}

TEST_CASE("parse_endpoint accepts host:port, v4:port and [v6]:port", "[parse]") {
    CHECK(parse_endpoint("127.0.0.1:3128") == endpoint{"127.0.0.1", 3128});
    CHECK(parse_endpoint("0.0.0.0:1") == endpoint{"0.0.0.0", 1});
    CHECK(parse_endpoint("255.255.255.255:65535") == endpoint{"255.255.255.255", 65535});
    CHECK(parse_endpoint("proxy.corp.example:8080") == endpoint{"proxy.corp.example", 8080});
    CHECK(parse_endpoint("proxy:80") == endpoint{"proxy", 80});
    CHECK(parse_endpoint("host_name.example.:80") == endpoint{"host_name.example.", 80});
    CHECK(parse_endpoint("[::1]:3128") == endpoint{"::1", 3128});
    CHECK(parse_endpoint("[::]:80") == endpoint{"::", 80});
    // IPv6 hosts come back in canonical text.
    CHECK(parse_endpoint("[2001:DB8:0:0:0:0:0:1]:80") == endpoint{"2001:db8::1", 80});
    CHECK(parse_endpoint("[::FFFF:127.0.0.1]:80") == endpoint{"::ffff:127.0.0.1", 80});
    CHECK(parse_endpoint("[fe80::0001]:443") == endpoint{"fe80::1", 443});
}

TEST_CASE("parse_endpoint port 0 only when allowed", "[parse]") {
    CHECK_FALSE(parse_endpoint("127.0.0.1:0").has_value());
    CHECK_FALSE(parse_endpoint("127.0.0.1:0", false).has_value());
    CHECK(parse_endpoint("127.0.0.1:0", true) == endpoint{"127.0.0.1", 0});
    CHECK(parse_endpoint("[::1]:0", true) == endpoint{"::1", 0});
    CHECK_FALSE(parse_endpoint("127.0.0.1:65536", true).has_value());
}

TEST_CASE("parse_endpoint refuses malformed text", "[parse]") {
    const char* bad[] = {
        "",
        "127.0.0.1",
        "127.0.0.1:",
        ":80",
        "proxy",
        "proxy:",
        "[::1]",
        "[::1]:",
        "::1",
        "::1:80",
        "[::1]80",
        "[::1:80",
        "::1]:80",
        "[1.2.3.4]:80",
        "[fe80::1%eth0]:80",
        "[::1::2]:80",
        "127.0.0.1:65536",
        "127.0.0.1:99999999999999999999",
        "127.0.0.1:-1",
        "127.0.0.1:+80",
        "127.0.0.1:8a",
        "127.0.0.1:0x50",
        " 127.0.0.1:80",
        "127.0.0.1:80 ",
        "127.0.0.1 :80",
        "127.0.0.1: 80",
        "256.0.0.1:80",
        "01.2.3.4:80",
        "1.2.3:80",
        "1.2.3.4.5:80",
        "http://proxy:80",
        "-proxy:80",
        "proxy-:80",
        "a..b:80",
        ".proxy:80",
        "pro xy:80",
        "pröxy:80",
        "user@proxy:80",
        "proxy:80/",
        "a:b:80",
    };
    for (const char* text : bad) {
        INFO('"' << text << '"');
        CHECK_FALSE(parse_endpoint(text, true).has_value());
    }
}

TEST_CASE("parse_cidr accepts blocks and bare addresses", "[parse]") {
    CHECK(parse_cidr("127.0.0.0/8") == cidr{{127, 0, 0, 0}, 8});
    CHECK(parse_cidr("0.0.0.0/0") == cidr{{0, 0, 0, 0}, 0});
    CHECK(parse_cidr("192.168.1.128/25") == cidr{{192, 168, 1, 128}, 25});
    CHECK(parse_cidr("10.1.2.3") == cidr{{10, 1, 2, 3}, 32});
    CHECK(parse_cidr("10.1.2.3/32") == cidr{{10, 1, 2, 3}, 32});

    const cidr v6_loopback{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128};
    CHECK(parse_cidr("::1/128") == v6_loopback);
    CHECK(parse_cidr("::1") == v6_loopback);
    CHECK(parse_cidr("::/0") == cidr{std::vector<std::uint8_t>(16, 0), 0});
    CHECK(parse_cidr("FD00::/8") == cidr{{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 8});
    CHECK(parse_cidr("::ffff:127.0.0.0/104") ==
          cidr{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 0}, 104});
}

TEST_CASE("parse_cidr refuses malformed blocks", "[parse]") {
    const char* bad[] = {
        "",
        "1.2.3.4/33",
        "::/129",
        "10.0.0.1/8",
        "192.168.1.129/25",
        "::1/64",
        "10.0.0.0/",
        "/8",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "10.0.0.0/8/8",
        "10.0.0.0/1000",
        " 10.0.0.0/8",
        "10.0.0.0/8 ",
        "10.0.0.0 /8",
        "[::1]/128",
        "[::1]",
        "fe80::1%eth0/128",
        "10.0.0/8",
        "256.0.0.0/8",
        "010.0.0.0/8",
        "localhost",
        "10.0.0.0/x",
        "1:2:3:4:5:6:7:8:9/128",
    };
    for (const char* text : bad) {
        INFO('"' << text << '"');
        CHECK_FALSE(parse_cidr(text).has_value());
    }
}
