#include "proxycore/access_log.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using authshim::config::access_log_settings;
using authshim::proxycore::access_log;
using authshim::proxycore::access_record;
using authshim::proxycore::format_access_record;
using nlohmann::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

/// A fresh directory under the system temp dir, removed at the end of the test.
class temp_dir {
public:
    temp_dir() {
        static std::atomic<int> counter{0};
        const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
        path_ = fs::temp_directory_path() / ("authshim-access-log-test-" + std::to_string(stamp) +
                                             "-" + std::to_string(++counter));
        fs::create_directories(path_);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

access_record typical() {
    using namespace std::chrono;
    access_record r;
    r.time = sys_days{year{2026} / 11 / 25} + 6h + 30min + 123ms + 456us;
    r.client = "127.0.0.1:50312";
    r.method = "GET";
    r.host = "example.com";
    r.target = "http://example.com/a/b?token=secret";
    r.status = 200;
    r.bytes_in = 120;
    r.bytes_out = 5120;
    r.duration = 1234us;
    r.upstream = "corp";
    r.scheme = "digest";
    r.challenges = 1;
    return r;
}

access_log_settings settings_for(const fs::path& file, std::uint64_t max_bytes = 10 << 20,
                                 unsigned max_files = 5) {
    access_log_settings s;
    s.file = file;
    s.max_bytes = max_bytes;
    s.max_files = max_files;
    return s;
}

std::shared_ptr<access_log> open_log(const access_log_settings& settings) {
    std::string error;
    auto log = access_log::open(settings, error);
    INFO(error);
    REQUIRE(log);
    return log;
}

std::string read_file(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

/// The lines of `file`; fails the test if the last one is incomplete or one is not JSON.
std::vector<json> read_lines(const fs::path& file) {
    const auto text = read_file(file);
    if (!text.empty()) REQUIRE(text.back() == '\n');
    std::vector<json> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        const auto end = text.find('\n', start);
        const auto line = text.substr(start, end - start);
        INFO(line);
        REQUIRE_NOTHROW(lines.push_back(json::parse(line)));
        start = end + 1;
    }
    return lines;
}

json parsed(const access_record& r, bool redact_query = true) {
    const auto line = format_access_record(r, redact_query);
    INFO(line);
    json j;
    REQUIRE_NOTHROW(j = json::parse(line));
    return j;
}

json path_of(std::string_view target, bool redact_query) {
    auto r = typical();
    r.target = target;
    return parsed(r, redact_query)["path"];
}

/// Whether this platform keeps POSIX permission bits (not Windows).
bool has_posix_permissions(const fs::path& dir) {
    const auto probe = dir / "probe";
    std::ofstream(probe) << "x";
    fs::permissions(probe, fs::perms::owner_read | fs::perms::owner_write,
                    fs::perm_options::replace);
    const bool kept = (fs::status(probe).permissions() & fs::perms::group_read) == fs::perms::none;
    fs::remove(probe);
    return kept;
}

constexpr auto group_or_others = fs::perms::group_all | fs::perms::others_all;

} // namespace

TEST_CASE("access log: the line of a typical GET", "[access_log]") {
    CHECK(format_access_record(typical(), true) ==
          R"({"time":"2026-11-25T06:30:00.123Z","client":"127.0.0.1:50312","method":"GET",)"
          R"("host":"example.com","path":"/a/b?...","status":200,"bytes_in":120,)"
          R"("bytes_out":5120,"duration_ms":1.234,"upstream":"corp","scheme":"digest",)"
          R"("challenges":1})");
}

TEST_CASE("access log: CONNECT logs the authority as host and no path", "[access_log]") {
    auto r = typical();
    r.method = "CONNECT";
    r.host = "example.com:443";
    r.target = "example.com:443";
    r.scheme = "basic";
    r.challenges = 0;
    r.duration = 2'500'000us;
    CHECK(format_access_record(r, true) ==
          R"({"time":"2026-11-25T06:30:00.123Z","client":"127.0.0.1:50312","method":"CONNECT",)"
          R"("host":"example.com:443","path":null,"status":200,"bytes_in":120,)"
          R"("bytes_out":5120,"duration_ms":2500.000,"upstream":"corp","scheme":"basic",)"
          R"("challenges":0})");
}

TEST_CASE("access log: status 0, unknown method, nulls and the error field", "[access_log]") {
    access_record r;
    r.time = std::chrono::sys_days{std::chrono::year{2027} / 1 / 2} + 999ms + 999us;
    r.client = "[::1]:41000";
    r.method = "-";
    r.host = "-";
    r.duration = 17us;
    r.error = "client header timeout";
    CHECK(format_access_record(r, true) ==
          R"({"time":"2027-01-02T00:00:00.999Z","client":"[::1]:41000","method":"-",)"
          R"("host":"-","path":null,"status":0,"bytes_in":0,"bytes_out":0,)"
          R"("duration_ms":0.017,"upstream":null,"scheme":null,"challenges":0,)"
          R"("error":"client header timeout"})");
    SECTION("no error field when there is no error") {
        r.error = "";
        CHECK(format_access_record(r, true).ends_with(R"("challenges":0})"));
    }
    SECTION("a negative duration is logged as 0") {
        r.duration = -5us;
        CHECK(parsed(r)["duration_ms"] == 0.0);
    }
}

TEST_CASE("access log: strings are escaped per RFC 8259", "[access_log]") {
    auto r = typical();
    r.error = "a\"b\\c\n\t\x01\x1f\x7f/";
    const auto line = format_access_record(r, true);
    CHECK(line.ends_with(R"("error":"a\"b\\c\u000a\u0009\u0001\u001f\u007f/"})"));
    CHECK(parsed(r)["error"] == "a\"b\\c\n\t\x01\x1f\x7f/");
}

TEST_CASE("access log: invalid UTF-8 becomes U+FFFD, valid UTF-8 is kept", "[access_log]") {
    auto r = typical();
    SECTION("valid") {
        r.target = "/caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80";
        CHECK(format_access_record(r, true).find(
                  "\"/caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80\"") != std::string::npos);
        CHECK(parsed(r)["path"] == "/caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80");
    }
    SECTION("invalid: one U+FFFD per maximal subpart, as Python and browsers decode") {
        // lone continuation, overlong C0 AF, surrogate ED A0 80, truncated E2 82, > U+10FFFF
        r.error = "x\x80y\xc0\xafz\xed\xa0\x80w\xe2\x82!\xf4\x90\x80\x80";
        CHECK(format_access_record(r, true).ends_with(
            R"("error":"x\ufffdy\ufffd\ufffdz\ufffd\ufffd\ufffdw\ufffd!)"
            R"(\ufffd\ufffd\ufffd\ufffd"})"));
        parsed(r);
    }
    SECTION("a sequence cut by the end of the string") {
        r.error = "ok\xf0\x9f\x98";
        CHECK(parsed(r)["error"] == "ok\xef\xbf\xbd");
    }
}

