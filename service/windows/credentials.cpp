// `authshim credentials set NAME --username USER [--config FILE]`: reads a password, encrypts it
// with DPAPI (machine scope) and writes it into the config file as {"dpapi": "<base64>"},
// changing nothing else in the file (comments and layout included).
#include "config/config_edit.hpp"
#include "config/loader.hpp"
#include "config/secret.hpp"
#include "service/cli.hpp"
#include "service/platform.hpp"
#include "service/windows/acl.hpp"
#include "service/windows/commands.hpp"
#include "service/windows/secrets.hpp"
#include "service/windows/win32.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace authshim::service::windows {
namespace {

namespace fs = std::filesystem;

int usage(const std::string& message) {
    std::cerr << "authshim: " << message << "\n\n"
              << "usage: authshim credentials set NAME --username USER [--config FILE]\n"
              << "  The password is read from the console without echo (asked twice), or from\n"
              << "  standard input when it is not a console (one line; a trailing line break is\n"
              << "  removed).\n";
    return 2;
}

/// Overwrites `text` before it is freed.
void wipe(std::wstring& text) {
    if (!text.empty()) SecureZeroMemory(text.data(), text.size() * sizeof(wchar_t));
    text.clear();
}
void wipe(std::string& text) {
    if (!text.empty()) SecureZeroMemory(text.data(), text.size());
    text.clear();
}

/// One line from the console with echo off. Nothing when the console could not be read.
std::optional<std::wstring> read_console_line(HANDLE input, const wchar_t* prompt) {
    HANDLE output = GetStdHandle(STD_ERROR_HANDLE);
    DWORD written = 0;
    WriteConsoleW(output, prompt, static_cast<DWORD>(wcslen(prompt)), &written, nullptr);
    DWORD mode = 0;
    GetConsoleMode(input, &mode);
    SetConsoleMode(input, (mode & ~static_cast<DWORD>(ENABLE_ECHO_INPUT)) | ENABLE_LINE_INPUT |
                              ENABLE_PROCESSED_INPUT);
    std::wstring line;
    wchar_t buffer[256];
    bool ok = true;
    for (;;) {
        DWORD read = 0;
        if (!ReadConsoleW(input, buffer, 256, &read, nullptr) || read == 0) {
            ok = false;
            break;
        }
        line.append(buffer, read);
        if (line.find(L'\n') != std::wstring::npos || line.find(L'\r') != std::wstring::npos) break;
    }
    SecureZeroMemory(buffer, sizeof buffer);
    SetConsoleMode(input, mode);
    WriteConsoleW(output, L"\r\n", 2, &written, nullptr);
    if (!ok) {
        wipe(line);
        return std::nullopt;
    }
    line.erase(line.find_first_of(L"\r\n"));
    return line;
}

/// The password, from the console (twice, must match) or from piped standard input.
std::optional<config::secret_string> read_password(const std::string& username,
                                                   std::string& error) {
    HANDLE input = GetStdHandle(STD_INPUT_HANDLE);
    DWORD mode = 0;
    if (input != INVALID_HANDLE_VALUE && input && GetConsoleMode(input, &mode)) {
        const std::wstring prompt = L"Password for " + win32::widen(username) + L": ";
        auto first = read_console_line(input, prompt.c_str());
        if (!first) {
            error = "could not read the password from the console";
            return std::nullopt;
        }
        auto second = read_console_line(input, L"Repeat it: ");
        if (!second || *first != *second) {
            wipe(*first);
            if (second) wipe(*second);
            error = "the two passwords differ; nothing was changed";
            return std::nullopt;
        }
        std::string utf8 = win32::narrow(*first);
        wipe(*first);
        wipe(*second);
        return config::secret_string(std::move(utf8));
    }
    // Piped: all of standard input, binary, one trailing line break removed. Anything past the
    // first line is refused rather than silently dropped.
    std::string data;
    char buffer[4096];
    for (;;) {
        DWORD read = 0;
        if (!ReadFile(input, buffer, sizeof buffer, &read, nullptr) || read == 0) break;
        data.append(buffer, read);
        if (data.size() > 64 * 1024) break;
    }
    SecureZeroMemory(buffer, sizeof buffer);
    if (data.size() > 64 * 1024) {
        wipe(data);
        error = "standard input holds more than 64 KiB: not a password";
        return std::nullopt;
    }
    // PowerShell may put a UTF-8 byte order mark in front; it is not part of the password.
    if (data.starts_with("\xEF\xBB\xBF")) data.erase(0, 3);
    if (data.ends_with("\r\n"))
        data.resize(data.size() - 2);
    else if (data.ends_with("\n"))
        data.resize(data.size() - 1);
    if (data.find_first_of("\r\n") != std::string::npos) {
        wipe(data);
        error = "standard input holds more than one line: give the password alone";
        return std::nullopt;
    }
    // Bytes in the console's code page (cmd's echo, Windows PowerShell's default ASCII) would be
    // stored as a wrong password without notice: only UTF-8 is accepted.
    if (!data.empty() && MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, data.data(),
                                             static_cast<int>(data.size()), nullptr, 0) == 0) {
        wipe(data);
        error = "standard input is not UTF-8: pipe the password as UTF-8 (in PowerShell: "
                "$OutputEncoding = [Text.UTF8Encoding]::new($false)), or type it at the prompt";
        return std::nullopt;
    }
    return config::secret_string(std::move(data));
}

