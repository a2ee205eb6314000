// libFuzzer target: the configuration loader (config/loader.hpp) from JSON text, the effective
// configuration it displays, and the in-place credential edit (config/config_edit.hpp).
//
// Input: the text of a configuration file. load_string() only validates: it reads no secret
// (env, file, DPAPI and Credential Manager references are checked for shape, resolved later by
// resolve_credentials, which this target never calls) and opens no file. Relative paths are
// resolved against a private empty temporary directory (removed at exit), so even a loader that
// did touch them would stay inside it. (Not a chdir: libFuzzer's corpus, dictionary and crash
// paths are relative to the working directory.)
// Checked beyond "no crash, no leak, no UB":
// - a value exactly when there are no errors; every diagnostic placed in the origin, non-empty;
// - no diagnostic quotes a `plain` secret (password or admin token) of the input;
// - the displayed configuration loads again (unless it holds a DPAPI blob, which display masks
//   on purpose) and displays the same: display is a fixed point;
// - set_dpapi_credential on a text that loaded succeeds, and its result loads with the new
//   credential in it; on any text, its result (when it gives one) is JSON that parses.
#include "config/config_edit.hpp"
#include "config/loader.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <unistd.h>

namespace cfg = authshim::config;
using json = nlohmann::json;

namespace {

std::filesystem::path base_dir;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_config: invariant broken: %s\n", what);
    std::abort();
}

void check(bool condition, const char* what) {
    if (!condition) fail(what);
}

void check_diagnostics(const cfg::load_result& r, const std::string& origin) {
    check(r.value.has_value() == r.errors.empty(), "value and errors disagree");
    for (const auto* list : {&r.errors, &r.warnings}) {
        for (const auto& d : *list) {
            check(d.where.starts_with(origin), "diagnostic not placed in the origin");
            check(!d.what.empty(), "empty diagnostic");
        }
    }
}

bool has_dpapi(const cfg::config& c) {
    for (const auto& [name, credential] : c.credentials) {
        if (std::holds_alternative<cfg::dpapi_secret>(credential.password_source)) return true;
    }
    return c.admin.token_source && std::holds_alternative<cfg::dpapi_secret>(*c.admin.token_source);
}

/// Every string in the document (keys, values, and the JSON pointers diagnostics place things
/// at), one per line, and separately the `plain` secrets.
void collect(const json& value, const std::string& pointer, std::vector<std::string>& plain,
             std::string& others) {
    others += pointer + ": \n";
    if (value.is_object()) {
        for (const auto& [key, item] : value.items()) {
            others += key;
            others += '\n';
            if (key == "plain" && item.is_string()) {
                plain.push_back(item.get<std::string>());
            } else {
                collect(item, pointer + "/" + key, plain, others);
            }
        }
    } else if (value.is_array()) {
        std::size_t index = 0;
        for (const auto& item : value)
            collect(item, pointer + "/" + std::to_string(index++), plain, others);
    } else if (value.is_string()) {
        others += value.get<std::string>();
        others += '\n';
    } else {
        others += value.dump();
        others += '\n';
    }
}

/// How often `secret` occurs in the diagnostics' places and texts (each counted apart: a secret
/// spelling a pointer plus ": " must not match the joined text).
std::size_t occurrences(const cfg::load_result& r, const std::string& secret) {
    std::size_t n = 0;
    for (const auto* list : {&r.errors, &r.warnings}) {
        for (const auto& d : *list) {
            for (const std::string* text : {&d.where, &d.what}) {
                for (auto at = text->find(secret); at != std::string::npos;
                     at = text->find(secret, at + 1))
                    ++n;
            }
        }
    }
    return n;
}

/// `text` with every JSON string literal spelling `secret` exactly as `json::dump` writes it
/// replaced by one spelling `replacement`; nullopt when the text spells it some other way
/// (other escapes).
std::optional<std::string> replace_literal(std::string_view text, const std::string& secret,
                                           const std::string& replacement) {
    const std::string from = json(secret).dump();
    const std::string to = json(replacement).dump();
    std::string out;
    bool found = false;
    std::size_t pos = 0;
    for (auto at = text.find(from); at != std::string_view::npos; at = text.find(from, pos)) {
        out.append(text.substr(pos, at - pos));
        out += to;
        pos = at + from.size();
        found = true;
    }
    if (!found) return std::nullopt;
    out.append(text.substr(pos));
    return out;
}

/// Replaces every `plain` value equal to `secret` in `value`; returns how many it replaced.
int replace_plain(json& value, const std::string& secret, const std::string& replacement) {
    int replaced = 0;
    if (value.is_object()) {
        for (auto& [key, item] : value.items()) {
            if (key == "plain" && item.is_string() &&
                item.get_ref<const std::string&>() == secret) {
                item = replacement;
                ++replaced;
            } else {
                replaced += replace_plain(item, secret, replacement);
            }
        }
    } else if (value.is_array()) {
        for (auto& item : value)
            replaced += replace_plain(item, secret, replacement);
    }
    return replaced;
}

