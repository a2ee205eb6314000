#include "service/logging.hpp"

#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <mutex>

namespace authshim::service {
namespace {

spdlog::level::level_enum to_spdlog(config::log_level level) {
    switch (level) {
    case config::log_level::trace:
        return spdlog::level::trace;
    case config::log_level::debug:
        return spdlog::level::debug;
    case config::log_level::info:
        return spdlog::level::info;
    case config::log_level::warn:
        return spdlog::level::warn;
    case config::log_level::error:
        return spdlog::level::err;
    case config::log_level::off:
        return spdlog::level::off;
    }
    return spdlog::level::info;
}

} // namespace

std::optional<std::string> setup_logging(const config::logging& log,
                                         std::vector<std::shared_ptr<spdlog::sinks::sink>> extra) {
    std::shared_ptr<spdlog::sinks::sink> sink;
    if (log.file) {
        try {
            std::error_code ec;
            std::filesystem::create_directories(log.file->parent_path(), ec);
            // native(): wide on Windows (with SPDLOG_WCHAR_FILENAMES), so any path works.
            sink = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
                log.file->native(), log_rotate_bytes, log_rotate_files);
        } catch (const spdlog::spdlog_ex& e) {
            return "cannot open log file " + log.file->string() + ": " + e.what();
        }
    } else {
        sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    }
    sink->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
    sink->set_level(to_spdlog(log.level));
    // The platform's sinks (Event Log) pick their own lines, events at info and above among them,
    // whatever log.level says; below info nothing is formatted that no sink wants.
    auto logger_level = to_spdlog(log.level);
    for (const auto& e : extra) {
        e->set_pattern("%v"); // they add their own time and level
        logger_level = std::min(logger_level, spdlog::level::info);
    }
    extra.insert(extra.begin(), std::move(sink));

    // One logger for the life of the process, whose sinks and level change in place: threads
    // log through spdlog's default logger without a lock, so replacing that logger while they
    // do (set_default_logger) would free it under them. dist_sink_mt swaps its sinks under its
    // own mutex; the level is atomic.
    static std::mutex setup_mutex;
    static std::shared_ptr<spdlog::sinks::dist_sink_mt> sinks;
    static std::shared_ptr<spdlog::logger> logger;
    std::lock_guard lock(setup_mutex);
    if (!logger) {
        sinks = std::make_shared<spdlog::sinks::dist_sink_mt>();
        logger = std::make_shared<spdlog::logger>("authshim", sinks);
        logger->flush_on(spdlog::level::trace); // every line reaches the file at once
    }
    sinks->set_sinks(std::move(extra));
    logger->set_level(logger_level);
    // Only where nothing else logs yet (start-up) or another logger was put in (tests).
    if (spdlog::default_logger_raw() != logger.get()) spdlog::set_default_logger(logger);
    return std::nullopt;
}

} // namespace authshim::service
