// The JSON-lines access log. Design (see also the header):
//  - write() formats the line on the calling thread into a thread-local scratch string (no
//    allocation once warm), then appends it to `pending_` under a mutex held for one memcpy. No
//    syscall: the flusher thread is only notified when `pending_` crosses 64 KiB.
//  - The flusher thread wakes every second (or at 64 KiB, or on destruction), swaps `pending_`
//    with its own buffer and hands the lines, one by one, to spdlog's rotating file sink, which
//    owns the file (stdio-buffered, UTF-16 names on Windows, rotation by size), then flushes it.
//    flush() does the same on the caller's thread. `io_mutex_` keeps the lines in order.
//  - The queue is capped (`max_pending`): when the file cannot keep up, lines are dropped and
//    counted instead of growing memory without bound or blocking the proxy.
//  - Failures (open, write, flush, rotate) are counted and reported with spdlog::warn at most
//    once a minute (and once more on destruction if some are unreported).
#include "proxycore/access_log.hpp"

#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

namespace authshim::proxycore {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

/// Escaped text kept per string field; longer values end with `...`.
constexpr std::size_t max_field_bytes = 8 * 1024;
/// Queued bytes that wake the flusher before its one-second tick.
constexpr std::size_t flush_threshold = 64 * 1024;
/// Queued bytes beyond which lines are dropped (the file is not keeping up).
constexpr std::size_t max_pending = 16 * 1024 * 1024;
/// A write buffer grown past this by a burst is released after use.
constexpr std::size_t keep_capacity = 1024 * 1024;
constexpr auto flush_interval = 1s;
constexpr auto report_interval = 60s;

// ---- formatting ---------------------------------------------------------------------------

/// Bytes copied as they are inside a JSON string: printable ASCII but `"` and `\`.
constexpr std::array<bool, 256> plain_table = [] {
    std::array<bool, 256> t{};
    for (int c = 0x20; c < 0x7f; ++c)
        t[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
    return t;
}();

bool plain(char c) {
    return plain_table[static_cast<unsigned char>(c)];
}

/// Length of the UTF-8 sequence at `s[i]`, or of its maximal invalid subpart (Unicode 15 §3.9,
/// "U+FFFD substitution of maximal subparts") with `valid` false.
std::size_t utf8_sequence(std::string_view s, std::size_t i, bool& valid) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t trail = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        trail = 1;
    } else if (c == 0xe0) {
        trail = 2;
        lo = 0xa0; // no overlong forms
    } else if (c == 0xed) {
        trail = 2;
        hi = 0x9f; // no surrogates
    } else if (c >= 0xe1 && c <= 0xef) {
        trail = 2;
    } else if (c == 0xf0) {
        trail = 3;
        lo = 0x90; // no overlong forms
    } else if (c >= 0xf1 && c <= 0xf3) {
        trail = 3;
    } else if (c == 0xf4) {
        trail = 3;
        hi = 0x8f; // nothing above U+10FFFF
    } else {
        valid = false; // a continuation byte, C0/C1 (overlong) or F5..FF
        return 1;
    }
    for (std::size_t k = 1; k <= trail; ++k) {
        if (i + k >= s.size()) {
            valid = false;
            return k;
        }
        const auto b = static_cast<unsigned char>(s[i + k]);
        if (b < lo || b > hi) {
            valid = false;
            return k;
        }
        lo = 0x80;
        hi = 0xbf;
    }
    valid = true;
    return trail + 1;
}

/// Appends `s` as the inside of a JSON string (RFC 8259): `"` and `\` escaped, control
/// characters and DEL as \u00XX, invalid UTF-8 as \ufffd. At most `max_field_bytes` of escaped
/// text, then `...`. Returns false when it truncated.
bool append_escaped(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    const std::size_t limit = out.size() + max_field_bytes;
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t j = i;
        while (j < s.size() && plain(s[j]))
            ++j;
        if (j > i) {
            const std::size_t n = std::min(j - i, limit - out.size());
            out.append(s.data() + i, n);
            if (n < j - i) {
                out += "...";
                return false;
            }
            i = j;
            continue;
        }
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            const bool escape_char = c == '"' || c == '\\';
            if (out.size() + (escape_char ? 2 : 6) > limit) {
                out += "...";
                return false;
            }
            if (escape_char) {
                out += '\\';
                out += static_cast<char>(c);
            } else {
                const char u[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
                out.append(u, sizeof u);
            }
            ++i;
            continue;
        }
        bool valid = false;
        const std::size_t n = utf8_sequence(s, i, valid);
        if (out.size() + (valid ? n : 6) > limit) {
            out += "...";
            return false;
        }
        if (valid)
            out.append(s.data() + i, n);
        else
            out += "\\ufffd";
        i += n;
    }
    return true;
}

