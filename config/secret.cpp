#include "config/secret.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <utility>

namespace authshim::config {

void wipe(void* data, std::size_t size) noexcept {
    // Writes through a volatile pointer are observable behaviour: they cannot be dropped as dead
    // stores before the memory is freed. The fence keeps them before whatever follows.
    volatile auto* bytes = static_cast<volatile unsigned char*>(data);
    for (std::size_t i = 0; i < size; ++i)
        bytes[i] = 0;
    std::atomic_signal_fence(std::memory_order_seq_cst);
}

void wipe(std::string& text) noexcept {
    // Growing to the capacity never reallocates, and makes every byte of the buffer (including
    // what a shorter value left behind) part of the string, so it can be overwritten.
    text.resize(text.capacity());
    wipe(text.data(), text.size());
    text.clear();
}

secret_string::secret_string(std::string&& text) noexcept : value_(std::move(text)) {
    wipe(text); // NOLINT(bugprone-use-after-move): valid but unspecified; its buffer is wiped
}

secret_string::secret_string(secret_string&& other) noexcept : value_(std::move(other.value_)) {
    wipe(other.value_);
}

secret_string& secret_string::operator=(const secret_string& other) {
    if (this != &other) {
        wipe(value_); // an assignment that reallocates frees the old buffer: wipe it first
        value_ = other.value_;
    }
    return *this;
}

secret_string& secret_string::operator=(secret_string&& other) noexcept {
    if (this != &other) {
        wipe(value_);
        value_ = std::move(other.value_);
        wipe(other.value_); // may now hold our old (wiped) buffer or inline bytes of its value
    }
    return *this;
}

secret_string::~secret_string() {
    wipe(value_);
}

void secret_string::clear() noexcept {
    wipe(value_);
}

bool operator==(const secret_string& a, const secret_string& b) noexcept {
    const std::string_view x = a.value_;
    const std::string_view y = b.value_;
    const std::size_t n = std::max(x.size(), y.size());
    // Every byte is looked at whatever the contents; only the lengths decide the work done.
    volatile unsigned diff = x.size() == y.size() ? 0u : 1u;
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned cx = i < x.size() ? static_cast<unsigned char>(x[i]) : 0u;
        const unsigned cy = i < y.size() ? static_cast<unsigned char>(y[i]) : 0u;
        diff = diff | (cx ^ cy);
    }
    return diff == 0;
}

std::string_view secret_kind_name(const secret_ref& ref) noexcept {
    static constexpr std::array<std::string_view, std::variant_size_v<secret_ref>> names{
        "env", "file", "plain", "dpapi", "credman"};
    return ref.index() < names.size() ? names[ref.index()] : std::string_view("unknown");
}

} // namespace authshim::config
