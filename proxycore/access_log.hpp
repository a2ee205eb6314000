#pragma once
/// The JSON-lines access log (`log.access`): one line per client request with who asked for
/// what, the outcome, sizes, time taken, the upstream and auth scheme used and the 407s answered
/// on the way. Never a credential: Proxy-Authorization values are not passed in, userinfo in a
/// target or host is dropped, and the query string is redacted unless `query: "keep"`.
///
/// Line format (UTF-8, one JSON object per line, fields in this order):
///   {"time":"2026-11-25T06:30:00.123Z","client":"127.0.0.1:50312","method":"GET",
///    "host":"example.com","path":"/a?...","status":200,"bytes_in":120,"bytes_out":5120,
///    "duration_ms":1.234,"upstream":"corp","scheme":"digest","challenges":1}
/// `time` is UTC with milliseconds; `duration_ms` has microsecond precision; `upstream` and
/// `scheme` are null when empty; `error` is present only when non-empty. `path` is null for
/// CONNECT (the authority is in `host`) and for an unknown target, the path and query of an
/// absolute-form URL (`/` when empty), the target itself otherwise; a fragment is always
/// dropped. Strings are escaped per RFC 8259 (control characters as \u00XX), invalid UTF-8 becomes
/// \ufffd, and each string field keeps at most 8 KiB of escaped text, then `...`.
///
/// Lines are buffered in memory and written by the log's own flusher thread when 64 KiB
/// accumulate and at least once a second, on flush() and on destruction, so a graceful stop
/// loses nothing. If the file cannot keep up, at most 16 MiB is queued; beyond that lines are
/// dropped (and counted) rather than blocking the proxy.
/// The file is rotated by size through spdlog's rotating file sink: `access.jsonl` becomes
/// `access.1.jsonl`, `access.1.jsonl` becomes `access.2.jsonl` ... up to `max_files` (the index
/// goes before the extension; `access` without one becomes `access.1`), so at most max_files + 1
/// files exist. A line is never split across files, and a file exceeds max_bytes only when a
/// single line does. Files the log creates are owner read/write only (where the platform has such
/// permissions); an existing file keeps its own. A missing folder is created (as for the main
/// log). If the file is deleted or moved away while open, a new one is started within a second.
/// Write errors are counted and reported in the main log (at most once a minute), never thrown.
/// Ownership: one instance per configured file, shared (shared_ptr) by the sessions using it.
/// Thread safety: write() and flush() may be called from any thread.

#include "config/config.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace authshim::proxycore {

/// One request, as logged. Views must stay valid during write() only.
struct access_record {
    std::chrono::system_clock::time_point time; ///< when the request head was received
    std::string_view client;                    ///< `address:port` of the client
    std::string_view method;                    ///< `-` when the head was unreadable
    std::string_view host;                      ///< the target's `host[:port]`, `-` when unknown
    std::string_view target;     ///< the request target as sent (absolute-form URL, authority
                                 ///< for CONNECT, origin-form path); empty when unknown
    unsigned status = 0;         ///< status sent to the client; 0: none; 499: the client went away
    std::uint64_t bytes_in = 0;  ///< body and tunnel bytes received from the client
    std::uint64_t bytes_out = 0; ///< body and tunnel bytes sent to the client
    std::chrono::microseconds duration{0};
    std::string_view upstream; ///< upstream name, empty when the request was not routed there
    std::string_view scheme;   ///< `basic`, `digest`, or empty (none sent)
    unsigned challenges = 0;   ///< 407s received (and answered, or not) for this request
    /// Why it failed, when it did (an error answer's text, or why the response broke off after
    /// its head was sent); never secret; empty otherwise.
    std::string_view error;
};

class access_log {
public:
    /// Opens (appends to) `settings.file`, creating it with owner-only permissions where the
    /// platform has them. Returns null and sets `error` (a sentence naming the file) when it
    /// cannot be opened.
    static std::shared_ptr<access_log> open(const config::access_log_settings& settings,
                                            std::string& error);
    virtual ~access_log() = default;

    /// Formats one line and queues it. Never blocks on file I/O, never throws.
    virtual void write(const access_record& record) = 0;
    /// Writes everything queued so far to the file (blocks until done).
    virtual void flush() = 0;
    virtual const config::access_log_settings& settings() const = 0;
};

/// The JSON text of one record (without the newline), as write() formats it. Exposed for tests.
std::string format_access_record(const access_record& record, bool redact_query);

} // namespace authshim::proxycore