void append_string(std::string& out, std::string_view s) {
    out += '"';
    append_escaped(out, s);
    out += '"';
}

void append_string_or_null(std::string& out, std::string_view s) {
    if (s.empty())
        out += "null";
    else
        append_string(out, s);
}

void append_uint(std::string& out, std::uint64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

/// `v` as exactly `width` decimal digits (v < 10^width).
void append_fixed(std::string& out, unsigned v, int width) {
    char buf[4];
    for (int k = width - 1; k >= 0; --k) {
        buf[k] = static_cast<char>('0' + v % 10);
        v /= 10;
    }
    out.append(buf, static_cast<std::size_t>(width));
}

/// RFC 3339, UTC, milliseconds: 2026-11-25T06:30:00.123Z.
void append_time(std::string& out, std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    const auto ms = floor<milliseconds>(t);
    const auto day = floor<days>(ms);
    const year_month_day ymd{day};
    const auto tod = static_cast<std::uint64_t>((ms - day).count()); // [0, 86'400'000)
    const int y = static_cast<int>(ymd.year());
    if (y >= 0 && y <= 9999)
        append_fixed(out, static_cast<unsigned>(y), 4);
    else
        out += std::to_string(y); // not RFC 3339, but still a valid JSON string
    out += '-';
    append_fixed(out, static_cast<unsigned>(ymd.month()), 2);
    out += '-';
    append_fixed(out, static_cast<unsigned>(ymd.day()), 2);
    out += 'T';
    append_fixed(out, static_cast<unsigned>(tod / 3'600'000), 2);
    out += ':';
    append_fixed(out, static_cast<unsigned>(tod / 60'000 % 60), 2);
    out += ':';
    append_fixed(out, static_cast<unsigned>(tod / 1000 % 60), 2);
    out += '.';
    append_fixed(out, static_cast<unsigned>(tod % 1000), 3);
    out += 'Z';
}

/// Milliseconds with three decimals (microsecond precision): 1.234.
void append_duration(std::string& out, std::chrono::microseconds d) {
    const auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(d.count(), 0));
    append_uint(out, us / 1000);
    out += '.';
    append_fixed(out, static_cast<unsigned>(us % 1000), 3);
}

/// `text` without any `userinfo@` in its authority part (before the first `/`, `?` or `#`).
std::string_view drop_userinfo(std::string_view text) {
    const auto authority = text.substr(0, text.find_first_of("/?#"));
    const auto at = authority.rfind('@');
    return at == std::string_view::npos ? text : text.substr(at + 1);
}

/// Length of `scheme://` at the start of `target`, 0 when it does not start with one.
std::size_t scheme_prefix(std::string_view target) {
    std::size_t i = 0;
    while (i < target.size()) {
        const char c = target[i];
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        const bool other = (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
        if (!alpha && !(i > 0 && other)) break;
        ++i;
    }
    if (i == 0 || target.substr(i, 3) != "://") return 0;
    return i + 3;
}

/// The `path` field: null for CONNECT and unknown targets; for an absolute-form URL its path and
/// query (the authority, with any userinfo, is never logged), `/` when empty; anything else as
/// sent, minus userinfo. The fragment is always dropped; with `redact_query` the query becomes
/// `?...`.
void append_path(std::string& out, std::string_view method, std::string_view target,
                 bool redact_query) {
    if (method == "CONNECT" || target.empty()) {
        out += "null";
        return;
    }
    bool leading_slash = false;
    if (target.front() != '/') {
        if (const auto prefix = scheme_prefix(target); prefix != 0) {
            target.remove_prefix(prefix);
            target.remove_prefix(std::min(target.find_first_of("/?#"), target.size()));
            leading_slash = target.empty() || target.front() != '/';
        } else {
            target = drop_userinfo(target);
        }
    }
    target = target.substr(0, target.find('#'));
    std::string_view suffix;
    if (redact_query) {
        if (const auto q = target.find('?'); q != std::string_view::npos) {
            target = target.substr(0, q);
            suffix = "?...";
        }
    }
    out += '"';
    if (leading_slash) out += '/';
    if (append_escaped(out, target)) out += suffix;
    out += '"';
}

void append_record(std::string& out, const access_record& r, bool redact_query) {
    out += "{\"time\":\"";
    append_time(out, r.time);
    out += "\",\"client\":";
    append_string(out, r.client);
    out += ",\"method\":";
    append_string(out, r.method);
    out += ",\"host\":";
    append_string(out, drop_userinfo(r.host));
    out += ",\"path\":";
    append_path(out, r.method, r.target, redact_query);
    out += ",\"status\":";
    append_uint(out, r.status);
    out += ",\"bytes_in\":";
    append_uint(out, r.bytes_in);
    out += ",\"bytes_out\":";
    append_uint(out, r.bytes_out);
    out += ",\"duration_ms\":";
    append_duration(out, r.duration);
    out += ",\"upstream\":";
    append_string_or_null(out, r.upstream);
    out += ",\"scheme\":";
    append_string_or_null(out, r.scheme);
    out += ",\"challenges\":";
    append_uint(out, r.challenges);
    if (!r.error.empty()) {
        out += ",\"error\":";
        append_string(out, r.error);
    }
    out += '}';
}

// ---- the file -----------------------------------------------------------------------------

/// Lines are queued with their newline; the sink writes them as they are.
class line_formatter final : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        dest.append(msg.payload.data(), msg.payload.data() + msg.payload.size());
    }
    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<line_formatter>();
    }
};