TEST_CASE("access log: arbitrary bytes in every field give valid JSON", "[access_log]") {
    std::mt19937 random(20261125);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<int> length(0, 40);
    const auto noise = [&](std::string prefix) {
        for (int n = length(random); n > 0; --n)
            prefix += static_cast<char>(byte(random));
        return prefix;
    };
    for (int i = 0; i < 2000; ++i) {
        std::string client = noise(""), method = noise(""), host = noise(""), upstream = noise(""),
                    scheme = noise(""), error = noise("");
        std::string target = noise(i % 3 == 0 ? "http://" : i % 3 == 1 ? "/" : "");
        auto r = typical();
        r.client = client;
        r.method = method;
        r.host = host;
        r.target = target;
        r.upstream = upstream;
        r.scheme = scheme;
        r.error = error;
        const auto j = parsed(r, i % 2 == 0);
        CHECK(j.size() == (error.empty() ? 12u : 13u));
    }
}

TEST_CASE("access log: query redaction", "[access_log]") {
    SECTION("redact (the default)") {
        CHECK(path_of("http://h/p?q=1&token=x#f", true) == "/p?...");
        CHECK(path_of("/p?token=x", true) == "/p?...");
        CHECK(path_of("/p", true) == "/p");
        CHECK(path_of("http://h:8080?q", true) == "/?...");
        CHECK(path_of("http://h", true) == "/");
        CHECK(path_of("http://h#f", true) == "/");
        CHECK(path_of("/p#f?x", true) == "/p");
        CHECK(path_of("*", true) == "*");
    }
    SECTION("keep") {
        CHECK(path_of("http://h/p?q=1&token=x#f", false) == "/p?q=1&token=x");
        CHECK(path_of("/p?token=x", false) == "/p?token=x");
        CHECK(path_of("HTTP://h/p", false) == "/p");
        CHECK(path_of("/p#fragment", false) == "/p");
    }
}

