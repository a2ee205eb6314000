#include "service/winhttp_settings.hpp"

#include <cstddef>
#include <utility>

namespace authshim::service {

namespace {

bool printable_ascii(unsigned char c) {
    return c >= 0x20 && c <= 0x7e;
}

std::string hex_byte(std::uint8_t b) {
    static constexpr char digits[] = "0123456789abcdef";
    return {digits[b >> 4], digits[b & 0x0f]};
}

void set_error(std::string* error, std::string text) {
    if (error) *error = std::move(text);
}

/// Bounds-checked little-endian reader over the value's bytes.
class reader {
public:
    explicit reader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}

    std::size_t offset() const { return offset_; }
    std::size_t remaining() const { return bytes_.size() - offset_; }

    std::optional<std::uint32_t> u32() {
        if (remaining() < 4) return std::nullopt;
        std::uint32_t value = 0;
        for (std::size_t i = 0; i < 4; ++i)
            value |= static_cast<std::uint32_t>(bytes_[offset_ + i]) << (8 * i);
        offset_ += 4;
        return value;
    }

    /// `n` bytes as a string; the caller has checked `n <= remaining()`.
    std::string take(std::size_t n) {
        std::string out(reinterpret_cast<const char*>(bytes_.data() + offset_), n);
        offset_ += n;
        return out;
    }

    std::vector<std::uint8_t> rest() {
        std::vector<std::uint8_t> out(bytes_.begin() + static_cast<std::ptrdiff_t>(offset_),
                                      bytes_.end());
        offset_ = bytes_.size();
        return out;
    }

private:
    std::span<const std::uint8_t> bytes_;
    std::size_t offset_ = 0;
};

/// Reads `u32 length + bytes` for the field `what`, with every check `decode` promises.
std::optional<std::string> read_string(reader& in, const char* what, std::string* error) {
    const std::size_t at = in.offset();
    const auto length = in.u32();
    if (!length) {
        set_error(error, std::string("truncated: the ") + what + " length (4 bytes at offset " +
                             std::to_string(at) + ") is missing; the value has only " +
                             std::to_string(at + in.remaining()) + " bytes");
        return std::nullopt;
    }
    if (*length > winhttp_max_string_bytes) {
        set_error(error, std::string("the ") + what + " length at offset " + std::to_string(at) +
                             " is " + std::to_string(*length) + ", more than the " +
                             std::to_string(winhttp_max_string_bytes) + " bytes accepted");
        return std::nullopt;
    }
    if (*length > in.remaining()) {
        set_error(error, std::string("the ") + what + " length at offset " + std::to_string(at) +
                             " is " + std::to_string(*length) + " but only " +
                             std::to_string(in.remaining()) + " bytes follow");
        return std::nullopt;
    }
    const std::size_t start = in.offset();
    std::string text = in.take(*length);
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (!printable_ascii(c)) {
            set_error(error, std::string("the ") + what + " holds byte 0x" + hex_byte(c) +
                                 " at offset " + std::to_string(start + i) +
                                 " (only printable ASCII is expected)");
            return std::nullopt;
        }
    }
    return text;
}

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t value) {
    for (int i = 0; i < 4; ++i)
        out.push_back(static_cast<std::uint8_t>((value >> (8 * i)) & 0xff));
}

void put_string(std::vector<std::uint8_t>& out, const std::string& text) {
    put_u32(out, static_cast<std::uint32_t>(text.size()));
    out.insert(out.end(), text.begin(), text.end());
}

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

} // namespace

std::optional<winhttp_settings> decode(std::span<const std::uint8_t> bytes, std::string* error) {
    reader in(bytes);
    winhttp_settings out;
    static constexpr const char* header_names[] = {"version", "counter", "flags"};
    std::uint32_t* header[] = {&out.version, &out.counter, &out.flags};
    for (std::size_t i = 0; i < 3; ++i) {
        const auto value = in.u32();
        if (!value) {
            set_error(error, "truncated: " + std::to_string(bytes.size()) +
                                 " bytes, too short for the header (the " + header_names[i] +
                                 " field ends at byte " + std::to_string(4 * (i + 1)) + ")");
            return std::nullopt;
        }
        *header[i] = *value;
    }
    auto proxy = read_string(in, "proxy", error);
    if (!proxy) return std::nullopt;
    auto bypass = read_string(in, "bypass list", error);
    if (!bypass) return std::nullopt;
    out.proxy = std::move(*proxy);
    out.bypass = std::move(*bypass);
    out.trailing = in.rest();
    return out;
}

std::vector<std::uint8_t> encode(const winhttp_settings& settings) {
    std::vector<std::uint8_t> out;
    out.reserve(20 + settings.proxy.size() + settings.bypass.size() + settings.trailing.size());
    put_u32(out, settings.version);
    put_u32(out, settings.counter);
    put_u32(out, settings.flags);
    put_string(out, settings.proxy);
    put_string(out, settings.bypass);
    out.insert(out.end(), settings.trailing.begin(), settings.trailing.end());
    return out;
}

bool uses_named_proxy(const winhttp_settings& settings) {
    return (settings.flags & winhttp_flag_named_proxy) != 0 && !settings.proxy.empty();
}

std::string describe(const winhttp_settings& settings) {
    if (uses_named_proxy(settings)) {
        std::string out = "proxy " + settings.proxy;
        out += settings.bypass.empty() ? std::string(", no bypass list")
                                       : ", bypass \"" + settings.bypass + "\"";
        return out;
    }
    if ((settings.flags & winhttp_flag_named_proxy) != 0)
        return "direct access (no proxy; the named-proxy flag is set without a proxy string)";
    if (!settings.proxy.empty())
        return "direct access (no proxy; an unused proxy string \"" + settings.proxy +
               "\" is stored)";
    return "direct access (no proxy)";
}

winhttp_settings applied_settings(std::string proxy, std::string bypass,
                                  const std::optional<winhttp_settings>& previous) {
    winhttp_settings out;
    out.version = (previous && (previous->version == winhttp_version_classic ||
                                previous->version == winhttp_version_newer))
                      ? previous->version
                      : winhttp_version_classic;
    // Counter 0: Windows' netsh increments it on every change, but WinHTTP reads the value
    // whatever the counter; Wine only honours a value whose counter is 0 (and version 0x18).
    out.counter = 0;
    out.flags = winhttp_flag_direct | winhttp_flag_named_proxy; // what netsh writes
    out.proxy = std::move(proxy);
    out.bypass = std::move(bypass);
    return out;
}

std::vector<std::string> proxy_addresses(std::string_view proxy) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= proxy.size()) {
        std::size_t end = proxy.find_first_of("; ", start);
        if (end == std::string_view::npos) end = proxy.size();
        std::string_view entry = proxy.substr(start, end - start);
        start = end + 1;
        if (const auto eq = entry.find('='); eq != std::string_view::npos)
            entry.remove_prefix(eq + 1); // `http=host:port`
        if (const auto scheme = entry.find("://"); scheme != std::string_view::npos)
            entry.remove_prefix(scheme + 3); // `http://host:port`
        while (!entry.empty() && entry.back() == '/')
            entry.remove_suffix(1);
        if (entry.empty()) continue;
        std::string address;
        for (const char c : entry)
            address.push_back(lower(c));
        out.push_back(std::move(address));
    }
    return out;
}

std::string hex_dump(std::span<const std::uint8_t> bytes) {
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (i != 0) out += (i % 16 == 0) ? '\n' : ' ';
        out += hex_byte(bytes[i]);
    }
    return out;
}

} // namespace authshim::service