using sink_type = spdlog::sinks::rotating_file_sink_st;

/// The sink for `settings.file`; throws spdlog_ex when it cannot be opened. Files it creates
/// (the first one, and the new one after each rotation) are made owner read/write only; an
/// existing file keeps the permissions it has.
std::unique_ptr<sink_type> make_sink(const config::access_log_settings& settings) {
    auto created = std::make_shared<bool>(false);
    spdlog::file_event_handlers handlers;
    handlers.before_open = [created](const spdlog::filename_t& name) {
        std::error_code ec;
        *created = !fs::exists(fs::path(name), ec);
    };
    handlers.after_open = [created](const spdlog::filename_t& name, std::FILE*) {
        if (!*created) return;
        // Portable: a no-op where the platform has no such bits (Windows: ACLs of the folder).
        std::error_code ec;
        fs::permissions(fs::path(name), fs::perms::owner_read | fs::perms::owner_write,
                        fs::perm_options::replace, ec);
    };
    const auto max_size = static_cast<std::size_t>(
        std::min<std::uint64_t>(settings.max_bytes, std::numeric_limits<std::size_t>::max()));
    // native(): wide on Windows (with SPDLOG_WCHAR_FILENAMES), so any path works.
    auto sink = std::make_unique<sink_type>(settings.file.native(), max_size, settings.max_files,
                                            false, handlers);
    sink->set_formatter(std::make_unique<line_formatter>());
    return sink;
}

/// `path` in UTF-8 (path::string() can throw on Windows).
std::string display_name(const fs::path& path) {
    const auto u8 = path.u8string();
    return std::string(u8.begin(), u8.end());
}

/// spdlog's open error is "Failed opening file <name> for writing: <reason>"; keep the reason.
std::string open_reason(const std::exception& e) {
    std::string_view what = e.what();
    if (what.starts_with("Failed opening file ")) {
        if (const auto colon = what.rfind(": "); colon != std::string_view::npos)
            return std::string(what.substr(colon + 2));
    }
    return std::string(what);
}

class file_access_log final : public access_log {
public:
    file_access_log(config::access_log_settings settings, std::unique_ptr<sink_type> sink)
        : settings_(std::move(settings)), name_(display_name(settings_.file)),
          sink_(std::move(sink)) {
        pending_.reserve(2 * flush_threshold);
        writing_.reserve(2 * flush_threshold);
        flusher_ = std::thread([this] { run_flusher(); });
    }

    ~file_access_log() override {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        wake_.notify_one();
        flusher_.join(); // its last round writes what is queued
        std::lock_guard io(io_mutex_);
        report_errors(true);
    }

    void write(const access_record& record) override {
        try {
            thread_local std::string line;
            line.clear();
            append_record(line, record, settings_.redact_query);
            line += '\n';
            bool notify = false;
            {
                std::lock_guard lock(mutex_);
                if (pending_.size() + line.size() > max_pending) {
                    ++dropped_;
                    return;
                }
                pending_ += line;
                if (pending_.size() >= flush_threshold && !notified_) {
                    notified_ = true;
                    notify = true;
                }
            }
            if (notify) wake_.notify_one();
        } catch (const std::exception&) {
            // Out of memory: the line is lost, and counted.
            std::lock_guard lock(mutex_);
            ++dropped_;
        }
    }

    void flush() override { drain(); }

