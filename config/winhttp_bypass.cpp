// The WinHTTP bypass-list syntax shared by the config loader and the `winhttp` commands.
#include "config/winhttp_bypass.hpp"

#include <cstdint>
#include <utility>

namespace authshim::config {
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

} // namespace

bool validate_winhttp_bypass(std::string_view list, std::string* error) {
    if (list.empty()) {
        set_error(error, "the bypass list is empty (the default is <local>)");
        return false;
    }
    if (list.size() > winhttp_max_bypass_bytes) {
        set_error(error, "the bypass list has " + std::to_string(list.size()) +
                             " bytes, more than the " + std::to_string(winhttp_max_bypass_bytes) +
                             " accepted");
        return false;
    }
    std::size_t entry_start = 0;
    std::size_t entry_number = 1;
    for (std::size_t i = 0; i <= list.size(); ++i) {
        if (i == list.size() || list[i] == ';') {
            if (i == entry_start) {
                set_error(error, "entry " + std::to_string(entry_number) +
                                     " of the bypass list is empty (entries are separated by "
                                     "single ';' characters, none at the ends)");
                return false;
            }
            entry_start = i + 1;
            ++entry_number;
            continue;
        }
        const auto c = static_cast<unsigned char>(list[i]);
        if (c == ' ' || c == '\t') {
            set_error(error, "entry " + std::to_string(entry_number) +
                                 " of the bypass list contains whitespace at byte " +
                                 std::to_string(i + 1) + " (separate entries with ';' only)");
            return false;
        }
        if (c == '"') {
            // Never part of a host pattern; refused so that a list passed as a quoted Windows
            // command-line argument (the MSI's BYPASS) cannot end its quoting early.
            set_error(error, "entry " + std::to_string(entry_number) +
                                 " of the bypass list contains a double quote at byte " +
                                 std::to_string(i + 1));
            return false;
        }
        if (c >= 0x80) {
            set_error(error, "the bypass list contains a non-ASCII byte (0x" + hex_byte(c) +
                                 ") at byte " + std::to_string(i + 1) +
                                 "; write international names in their xn-- form");
            return false;
        }
        if (!printable_ascii(c)) {
            set_error(error, "the bypass list contains the control character 0x" + hex_byte(c) +
                                 " at byte " + std::to_string(i + 1));
            return false;
        }
    }
    return true;
}

} // namespace authshim::config
