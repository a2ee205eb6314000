// Reading the file, parsing JSON (comments allowed, duplicate keys detected, syntax errors placed
// at line:column), then handing the document to the validator.
#include "config/loader.hpp"

#include "config/detail_validate.hpp"

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <set>
#include <system_error>
#include <utility>

namespace authshim::config {

std::string diagnostic::to_string() const {
    return where + ": " + what;
}

namespace {

using detail::json;

/// Line and column (both from 1; the column counts UTF-8 characters) of byte `offset`.
std::pair<std::size_t, std::size_t> line_and_column(std::string_view text, std::size_t offset) {
    offset = std::min(offset, text.size());
    std::size_t line = 1;
    std::size_t column = 1;
    for (std::size_t i = 0; i < offset; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '\n') {
            ++line;
            column = 1;
        } else if ((c & 0xc0) != 0x80 && !(i < 3 && text.starts_with("\xEF\xBB\xBF"))) {
            ++column; // continuation bytes and a leading byte-order mark take no column
        }
    }
    return {line, column};
}

/// nlohmann's message without its "[json.exception...] parse error at line L, column C: " head,
/// since the location is given separately.
std::string syntax_message(std::string_view text, std::size_t offset, const std::string& raw) {
    std::string message = raw;
    if (auto column = message.find(", column "); column != std::string::npos) {
        if (auto colon = message.find(": ", column); colon != std::string::npos)
            message = message.substr(colon + 2);
    } else if (auto bracket = message.find("] "); bracket != std::string::npos) {
        message = message.substr(bracket + 2);
    }

    // nlohmann quotes the token it was reading; that may be part of a secret (a password with
    // a bad escape), and the location already says where to look.
    if (auto last = message.find("; last read: '"); last != std::string::npos) {
        const auto end = message.find("'; expected", last);
        message.erase(last, end == std::string::npos ? std::string::npos : end + 1 - last);
    }

    // The most common hand-editing mistake gets a plain explanation.
    const bool closes = message.find("unexpected '}'") != std::string::npos ||
                        message.find("unexpected ']'") != std::string::npos;
    if (closes && offset > 0 && offset <= text.size()) {
        std::size_t i = offset; // the offending character; look before it
        while (i > 0 && (text[i - 1] == ' ' || text[i - 1] == '\t' || text[i - 1] == '\n' ||
                         text[i - 1] == '\r'))
            --i;
        if (i > 0 && text[i - 1] == ',') message += " (JSON does not allow a trailing comma)";
    }
    return message;
}

/// Tracks the JSON pointer of the value being parsed so that duplicate keys, which nlohmann
/// would silently resolve by keeping the last, can be reported where they are.
class duplicate_finder {
public:
    explicit duplicate_finder(detail::context& ctx) : ctx_(ctx) {}

    bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
        switch (event) {
        case json::parse_event_t::object_start:
            frames_.push_back({true, {}, {}, 0});
            break;
        case json::parse_event_t::array_start:
            frames_.push_back({false, {}, {}, 0});
            break;
        case json::parse_event_t::key: {
            auto& frame = frames_.back();
            frame.key = parsed.get<std::string>();
            if (!frame.keys.insert(frame.key).second)
                ctx_.error(detail::child(parent_pointer(), frame.key),
                           "duplicate key " + detail::describe(parsed) +
                               " (only the last one would count; remove the others)");
            break;
        }
        case json::parse_event_t::object_end:
        case json::parse_event_t::array_end:
            frames_.pop_back();
            element_done();
            break;
        case json::parse_event_t::value:
            element_done();
            break;
        }
        return true;
    }

private:
    struct frame_state {
        bool object;
        std::set<std::string> keys;
        std::string key;   ///< current key (objects)
        std::size_t index; ///< current element (arrays)
    };

    /// The pointer of the innermost container.
    std::string parent_pointer() const {
        std::string pointer;
        for (std::size_t i = 0; i + 1 < frames_.size(); ++i)
            pointer = frames_[i].object ? detail::child(pointer, frames_[i].key)
                                        : detail::child(pointer, frames_[i].index);
        return pointer;
    }

    void element_done() {
        if (!frames_.empty() && !frames_.back().object) ++frames_.back().index;
    }

    detail::context& ctx_;
    std::vector<frame_state> frames_;
};

bool only_whitespace(std::string_view text) {
    return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

/// The parsed document may hold plain passwords: wipe every string in it before it is freed.
/// (Best effort: the parser's own scratch buffers are not reachable.)
void wipe_strings(json& value) {
    if (value.is_string()) {
        wipe(value.get_ref<std::string&>());
    } else if (value.is_structured()) {
        for (auto& item : value)
            wipe_strings(item);
    }
}

} // namespace