TEST_CASE("access log: userinfo is never logged", "[access_log]") {
    auto r = typical();
    SECTION("absolute-form target and host") {
        r.target = "http://user:pw@example.com/x?y";
        r.host = "user:pw@example.com";
        const auto j = parsed(r, false);
        CHECK(j["host"] == "example.com");
        CHECK(j["path"] == "/x?y");
    }
    SECTION("a target that is not a URL") {
        r.target = "user:pw@example.com/x";
        CHECK(parsed(r)["path"] == "example.com/x");
        r.target = "http:user:p@w@example.com";
        CHECK(parsed(r)["path"] == "example.com");
    }
    SECTION("CONNECT") {
        r.method = "CONNECT";
        r.target = "user:pw@example.com:443";
        r.host = "user:pw@example.com:443";
        CHECK(parsed(r)["host"] == "example.com:443");
    }
    const auto line = format_access_record(r, false);
    CHECK(line.find("pw") == std::string::npos);
    CHECK(line.find("user") == std::string::npos);
}

TEST_CASE("access log: string fields are cut at 8 KiB", "[access_log]") {
    auto r = typical();
    SECTION("plain text") {
        const std::string huge(100'000, 'a');
        r.client = r.method = r.host = r.upstream = r.scheme = r.error = huge;
        const auto target = "/" + huge + "?q";
        r.target = target;
        const auto line = format_access_record(r, true);
        CHECK(line.size() < 7 * (8192 + 5) + 300);
        const auto j = parsed(r);
        CHECK(j["error"] == std::string(8192, 'a') + "...");
        CHECK(j["path"] == "/" + std::string(8191, 'a') + "...");
    }
    SECTION("escapes are not cut in half") {
        const std::string controls(100'000, '\x01');
        r.error = controls;
        const auto error = parsed(r)["error"].get<std::string>();
        CHECK(error == std::string(8192 / 6, '\x01') + "...");
    }
    SECTION("UTF-8 sequences are not cut in half") {
        std::string euros;
        for (int i = 0; i < 5000; ++i)
            euros += "\xe2\x82\xac";
        r.error = euros;
        const auto error = parsed(r)["error"].get<std::string>();
        CHECK(error == euros.substr(0, 8192 / 3 * 3) + "...");
    }
    SECTION("a short value is not marked") {
        const std::string full(8192, 'b');
        r.error = full;
        CHECK(parsed(r)["error"] == std::string(8192, 'b'));
    }
}

TEST_CASE("access log: lines reach the file", "[access_log]") {
    temp_dir dir;
    const auto file = dir.path() / "logs" / "access.jsonl"; // the folder is created
    auto log = open_log(settings_for(file));
    CHECK(log->settings().file == file);
    REQUIRE(fs::exists(file));

    SECTION("on flush()") {
        log->write(typical());
        log->flush();
        const auto lines = read_lines(file);
        REQUIRE(lines.size() == 1);
        CHECK(lines[0] == json::parse(format_access_record(typical(), true)));
    }
    SECTION("within about a second without flush()") {
        log->write(typical());
        const auto start = std::chrono::steady_clock::now();
        while (fs::file_size(file) == 0 && std::chrono::steady_clock::now() - start < 5s)
            std::this_thread::sleep_for(20ms);
        const auto waited = std::chrono::steady_clock::now() - start;
        CHECK(read_lines(file).size() == 1);
        CHECK(waited < 2500ms);
    }
    SECTION("on destruction, every line") {
        constexpr int count = 20'000;
        auto r = typical();
        for (int i = 0; i < count; ++i) {
            r.bytes_in = static_cast<std::uint64_t>(i);
            log->write(r);
        }
        log.reset();
        const auto lines = read_lines(file);
        REQUIRE(lines.size() == count);
        for (int i = 0; i < count; ++i)
            REQUIRE(lines[static_cast<std::size_t>(i)]["bytes_in"] == i);
    }
    SECTION("appended to an existing file") {
        log->write(typical());
        log.reset();
        log = open_log(settings_for(file));
        log->write(typical());
        log.reset();
        CHECK(read_lines(file).size() == 2);
    }
    SECTION("in a new file when the file was removed") {
        log->write(typical());
        log->flush();
        std::error_code ec;
        if (!fs::remove(file, ec)) return; // Windows: an open file cannot be removed
        log->write(typical());
        log->flush();
        CHECK(read_lines(file).size() == 1);
    }
}

TEST_CASE("access log: files are created owner read/write only", "[access_log]") {
    temp_dir dir;
    if (!has_posix_permissions(dir.path())) return;
    const auto file = dir.path() / "access.jsonl";
    SECTION("a new file, and the new file after rotation") {
        auto log = open_log(settings_for(file, 1024, 2));
        CHECK((fs::status(file).permissions() & group_or_others) == fs::perms::none);
        for (int i = 0; i < 20; ++i)
            log->write(typical());
        log->flush();
        REQUIRE(fs::exists(dir.path() / "access.1.jsonl"));
        CHECK((fs::status(file).permissions() & group_or_others) == fs::perms::none);
    }
    SECTION("an existing file keeps its permissions") {
        std::ofstream(file) << "";
        fs::permissions(file, fs::perms::group_read, fs::perm_options::add);
        auto log = open_log(settings_for(file));
        CHECK((fs::status(file).permissions() & fs::perms::group_read) != fs::perms::none);
    }
}

TEST_CASE("access log: rotation keeps max_files files and whole lines", "[access_log]") {
    temp_dir dir;
    const auto file = dir.path() / "access.jsonl";
    constexpr std::uint64_t max_bytes = 4096;
    constexpr unsigned max_files = 3;
    constexpr int count = 1000;
    {
        auto log = open_log(settings_for(file, max_bytes, max_files));
        auto r = typical();
        for (int i = 0; i < count; ++i) {
            r.bytes_in = static_cast<std::uint64_t>(i);
            log->write(r);
            if (i % 100 == 0) log->flush(); // rotation across several drains, not only within one
        }
    }
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir.path()))
        files.push_back(entry.path());
    CHECK(files.size() == max_files + 1);
    // Oldest first: access.3.jsonl ... access.1.jsonl, access.jsonl.
    std::vector<json> lines;
    for (unsigned n = max_files; n > 0; --n) {
        const auto rotated = dir.path() / ("access." + std::to_string(n) + ".jsonl");
        REQUIRE(fs::exists(rotated));
        CHECK(fs::file_size(rotated) <= max_bytes);
        CHECK(fs::file_size(rotated) > max_bytes / 2);
        for (auto& line : read_lines(rotated))
            lines.push_back(std::move(line));
    }
    CHECK(fs::file_size(file) <= max_bytes);
    for (auto& line : read_lines(file))
        lines.push_back(std::move(line));
    // The newest lines, none missing, in order.
    REQUIRE(lines.size() > 30);
    const auto first = count - static_cast<int>(lines.size());
    for (std::size_t i = 0; i < lines.size(); ++i)
        REQUIRE(lines[i]["bytes_in"] == first + static_cast<int>(i));
}

