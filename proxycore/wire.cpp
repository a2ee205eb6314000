#include "proxycore/wire.hpp"

namespace authshim::proxycore {
namespace {

void append_version(std::string& out, unsigned version) {
    out += "HTTP/";
    out += static_cast<char>('0' + version / 10);
    out += '.';
    out += static_cast<char>('0' + version % 10);
}

template <bool is_request>
void append_fields(std::string& out, const http::header<is_request>& head) {
    for (const auto& field : head) {
        out += field.name_string();
        out += ": ";
        out += field.value();
        out += "\r\n";
    }
    out += "\r\n";
}

} // namespace

void serialize_head(std::string& out, const http::request_header<>& head) {
    out.clear();
    out += head.method_string();
    out += ' ';
    out += head.target();
    out += ' ';
    append_version(out, head.version());
    out += "\r\n";
    append_fields(out, head);
}

void serialize_head(std::string& out, const http::response_header<>& head) {
    out.clear();
    append_version(out, head.version());
    const auto code = head.result_int();
    out += ' ';
    out += static_cast<char>('0' + code / 100 % 10);
    out += static_cast<char>('0' + code / 10 % 10);
    out += static_cast<char>('0' + code % 10);
    out += ' ';
    const auto reason = head.reason();
    out += reason.empty() ? http::obsolete_reason(head.result()) : reason;
    out += "\r\n";
    append_fields(out, head);
}

chunk_size_line::chunk_size_line(std::size_t size) noexcept {
    static constexpr char digits[] = "0123456789abcdef";
    buffer_[--start_] = '\n';
    buffer_[--start_] = '\r';
    do {
        buffer_[--start_] = digits[size & 0xf];
        size >>= 4;
    } while (size != 0);
}

} // namespace authshim::proxycore