std::string base64(std::span<const std::uint8_t> bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                  static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

int credentials_set(std::vector<std::string> args) {
    std::string error;
    const auto file = take_config_option(args, error);
    if (!error.empty()) return usage(error);
    std::string name, username;
    bool have_username = false;
    for (std::size_t i = 2; i < args.size(); ++i) {
        if (args[i] == "--username" || args[i] == "-u") {
            if (i + 1 >= args.size()) return usage("--username needs a value");
            username = args[++i];
            have_username = true;
        } else if (args[i].starts_with("--username=")) {
            username = args[i].substr(11);
            have_username = true;
        } else if (args[i].starts_with("-")) {
            return usage("unknown argument '" + args[i] + "'");
        } else if (name.empty()) {
            name = args[i];
        } else {
            return usage("unexpected argument '" + args[i] + "'");
        }
    }
    if (name.empty()) return usage("'credentials set' needs the credentials' NAME");
    if (!have_username || username.empty()) return usage("'credentials set' needs --username USER");
    if (!file) return usage("'credentials set' needs --config FILE");
    for (const auto& [what, value] : {std::pair{"NAME", &name}, std::pair{"USER", &username}})
        if (std::any_of(value->begin(), value->end(),
                        [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
            return usage(std::string(what) + " must not contain control characters");
    const fs::path config_file = fs::absolute(*file);

    auto original = read_text_file(config_file, error);
    if (!original) {
        std::cerr << "authshim: " << error
                  << " (write the config first; see packaging/authshim.example.json)\n";
        return 1;
    }
    // Check the edit before asking for the password.
    if (auto trial = config::set_dpapi_credential(*original, name, username, "AAAA"); !trial.text) {
        std::cerr << "authshim: cannot edit " << config_file.string() << ": " << trial.error
                  << "\n";
        return 1;
    }

    auto password = read_password(username, error);
    if (!password) {
        std::cerr << "authshim: " << error << "\n";
        return 1;
    }
    if (password->empty()) {
        std::cerr << "authshim: the password is empty; nothing was changed\n";
        return 1;
    }
    auto blob = dpapi_protect(*password, error);
    if (!blob) {
        std::cerr << "authshim: DPAPI could not encrypt the password: " << error << "\n";
        return 1;
    }
    // Read it back: what the service will do at start.
    const secret_resolver resolver;
    const auto check = resolver.resolve_dpapi(*blob);
    if (!check || !(*check.value == *password)) {
        std::cerr << "authshim: the DPAPI blob did not decrypt to the password: "
                  << (check ? "different value" : check.error) << "; nothing was changed\n";
        return 1;
    }
    auto edited = config::set_dpapi_credential(*original, name, username, base64(*blob));
    if (!edited.text) {
        std::cerr << "authshim: cannot edit " << config_file.string() << ": " << edited.error
                  << "\n";
        return 1;
    }
    // The first credentials of a config with one upstream that names none (the MSI's default
    // config) are that upstream's: otherwise they would sit unused and its 407s stay
    // unanswered. With other credentials already there, or several upstreams, the admin
    // decides which upstream uses what.
    bool attached = false;
    const auto before =
        config::load_string(*original, config_file.string(), config_file.parent_path());
    if (const auto as_edited =
            config::load_string(*edited.text, config_file.string(), config_file.parent_path());
        before.value && before.value->credentials.empty() && as_edited.value &&
        as_edited.value->upstreams.size() == 1 && !as_edited.value->upstreams[0].credentials) {
        const std::vector<config::path_step> where{std::string("upstreams"), std::size_t{0},
                                                   std::string("credentials")};
        auto linked = config::set_value(*edited.text, where, config::json_quote(name).value_or(""));
        if (linked.text) {
            edited.text = std::move(linked.text);
            attached = true;
        }
    }
    if (auto problem = replace_file_atomically(config_file, *edited.text)) {
        std::cerr << "authshim: " << *problem << "\n";
        return 1;
    }
    std::cout << "stored the password of credentials \"" << name << "\" (user " << username
              << ") in " << config_file.string()
              << " as a DPAPI blob (machine scope); no plain password was written\n";
    if (attached)
        std::cout << "the first upstream had no credentials: it now uses \"" << name << "\"\n";

    protect_config_folder(config_file, std::cout, std::cerr);

    // The whole file as the service will load it: other problems are reported, not fatal here.
    std::ostringstream problems;
    if (!load_config(config_file, problems))
        std::cerr << "warning: the config has problems unrelated to this credential:\n"
                  << problems.str();
    else
        std::cout << "if the service runs, restart it to use the new password: authshim "
                     "service stop && authshim service start\n";
    return 0;
}

} // namespace

int credentials_command(const std::vector<std::string>& args) {
    if (args.size() < 2) return usage("'credentials' needs a subcommand");
    if (args[1] == "set") return credentials_set(args);
    return usage("unknown credentials subcommand '" + args[1] + "'");
}

} // namespace authshim::service::windows