TEST_CASE("access log: concurrent writers", "[access_log][threads]") {
    temp_dir dir;
    const auto file = dir.path() / "access.jsonl";
    constexpr int threads = 4;
    constexpr int per_thread = 5000;
    {
        auto log = open_log(settings_for(file));
        std::vector<std::thread> writers;
        for (int t = 0; t < threads; ++t) {
            writers.emplace_back([&log, t] {
                const auto client = "thread-" + std::to_string(t);
                auto r = typical();
                r.client = client;
                for (int i = 0; i < per_thread; ++i) {
                    r.bytes_in = static_cast<std::uint64_t>(i);
                    log->write(r);
                }
            });
        }
        for (auto& w : writers)
            w.join();
    }
    const auto lines = read_lines(file);
    REQUIRE(lines.size() == threads * per_thread);
    std::vector<int> next(threads, 0);
    for (const auto& line : lines) {
        const auto client = line["client"].get<std::string>();
        REQUIRE(client.starts_with("thread-"));
        const auto t = static_cast<std::size_t>(std::stoi(client.substr(7)));
        REQUIRE(line["bytes_in"] == next[t]);
        ++next[t];
    }
}

TEST_CASE("access log: open() failure names the file and the reason", "[access_log]") {
    temp_dir dir;
    const auto blocker = dir.path() / "not-a-folder";
    std::ofstream(blocker) << "x";
    const auto file = blocker / "access.jsonl";
    std::string error;
    CHECK(access_log::open(settings_for(file), error) == nullptr);
    INFO(error);
    CHECK(error.starts_with("cannot "));
    CHECK(error.find(file.string()) != std::string::npos);
    // The OS reason follows the name.
    const auto reason = error.substr(error.find(file.string()) + file.string().size());
    CHECK(reason.size() > 5);
}

