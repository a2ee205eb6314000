#include "config/secret.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace cfg = authshim::config;
using cfg::secret_string;

namespace {

template <typename T, typename = void> struct is_streamable : std::false_type {};
template <typename T>
struct is_streamable<T, std::void_t<decltype(std::declval<std::ostream&>() << std::declval<T>())>>
    : std::true_type {};

// The whole point of the type: it cannot reach a stream (nor fmt's ostream fallback, nor
// Catch2's stringification), and it never turns into text on its own.
static_assert(!is_streamable<const secret_string&>::value);
static_assert(!is_streamable<secret_string&&>::value);
static_assert(is_streamable<std::string_view>::value); // the trait itself works
static_assert(!std::is_convertible_v<secret_string, std::string>);
static_assert(!std::is_convertible_v<secret_string, std::string_view>);
static_assert(!std::is_convertible_v<secret_string, const char*>);
static_assert(!std::is_constructible_v<std::string, secret_string>);
static_assert(!std::is_convertible_v<std::string, secret_string>); // construction is explicit
static_assert(!std::is_convertible_v<const char*, secret_string>);
static_assert(
    std::is_same_v<decltype(std::declval<const secret_string&>().expose()), std::string_view>);
static_assert(std::is_copy_constructible_v<secret_string>);
static_assert(std::is_nothrow_move_constructible_v<secret_string>);
static_assert(std::is_nothrow_move_assignable_v<secret_string>);

/// True when `needle` appears anywhere in the object representation of `object` (which holds
/// short strings inline, in the small-string buffer).
template <typename T> bool bytes_contain(const T& object, std::string_view needle) {
    const auto* bytes = reinterpret_cast<const char*>(std::addressof(object));
    const std::string_view all(bytes, sizeof(T));
    return all.find(needle) != std::string_view::npos;
}

} // namespace

TEST_CASE("secret_string gives its value only through expose()", "[secret]") {
    const secret_string s("Pa55-w0rd");
    CHECK(s.expose() == "Pa55-w0rd");
    CHECK(s.size() == 9);
    CHECK_FALSE(s.empty());
    CHECK(secret_string().empty());
    CHECK(secret_string(std::string_view("abc")).expose() == "abc");
    std::string owned = "moved in";
    CHECK(secret_string(std::move(owned)).expose() == "moved in");
}

TEST_CASE("secret_string copies and moves", "[secret]") {
    secret_string a("first-value");
    secret_string b(a);
    CHECK(b.expose() == "first-value");
    secret_string c(std::move(a));
    CHECK(c.expose() == "first-value");
    CHECK(a.expose().empty()); // NOLINT(bugprone-use-after-move): a moved-from secret is empty

    secret_string d;
    d = c;
    CHECK(d.expose() == "first-value");
    d = secret_string("a much longer value that does not fit the small-string buffer");
    CHECK(d.expose() == "a much longer value that does not fit the small-string buffer");
    const secret_string& same = d; // (through a reference: clang's -Wself-assign-overloaded)
    d = same;                      // self-assignment keeps the value
    CHECK(d.expose() == "a much longer value that does not fit the small-string buffer");
    d.clear();
    CHECK(d.empty());
}

TEST_CASE("secret_string compares by value", "[secret]") {
    CHECK(secret_string("same") == secret_string("same"));
    CHECK_FALSE(secret_string("same") == secret_string("Same"));
    CHECK_FALSE(secret_string("same") == secret_string("same "));
    CHECK_FALSE(secret_string("same") == secret_string("sam"));
    CHECK_FALSE(secret_string("abc") == secret_string(""));
    CHECK(secret_string("") == secret_string());
    CHECK(secret_string(std::string("a\0b", 3)) == secret_string(std::string("a\0b", 3)));
    CHECK_FALSE(secret_string(std::string("a\0b", 3)) == secret_string(std::string("a\0c", 3)));
    CHECK_FALSE(secret_string("a") != secret_string("a"));
}

TEST_CASE("wipe overwrites the whole buffer of a string", "[secret]") {
    std::string text = "a secret that lives on the heap, longer than the inline buffer";
    text.resize(5); // the rest of the old value stays in the buffer past size()
    const char* data = text.data();
    const std::size_t capacity = text.capacity();
    cfg::wipe(text);
    CHECK(text.empty());
    CHECK(text.capacity() == capacity);
    CHECK(text.data() == data);
    CHECK(std::all_of(data, data + capacity, [](char c) { return c == '\0'; }));
}

TEST_CASE("the string a secret_string is built from is wiped", "[secret]") {
    std::string source = "short-pw"; // inline: a move would leave these bytes behind
    const secret_string s(std::move(source));
    CHECK(s.expose() == "short-pw");
    // NOLINTNEXTLINE(bugprone-use-after-move): its buffer is what is under test
    CHECK(std::all_of(source.data(), source.data() + source.capacity(),
                      [](char c) { return c == '\0'; }));
}

TEST_CASE("a moved-from secret_string holds nothing of the value", "[secret]") {
    secret_string a("inline-pw-7");
    REQUIRE(bytes_contain(a, "inline-pw-7")); // the check below can see inline bytes
    secret_string b(std::move(a));
    // Not the first byte: a moved-from std::string zeroes only that one.
    CHECK_FALSE(bytes_contain(a, "nline-pw-7")); // NOLINT(bugprone-use-after-move)

    secret_string c("other-pw-88");
    c = std::move(b);
    CHECK(c.expose() == "inline-pw-7");
    CHECK_FALSE(bytes_contain(b, "nline-pw-7")); // NOLINT(bugprone-use-after-move)
}

TEST_CASE("assigning a shorter secret leaves nothing of the old one", "[secret]") {
    secret_string a("old-secret-1234");
    REQUIRE(bytes_contain(a, "old-secret-1234"));
    const secret_string shorter("new");
    a = shorter;
    CHECK(a.expose() == "new");
    CHECK_FALSE(bytes_contain(a, "secret-1234"));

    secret_string b("old-secret-5678");
    b = secret_string("xy");
    CHECK(b.expose() == "xy");
    CHECK_FALSE(bytes_contain(b, "secret-5678"));
}

TEST_CASE("destroying a secret_string wipes its inline buffer", "[secret]") {
    alignas(secret_string) unsigned char storage[sizeof(secret_string)];
    auto* s = new (storage) secret_string("inline-pw-42");
    REQUIRE(bytes_contain(*s, "inline-pw-42"));
    s->~secret_string();
    // The storage outlives the object: its bytes show what the destructor left.
    const std::string_view bytes(reinterpret_cast<const char*>(storage), sizeof storage);
    CHECK(bytes.find("nline-pw-42") == std::string_view::npos);
}

TEST_CASE("secret_kind_name names the config key", "[secret]") {
    CHECK(cfg::secret_kind_name(cfg::env_secret{"V"}) == "env");
    CHECK(cfg::secret_kind_name(cfg::file_secret{"/p"}) == "file");
    CHECK(cfg::secret_kind_name(cfg::plain_secret{secret_string("x")}) == "plain");
    CHECK(cfg::secret_kind_name(cfg::dpapi_secret{{1, 2}}) == "dpapi");
    CHECK(cfg::secret_kind_name(cfg::credman_secret{"t"}) == "credman");
}