    const config::access_log_settings& settings() const override { return settings_; }

private:
    void run_flusher() {
        std::unique_lock lock(mutex_);
        while (true) {
            wake_.wait_for(lock, flush_interval,
                           [this] { return stop_ || pending_.size() >= flush_threshold; });
            const bool stopping = stop_;
            lock.unlock();
            drain();
            if (stopping) return;
            lock.lock();
        }
    }

    /// Writes everything queued to the file and flushes it. Never throws.
    void drain() noexcept {
        try {
            std::lock_guard io(io_mutex_);
            std::uint64_t dropped = 0;
            {
                std::lock_guard lock(mutex_);
                writing_.swap(pending_);
                dropped = std::exchange(dropped_, 0);
                notified_ = false;
            }
            if (dropped != 0) note_error(dropped, "lines dropped: the file is not keeping up");
            reopen_if_removed();
            write_lines();
            writing_.clear();
            if (writing_.capacity() > keep_capacity) {
                std::string().swap(writing_);
                writing_.reserve(2 * flush_threshold);
            }
            report_errors(false);
        } catch (const std::exception&) {
            // Out of memory while reporting: nothing better to do than to go on.
        }
    }

    /// Hands `writing_` to the sink line by line, so that rotation never splits a line.
    void write_lines() {
        spdlog::details::log_msg msg({}, spdlog::source_loc{}, {}, spdlog::level::info, {});
        std::size_t start = 0;
        while (start < writing_.size()) {
            const auto newline = writing_.find('\n', start);
            const auto end = newline == std::string::npos ? writing_.size() : newline + 1;
            msg.payload = spdlog::string_view_t(writing_.data() + start, end - start);
            try {
                sink_->log(msg);
            } catch (const std::exception& e) {
                note_error(1, e.what());
            }
            start = end;
        }
        try {
            sink_->flush();
        } catch (const std::exception& e) {
            note_error(1, e.what());
        }
    }

    /// The file was deleted or moved away (by hand, or by logrotate without copytruncate):
    /// start a new one instead of writing into the void.
    void reopen_if_removed() {
        std::error_code ec;
        if (fs::exists(settings_.file, ec) || ec) return;
        try {
            sink_ = make_sink(settings_);
        } catch (const std::exception& e) {
            note_error(1, e.what()); // keep the old file and try again next time
        }
    }

    // The error counters belong to whoever holds io_mutex_.
    void note_error(std::uint64_t count, std::string_view what) {
        errors_ += count;
        last_error_ = what;
    }

    void report_errors(bool final_report) {
        if (errors_ == 0) return;
        const auto now = std::chrono::steady_clock::now();
        if (!final_report && last_report_ && now - *last_report_ < report_interval) return;
        spdlog::warn("access log {}: {} write error(s){}, lines are lost; last: {}", name_, errors_,
                     last_report_ ? " since the last report" : "", last_error_);
        errors_ = 0;
        last_report_ = now;
    }

    const config::access_log_settings settings_;
    const std::string name_; // settings_.file for messages

    std::mutex mutex_; // guards the members up to wake_
    std::string pending_;
    std::uint64_t dropped_ = 0;
    bool notified_ = false;
    bool stop_ = false;
    std::condition_variable wake_;

    std::mutex io_mutex_; // guards the members up to last_report_
    std::unique_ptr<sink_type> sink_;
    std::string writing_;
    std::uint64_t errors_ = 0;
    std::string last_error_;
    std::optional<std::chrono::steady_clock::time_point> last_report_;

    std::thread flusher_;
};

} // namespace

std::shared_ptr<access_log> access_log::open(const config::access_log_settings& settings,
                                             std::string& error) {
    const auto name = display_name(settings.file);
    // Like the main log (service/logging.cpp): a missing folder is created.
    std::error_code ec;
    if (const auto folder = settings.file.parent_path(); !folder.empty())
        fs::create_directories(folder, ec);
    if (ec) {
        error = "cannot create the folder of access log " + name + ": " + ec.message();
        return nullptr;
    }
    try {
        return std::make_shared<file_access_log>(settings, make_sink(settings));
    } catch (const spdlog::spdlog_ex& e) {
        error = "cannot open access log " + name + ": " + open_reason(e);
    } catch (const std::exception& e) {
        error = "cannot start access log " + name + ": " + e.what();
    }
    return nullptr;
}

std::string format_access_record(const access_record& record, bool redact_query) {
    std::string line;
    append_record(line, record, redact_query);
    return line;
}

} // namespace authshim::proxycore