TEST_CASE("access log: write errors are counted and reported, never thrown", "[access_log]") {
    const fs::path full = "/dev/full";
    std::error_code ec;
    if (!fs::is_character_file(full, ec)) return; // Linux only: every write to it fails with ENOSPC
    std::ostringstream captured;
    const auto previous = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(
        "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured)));
    {
        auto log = open_log(settings_for(full));
        for (int i = 0; i < 1000; ++i)
            log->write(typical());
        CHECK_NOTHROW(log->flush()); // reported at once
        for (int i = 0; i < 1000; ++i)
            log->write(typical());
        CHECK_NOTHROW(log->flush()); // counted: less than a minute since the last report
    }                                // the rest is reported on destruction
    spdlog::set_default_logger(previous);
    const auto text = captured.str();
    INFO(text);
    std::size_t reports = 0;
    for (auto at = text.find("access log /dev/full"); at != std::string::npos;
         at = text.find("access log /dev/full", at + 1))
        ++reports;
    CHECK(reports == 2);
    CHECK(text.find("write error") != std::string::npos);
}

TEST_CASE("access log: cost of write()", "[.bench]") {
    temp_dir dir;
    const auto file = dir.path() / "access.jsonl";
    constexpr int count = 200'000;
    auto r = typical();
    auto start = std::chrono::steady_clock::now();
    std::size_t bytes = 0;
    for (int i = 0; i < count; ++i) {
        r.bytes_in = static_cast<std::uint64_t>(i);
        bytes += format_access_record(r, true).size();
    }
    const auto format_ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
        count;
    auto log = open_log(settings_for(file, std::uint64_t{1} << 30));
    start = std::chrono::steady_clock::now();
    for (int i = 0; i < count; ++i) {
        r.bytes_in = static_cast<std::uint64_t>(i);
        log->write(r);
    }
    const auto write_ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
        count;
    start = std::chrono::steady_clock::now();
    log.reset();
    const auto close_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::cout << "format_access_record: " << format_ns << " ns/line (" << bytes / count
              << " bytes); write(): " << write_ns
              << " ns/line; destruction (final flush): " << close_ms << " ms; file "
              << fs::file_size(file) << " bytes\n";
    CHECK(fs::file_size(file) == bytes + count);
}