/// A plain secret must not appear in a diagnostic. It may only seem to when it is short, when
/// something else that may be quoted spells it (a key, a pointer, another value), or when the
/// loader's own words do (the fuzzer learns them from the comparisons the loader makes, e.g. a
/// secret `s, lockout, a` out of the list of known keys). The last is told apart by loading the
/// same text with the secret changed to another of the same length: a diagnostic that quotes the
/// secret loses those occurrences, the loader's own words keep them. The change is made in the
/// text (every literal spelling the secret as json::dump does); when some copy is spelled with
/// other escapes, the document re-serialised with and without the secret is compared instead
/// (what only the text shows, comments and duplicate keys, is not seen then).
void check_no_secret(std::string_view text, const cfg::load_result& r) {
    const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false,
                                 /*ignore_comments=*/true);
    if (doc.is_discarded()) return;
    std::vector<std::string> plain;
    std::string others;
    collect(doc, "", plain, others);
    for (const auto& secret : plain) {
        if (secret.size() < 6 || others.find(secret) != std::string::npos) continue;
        if (secret.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ") ==
            std::string::npos)
            continue; // words: the loader's own text may contain them
        const std::size_t seen = occurrences(r, secret);
        if (seen == 0) continue;
        // `secret` has a byte other than a letter or space, so it is not all 'x'.
        const std::string other(secret.size(), 'x');
        bool quoted = false;
        const auto changed = replace_literal(text, secret, other);
        json left = changed ? json::parse(*changed, nullptr, false, true) : json();
        if (changed && !left.is_discarded() && replace_plain(left, secret, other) == 0) {
            // Every copy of the secret was replaced in the text itself.
            const auto again = cfg::load_string(*changed, "fuzz.json", base_dir);
            quoted = occurrences(again, secret) < seen;
        } else {
            json without = doc;
            replace_plain(without, secret, other);
            const auto before =
                occurrences(cfg::load_string(doc.dump(), "fuzz.json", base_dir), secret);
            const auto after =
                occurrences(cfg::load_string(without.dump(), "fuzz.json", base_dir), secret);
            quoted = after < before;
        }
        if (!quoted) continue; // the loader's own words
        for (const auto* list : {&r.errors, &r.warnings}) {
            for (const auto& d : *list)
                std::fprintf(stderr, "%s\n", d.to_string().c_str());
        }
        fail("a diagnostic quotes a plain secret");
    }
}

void check_display(const cfg::config& c) {
    if (has_dpapi(c)) return;
    const std::string display = cfg::to_display_json(c);
    const auto again = cfg::load_string(display, "display.json", base_dir);
    check_diagnostics(again, "display.json");
    if (!again.value) {
        for (const auto& e : again.errors)
            std::fprintf(stderr, "%s\n", e.to_string().c_str());
        std::fprintf(stderr, "display:\n%s\n", display.c_str());
        fail("the displayed configuration does not load");
    }
    if (cfg::to_display_json(*again.value) != display) {
        std::fprintf(stderr, "display:\n%s\nagain:\n%s\n", display.c_str(),
                     cfg::to_display_json(*again.value).c_str());
        fail("display is not a fixed point");
    }
}

void check_edit(std::string_view text, bool loaded) {
    const auto edited = cfg::set_dpapi_credential(text, "fuzz-cred", "fuzz-user", "AAAA");
    if (!edited.text) {
        check(!edited.error.empty(), "edit failed without a reason");
        check(!loaded, "the edit refused a configuration that loads");
        return;
    }
    check(json::accept(*edited.text, /*ignore_comments=*/true), "the edit produced bad JSON");
    if (!loaded) return;
    const auto r = cfg::load_string(*edited.text, "edited.json", base_dir);
    if (!r.value) {
        for (const auto& e : r.errors)
            std::fprintf(stderr, "%s\n", e.to_string().c_str());
        fail("the edited configuration does not load");
    }
    const auto it = r.value->credentials.find("fuzz-cred");
    check(it != r.value->credentials.end() && it->second.username == "fuzz-user",
          "the edited credential is missing");
    const auto* blob = std::get_if<cfg::dpapi_secret>(&it->second.password_source);
    check(blob && blob->blob == std::vector<std::uint8_t>{0, 0, 0}, "the edited blob is wrong");
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // A private, empty directory: relative paths in fuzzed input resolve into it.
    char tmpl[] = "/tmp/authshim-fuzz-config.XXXXXX";
    const char* dir = ::mkdtemp(tmpl);
    if (dir == nullptr) {
        std::perror("fuzz_config: temporary directory");
        std::abort();
    }
    base_dir = dir;
    std::atexit([] {
        std::error_code ec;
        std::filesystem::remove(base_dir, ec); // only if empty: anything written there stays
    });
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto r = cfg::load_string(text, "fuzz.json", base_dir);
    check_diagnostics(r, "fuzz.json");
    check_no_secret(text, r);
    if (r.value) check_display(*r.value);
    check_edit(text, r.value.has_value());
    return 0;
}