load_result load_string(std::string_view text, const std::string& origin,
                        const std::filesystem::path& base_dir) {
    detail::context ctx{origin.empty() ? std::string("(config)") : origin, base_dir, {}, {}};
    load_result result;

    json document;
    bool parsed = false;
    if (only_whitespace(text)) {
        ctx.errors.push_back({ctx.origin + ":1:1",
                              "the configuration is empty; expected a JSON object "
                              "such as {\"upstreams\": [{\"address\": "
                              "\"proxy.corp.example:8080\"}]}"});
    } else {
        duplicate_finder finder(ctx);
        try {
            document = json::parse(text.begin(), text.end(), std::ref(finder),
                                   /*allow_exceptions=*/true, /*ignore_comments=*/true);
            parsed = true;
        } catch (const json::parse_error& e) {
            const std::size_t offset = e.byte > 0 ? e.byte - 1 : 0;
            const auto [line, column] = line_and_column(text, offset);
            ctx.errors.push_back(
                {ctx.origin + ':' + std::to_string(line) + ':' + std::to_string(column),
                 syntax_message(text, offset, e.what())});
        } catch (const json::out_of_range& e) {
            // A number too large for a double (`1e400`): nlohmann throws out_of_range 406, not a
            // parse_error, and without a position. Its message quotes the number only.
            std::string message = e.what();
            if (auto bracket = message.find("] "); bracket != std::string::npos)
                message.erase(0, bracket + 2);
            ctx.errors.push_back({ctx.origin, message + " (a JSON number must fit a double)"});
        }
    }

    config cfg;
    if (parsed) detail::validate_document(ctx, document, cfg);
    wipe_strings(document);
    result.errors = std::move(ctx.errors);
    result.warnings = std::move(ctx.warnings);
    if (result.errors.empty()) result.value = std::move(cfg);
    return result;
}

load_result load_file(const std::filesystem::path& file) {
    std::error_code ec;
    std::filesystem::path absolute = std::filesystem::absolute(file, ec);
    if (ec) absolute = file;
    absolute = absolute.lexically_normal();
    const std::string origin = detail::utf8_string(absolute);

    load_result failure;
    auto fail = [&](std::string what) {
        failure.errors.push_back({origin, std::move(what)});
        return failure;
    };

    const auto status = std::filesystem::status(absolute, ec);
    if (ec || !std::filesystem::exists(status)) {
        const std::error_code reason =
            ec ? ec : std::make_error_code(std::errc::no_such_file_or_directory);
        return fail("cannot read the configuration file: " + reason.message());
    }
    if (std::filesystem::is_directory(status))
        return fail("cannot read the configuration file: it is a directory, expected a JSON file");
    if (!std::filesystem::is_regular_file(status))
        return fail("cannot read the configuration file: it is not a regular file");

    // A configuration file is a few kilobytes; refuse anything absurd before reading it whole.
    constexpr std::uintmax_t max_size = 16 * 1024 * 1024;
    if (const auto size = std::filesystem::file_size(absolute, ec); !ec && size > max_size)
        return fail("cannot read the configuration file: it is larger than 16 MiB");

    errno = 0;
    std::ifstream stream(absolute, std::ios::binary);
    if (!stream) {
        // The standard library opens files with fopen/_wfopen, which report the cause in errno.
        const int error = errno != 0 ? errno : EACCES;
        return fail("cannot read the configuration file: " +
                    std::generic_category().message(error));
    }
    // The text may hold plain passwords: reserved so that growing it leaves no copies in freed
    // memory, and wiped once loaded.
    std::string text;
    if (const auto size = std::filesystem::file_size(absolute, ec); !ec)
        text.reserve(static_cast<std::size_t>(size) + 1);
    char buffer[8192];
    bool too_large = false;
    while (stream.read(buffer, sizeof buffer) || stream.gcount() > 0) {
        text.append(buffer, static_cast<std::size_t>(stream.gcount()));
        if (text.size() > max_size) {
            too_large = true;
            break;
        }
    }
    wipe(buffer, sizeof buffer);
    if (too_large || stream.bad()) {
        wipe(text);
        return fail(too_large ? "cannot read the configuration file: it is larger than 16 MiB"
                              : "cannot read the configuration file: a read error occurred");
    }

    load_result result = load_string(text, origin, absolute.parent_path());
    wipe(text);
    if (result.value) result.value->source = absolute;
    return result;
}

} // namespace authshim::config
