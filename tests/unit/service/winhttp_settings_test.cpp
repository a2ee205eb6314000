#include "config/winhttp_bypass.hpp"
#include "service/winhttp_settings.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace svc = authshim::service;

namespace {

using bytes = std::vector<std::uint8_t>;

/// What `netsh winhttp reset proxy` leaves: version 0x18, counter 0, direct, two empty strings.
const bytes netsh_default = {0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
                             0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

/// `netsh winhttp set proxy proxy-server="127.0.0.1:3128" bypass-list="<local>"`, in the layout
/// netsh writes (PROTOCOL-NOTES.md), with the version newer Windows reports (0x28) and a counter
/// netsh has incremented to 5.
// clang-format off
const bytes netsh_proxy = {
    0x28, 0x00, 0x00, 0x00,                          // version
    0x05, 0x00, 0x00, 0x00,                          // counter
    0x03, 0x00, 0x00, 0x00,                          // flags: direct | named proxy
    0x0e, 0x00, 0x00, 0x00,                          // proxy length 14 (offset 12)
    '1', '2', '7', '.', '0', '.', '0', '.', '1',     // proxy (offset 16)
    ':', '3', '1', '2', '8',
    0x07, 0x00, 0x00, 0x00,                          // bypass length 7 (offset 30)
    '<', 'l', 'o', 'c', 'a', 'l', '>'};              // bypass (offset 34)
// clang-format on

std::string decode_error(const bytes& value) {
    std::string error;
    const auto decoded = svc::decode(value, &error);
    CHECK_FALSE(decoded.has_value());
    return error;
}

std::string bypass_error(std::string_view list) {
    std::string error;
    CHECK_FALSE(authshim::config::validate_winhttp_bypass(list, &error));
    return error;
}

} // namespace

TEST_CASE("winhttp_settings: netsh default value decodes as direct access") {
    std::string error;
    const auto decoded = svc::decode(netsh_default, &error);
    REQUIRE(decoded.has_value());
    CHECK(error.empty());
    CHECK(decoded->version == 0x18);
    CHECK(decoded->counter == 0);
    CHECK(decoded->flags == svc::winhttp_flag_direct);
    CHECK(decoded->proxy.empty());
    CHECK(decoded->bypass.empty());
    CHECK(decoded->trailing.empty());
    CHECK_FALSE(svc::uses_named_proxy(*decoded));
    CHECK(svc::describe(*decoded) == "direct access (no proxy)");
    CHECK(svc::encode(*decoded) == netsh_default);
}

TEST_CASE("winhttp_settings: proxy and bypass value decodes field by field") {
    const auto decoded = svc::decode(netsh_proxy, nullptr);
    REQUIRE(decoded.has_value());
    CHECK(decoded->version == 0x28);
    CHECK(decoded->counter == 5);
    CHECK(decoded->flags == 3);
    CHECK(decoded->proxy == "127.0.0.1:3128");
    CHECK(decoded->bypass == "<local>");
    CHECK(decoded->trailing.empty());
    CHECK(svc::uses_named_proxy(*decoded));
    CHECK(svc::describe(*decoded) == "proxy 127.0.0.1:3128, bypass \"<local>\"");
    CHECK(svc::encode(*decoded) == netsh_proxy);
}

TEST_CASE("winhttp_settings: counter and multi-byte lengths are little-endian") {
    svc::winhttp_settings s;
    s.counter = 0x01020304;
    s.flags = 3;
    s.proxy = std::string(0x0102, 'p');
    const auto encoded = svc::encode(s);
    REQUIRE(encoded.size() == 20 + 0x0102);
    CHECK(encoded[4] == 0x04);
    CHECK(encoded[7] == 0x01);
    CHECK(encoded[12] == 0x02);
    CHECK(encoded[13] == 0x01);
    CHECK(encoded[14] == 0x00);
    const auto decoded = svc::decode(encoded, nullptr);
    REQUIRE(decoded.has_value());
    CHECK(*decoded == s);
}

TEST_CASE("winhttp_settings: trailing bytes are kept verbatim") {
    bytes value = netsh_proxy;
    const bytes extra = {0x00, 0x00, 0x00, 0x00, 0xff, 0x80, 0x01};
    value.insert(value.end(), extra.begin(), extra.end());
    const auto decoded = svc::decode(value, nullptr);
    REQUIRE(decoded.has_value());
    CHECK(decoded->trailing == extra);
    CHECK(decoded->bypass == "<local>");
    CHECK(svc::encode(*decoded) == value);
}

TEST_CASE("winhttp_settings: round trips") {
    svc::winhttp_settings s;
    SECTION("direct") {}
    SECTION("named proxy, per-scheme list") {
        s.version = 0x28;
        s.counter = 0xffffffff;
        s.flags = 3;
        s.proxy = "http=[::1]:3128;https=[::1]:3128";
        s.bypass = "<local>;*.corp.example;10.*";
    }
    SECTION("unknown flags and trailing bytes") {
        s.version = 0x12345678;
        s.flags = 0x0000000f;
        s.proxy = "proxy.example:8080";
        s.trailing = {1, 2, 3, 0, 0, 0, 0};
    }
    SECTION("longest accepted strings") {
        s.flags = 3;
        s.proxy = std::string(svc::winhttp_max_string_bytes, 'a');
        s.bypass = std::string(svc::winhttp_max_string_bytes, '~');
    }
    const auto encoded = svc::encode(s);
    std::string error;
    const auto decoded = svc::decode(encoded, &error);
    INFO(error);
    REQUIRE(decoded.has_value());
    CHECK(*decoded == s);
    CHECK(svc::encode(*decoded) == encoded);
}

TEST_CASE("winhttp_settings: truncated headers are rejected") {
    for (std::size_t size = 0; size < 12; ++size) {
        const bytes value(netsh_default.begin(),
                          netsh_default.begin() + static_cast<std::ptrdiff_t>(size));
        INFO("size " << size);
        CHECK_THAT(decode_error(value), Catch::Contains("too short for the header"));
    }
    CHECK_THAT(decode_error(bytes(netsh_default.begin(), netsh_default.begin() + 5)),
               Catch::Contains("the counter field"));
}

TEST_CASE("winhttp_settings: missing length fields are rejected") {
    CHECK_THAT(decode_error(bytes(netsh_default.begin(), netsh_default.begin() + 12)),
               Catch::Contains("the proxy length") && Catch::Contains("is missing"));
    CHECK_THAT(decode_error(bytes(netsh_default.begin(), netsh_default.begin() + 14)),
               Catch::Contains("the proxy length"));
    CHECK_THAT(decode_error(bytes(netsh_default.begin(), netsh_default.begin() + 16)),
               Catch::Contains("the bypass list length") && Catch::Contains("is missing"));
    CHECK_THAT(decode_error(bytes(netsh_default.begin(), netsh_default.begin() + 19)),
               Catch::Contains("the bypass list length"));
    // Proxy present, bypass length cut off.
    CHECK_THAT(decode_error(bytes(netsh_proxy.begin(), netsh_proxy.begin() + 30)),
               Catch::Contains("the bypass list length (4 bytes at offset 30) is missing"));
}

TEST_CASE("winhttp_settings: every truncation of a real value is rejected, never over-read") {
    // Each prefix is copied into its own vector so that a sanitizer sees any read past it.
    for (std::size_t size = 0; size < netsh_proxy.size(); ++size) {
        const bytes value(netsh_proxy.begin(),
                          netsh_proxy.begin() + static_cast<std::ptrdiff_t>(size));
        INFO("size " << size);
        std::string error;
        CHECK_FALSE(svc::decode(value, &error).has_value());
        CHECK_FALSE(error.empty());
    }
}

TEST_CASE("winhttp_settings: lengths beyond the buffer are rejected") {
    bytes value = netsh_proxy;
    value[12] = 0x0f; // proxy length 15 swallows the bypass length's first byte...
    // ...so the bypass length then reads 00 00 00 '<' = a huge value: caught either way.
    CHECK_FALSE(svc::decode(value, nullptr).has_value());

    value = netsh_proxy;
    value[30] = 0x08; // bypass length 8, only 7 bytes follow
    CHECK(decode_error(value) ==
          "the bypass list length at offset 30 is 8 but only 7 bytes follow");

    value = netsh_default;
    value[12] = 0x01; // proxy length 1 ("x"), then only 3 bytes for the bypass length
    value[16] = 'x';
    CHECK_THAT(decode_error(value),
               Catch::Contains("the bypass list length (4 bytes at offset 17) is missing"));

    value = netsh_default;
    value[12] = 0x05; // proxy length 5, only 4 bytes follow
    CHECK(decode_error(value) == "the proxy length at offset 12 is 5 but only 4 bytes follow");
}

TEST_CASE("winhttp_settings: absurd lengths are rejected before anything else") {
    bytes value = netsh_default;
    value[12] = 0xff;
    value[13] = 0xff;
    value[14] = 0xff;
    value[15] = 0xff;
    CHECK(decode_error(value) ==
          "the proxy length at offset 12 is 4294967295, more than the 32768 bytes accepted");

    // Just above the limit, with the bytes actually present: still refused.
    svc::winhttp_settings s;
    s.bypass = std::string(svc::winhttp_max_string_bytes + 1, 'b');
    CHECK_THAT(decode_error(svc::encode(s)),
               Catch::Contains("the bypass list length at offset 16 is 32769, more than"));
}

TEST_CASE("winhttp_settings: non-printable or non-ASCII string bytes are rejected") {
    bytes value = netsh_proxy;
    value[16 + 3] = 0x00; // a NUL inside the proxy
    CHECK(decode_error(value) ==
          "the proxy holds byte 0x00 at offset 19 (only printable ASCII is expected)");

    value = netsh_proxy;
    value[34 + 1] = 0xc3; // non-ASCII in the bypass list
    CHECK(decode_error(value) ==
          "the bypass list holds byte 0xc3 at offset 35 (only printable ASCII is expected)");

    value = netsh_proxy;
    value[16] = 0x7f; // DEL
    CHECK_THAT(decode_error(value), Catch::Contains("byte 0x7f at offset 16"));

    value = netsh_proxy;
    value[40] = '\n';
    CHECK_THAT(decode_error(value), Catch::Contains("byte 0x0a at offset 40"));

    // A UTF-16 proxy string (what a confused writer might store) is refused, not misread.
    svc::winhttp_settings s;
    s.flags = 3;
    s.proxy = std::string("a\0b\0", 4);
    CHECK_THAT(decode_error(svc::encode(s)), Catch::Contains("the proxy holds byte 0x00"));
}

TEST_CASE("winhttp_settings: a null error pointer is allowed") {
    CHECK_FALSE(svc::decode(bytes{}, nullptr).has_value());
    CHECK_FALSE(authshim::config::validate_winhttp_bypass("", nullptr));
}

TEST_CASE("winhttp_settings: describe") {
    svc::winhttp_settings s;
    s.flags = 3;
    s.proxy = "[::1]:3128";
    CHECK(svc::describe(s) == "proxy [::1]:3128, no bypass list");
    s.bypass = "<local>;*.corp";
    CHECK(svc::describe(s) == "proxy [::1]:3128, bypass \"<local>;*.corp\"");
    s.flags = 1;
    CHECK(svc::describe(s) ==
          "direct access (no proxy; an unused proxy string \"[::1]:3128\" is stored)");
    s.flags = 2;
    s.proxy.clear();
    CHECK(svc::describe(s) ==
          "direct access (no proxy; the named-proxy flag is set without a proxy string)");
}

TEST_CASE("winhttp_settings: validate_bypass accepts real lists") {
    for (const char* list : {"<local>", "<local>;*.corp.example", "10.*;192.168.*;<local>",
                             "*.example.com;[::1]", "<-loopback>"}) {
        std::string error;
        INFO(list);
        CHECK(authshim::config::validate_winhttp_bypass(list, &error));
        CHECK(error.empty());
    }
    CHECK(authshim::config::validate_winhttp_bypass(
        std::string(authshim::config::winhttp_max_bypass_bytes, 'a'), nullptr));
}

TEST_CASE("winhttp_settings: validate_bypass refuses bad lists") {
    CHECK_THAT(bypass_error(""), Catch::Contains("empty") && Catch::Contains("<local>"));
    CHECK(bypass_error(";<local>") ==
          "entry 1 of the bypass list is empty (entries are separated by single ';' characters, "
          "none at the ends)");
    CHECK_THAT(bypass_error("<local>;"), Catch::Contains("entry 2 of the bypass list is empty"));
    CHECK_THAT(bypass_error("a;;b"), Catch::Contains("entry 2 of the bypass list is empty"));
    CHECK_THAT(bypass_error(";"), Catch::Contains("entry 1"));
    CHECK(bypass_error("<local>; *.corp") ==
          "entry 2 of the bypass list contains whitespace at byte 9 (separate entries with ';' "
          "only)");
    CHECK_THAT(bypass_error("a b"), Catch::Contains("whitespace"));
    CHECK_THAT(bypass_error("a\tb"), Catch::Contains("whitespace"));
    CHECK(bypass_error("<local>;x\"") ==
          "entry 2 of the bypass list contains a double quote at byte 10");
    CHECK_THAT(bypass_error("a "), Catch::Contains("whitespace"));
    CHECK(bypass_error("b\xc3\xbc"
                       "cher.de") ==
          "the bypass list contains a non-ASCII byte (0xc3) at byte 2; write international names "
          "in their xn-- form");
    CHECK(bypass_error("a\nb") == "the bypass list contains the control character 0x0a at byte 2");
    CHECK_THAT(bypass_error(std::string("a\0b", 3)), Catch::Contains("control character 0x00"));
    CHECK_THAT(bypass_error("a\x7f"), Catch::Contains("control character 0x7f"));
    CHECK(bypass_error(std::string(authshim::config::winhttp_max_bypass_bytes + 1, 'a')) ==
          "the bypass list has 2049 bytes, more than the 2048 accepted");
}

TEST_CASE("winhttp_settings: applied_settings keeps a known version, else 0x18") {
    const auto previous = svc::decode(netsh_proxy, nullptr); // version 0x28, counter 5
    REQUIRE(previous.has_value());
    auto s = svc::applied_settings("127.0.0.1:3128", "<local>", previous);
    CHECK(s.version == 0x28);
    CHECK(s.counter == 0);
    CHECK(s.flags == 3);
    CHECK(s.proxy == "127.0.0.1:3128");
    CHECK(s.bypass == "<local>");
    CHECK(s.trailing.empty());

    CHECK(svc::applied_settings("p:1", "<local>", std::nullopt).version == 0x18);
    auto odd = *previous;
    odd.version = 0x46;
    CHECK(svc::applied_settings("p:1", "<local>", odd).version == 0x18);

    // With the Wine/netsh default before it, the bytes are exactly what Wine honours.
    const auto from_default =
        svc::applied_settings("127.0.0.1:3128", "<local>", svc::decode(netsh_default, nullptr));
    bytes expected = netsh_proxy;
    expected[0] = 0x18;
    expected[4] = 0x00;
    CHECK(svc::encode(from_default) == expected);
}

TEST_CASE("winhttp_settings: proxy_addresses") {
    using list = std::vector<std::string>;
    CHECK(svc::proxy_addresses("127.0.0.1:3128") == list{"127.0.0.1:3128"});
    CHECK(svc::proxy_addresses("http=127.0.0.1:3128;https=127.0.0.1:3128") ==
          list{"127.0.0.1:3128", "127.0.0.1:3128"});
    CHECK(svc::proxy_addresses("http://Proxy.Corp:8080/") == list{"proxy.corp:8080"});
    CHECK(svc::proxy_addresses("a:1 b:2;;") == list{"a:1", "b:2"});
    CHECK(svc::proxy_addresses("[::1]:3128") == list{"[::1]:3128"});
    CHECK(svc::proxy_addresses("").empty());
}

TEST_CASE("winhttp_settings: hex_dump") {
    CHECK(svc::hex_dump(bytes{}).empty());
    CHECK(svc::hex_dump(bytes{0x18, 0x00, 0xab}) == "18 00 ab");
    const auto dump = svc::hex_dump(netsh_proxy);
    CHECK(dump.substr(0, 48) == "28 00 00 00 05 00 00 00 03 00 00 00 0e 00 00 00\n");
    CHECK(dump.size() == netsh_proxy.size() * 3 - 1);
}
