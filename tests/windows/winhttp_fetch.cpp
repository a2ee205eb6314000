// winhttp_fetch: a minimal WinHTTP client for tests, fetching one URL the way a Windows service
// does (WINHTTP_ACCESS_TYPE_DEFAULT_PROXY: the machine-wide WinHTTP proxy), or through a named
// proxy with --proxy. No credential handling: a 407 is reported as the status it is.
//
//   winhttp_fetch URL OUTFILE [--proxy HOST:PORT]
//
// Prints `status <code>` and `bytes <n>`, writes the body to OUTFILE. Exit 0 when the request
// completed (any status), 1 on a WinHTTP error, 2 on a usage error.
// Build: x86_64-w64-mingw32-g++-posix -std=c++20 -O2 -municode -static -o winhttp_fetch.exe
//        tests/windows/winhttp_fetch.cpp -lwinhttp
#include <windows.h>
#include <winhttp.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace {

constexpr DWORD timeout_ms = 20'000;

std::string utf8(const std::wstring& text) {
    if (text.empty()) return {};
    const int size = WideCharToMultiByte(CP_UTF8, 0, text.data(), static_cast<int>(text.size()),
                                         nullptr, 0, nullptr, nullptr);
    std::string out(static_cast<std::size_t>(size > 0 ? size : 0), '\0');
    if (size > 0)
        WideCharToMultiByte(CP_UTF8, 0, text.data(), static_cast<int>(text.size()), out.data(),
                            size, nullptr, nullptr);
    return out;
}

/// The system's text for a WinHTTP (12xxx) or Win32 error code, with a name for common ones.
std::string error_text(DWORD code) {
    const char* name = nullptr;
    switch (code) {
    case ERROR_WINHTTP_TIMEOUT:
        name = "ERROR_WINHTTP_TIMEOUT";
        break;
    case ERROR_WINHTTP_NAME_NOT_RESOLVED:
        name = "ERROR_WINHTTP_NAME_NOT_RESOLVED";
        break;
    case ERROR_WINHTTP_CANNOT_CONNECT:
        name = "ERROR_WINHTTP_CANNOT_CONNECT";
        break;
    case ERROR_WINHTTP_CONNECTION_ERROR:
        name = "ERROR_WINHTTP_CONNECTION_ERROR";
        break;
    case ERROR_WINHTTP_INVALID_URL:
        name = "ERROR_WINHTTP_INVALID_URL";
        break;
    case ERROR_WINHTTP_UNRECOGNIZED_SCHEME:
        name = "ERROR_WINHTTP_UNRECOGNIZED_SCHEME";
        break;
    case ERROR_WINHTTP_INVALID_SERVER_RESPONSE:
        name = "ERROR_WINHTTP_INVALID_SERVER_RESPONSE";
        break;
    case ERROR_WINHTTP_SECURE_FAILURE:
        name = "ERROR_WINHTTP_SECURE_FAILURE";
        break;
    default:
        break;
    }
    wchar_t* buffer = nullptr;
    DWORD flags =
        FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_IGNORE_INSERTS | FORMAT_MESSAGE_FROM_SYSTEM;
    HMODULE module = nullptr;
    if (code >= WINHTTP_ERROR_BASE && code <= WINHTTP_ERROR_LAST) {
        module = GetModuleHandleW(L"winhttp.dll");
        if (module) flags |= FORMAT_MESSAGE_FROM_HMODULE;
    }
    const DWORD length =
        FormatMessageW(flags, module, code, 0, reinterpret_cast<wchar_t*>(&buffer), 0, nullptr);
    std::string text = length && buffer ? utf8(std::wstring(buffer, length)) : std::string();
    if (buffer) LocalFree(buffer);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
        text.pop_back();
    std::string out = "error " + std::to_string(code);
    if (name) out += std::string(" ") + name;
    if (!text.empty()) out += ": " + text;
    return out;
}

int fail(const char* what) {
    const DWORD code = GetLastError();
    std::fprintf(stderr, "winhttp_fetch: %s failed: %s\n", what, error_text(code).c_str());
    return 1;
}

/// Closes a WinHTTP handle on scope exit.
struct handle {
    HINTERNET h = nullptr;
    explicit handle(HINTERNET value) : h(value) {}
    handle(const handle&) = delete;
    handle& operator=(const handle&) = delete;
    ~handle() {
        if (h) WinHttpCloseHandle(h);
    }
};

int usage() {
    std::fprintf(stderr, "usage: winhttp_fetch URL OUTFILE [--proxy HOST:PORT]\n");
    return 2;
}

} // namespace

int wmain(int argc, wchar_t** argv) {
    if (argc != 3 && argc != 5) return usage();
    const std::wstring url = argv[1];
    const std::wstring outfile = argv[2];
    std::wstring proxy;
    if (argc == 5) {
        if (std::wstring(argv[3]) != L"--proxy" || !*argv[4]) return usage();
        proxy = argv[4];
    }

    URL_COMPONENTS parts{};
    parts.dwStructSize = sizeof parts;
    parts.dwHostNameLength = static_cast<DWORD>(-1);
    parts.dwUrlPathLength = static_cast<DWORD>(-1);
    parts.dwExtraInfoLength = static_cast<DWORD>(-1);
    if (!WinHttpCrackUrl(url.c_str(), 0, 0, &parts)) return fail("WinHttpCrackUrl");
    const std::wstring host(parts.lpszHostName, parts.dwHostNameLength);
    std::wstring target(parts.lpszUrlPath, parts.dwUrlPathLength);
    target.append(parts.lpszExtraInfo, parts.dwExtraInfoLength);
    if (target.empty()) target = L"/";

    // DEFAULT_PROXY is what a service gets: the machine-wide setting (WinHttpSettings).
    handle session(WinHttpOpen(
        L"authshim-winhttp-fetch/1.0",
        proxy.empty() ? WINHTTP_ACCESS_TYPE_DEFAULT_PROXY : WINHTTP_ACCESS_TYPE_NAMED_PROXY,
        proxy.empty() ? WINHTTP_NO_PROXY_NAME : proxy.c_str(), WINHTTP_NO_PROXY_BYPASS, 0));
    if (!session.h) return fail("WinHttpOpen");
    if (!WinHttpSetTimeouts(session.h, static_cast<int>(timeout_ms), static_cast<int>(timeout_ms),
                            static_cast<int>(timeout_ms), static_cast<int>(timeout_ms)))
        return fail("WinHttpSetTimeouts");

    handle connection(WinHttpConnect(session.h, host.c_str(), parts.nPort, 0));
    if (!connection.h) return fail("WinHttpConnect");
    const DWORD request_flags = parts.nScheme == INTERNET_SCHEME_HTTPS ? WINHTTP_FLAG_SECURE : 0;
    handle request(WinHttpOpenRequest(connection.h, L"GET", target.c_str(), nullptr,
                                      WINHTTP_NO_REFERER, WINHTTP_DEFAULT_ACCEPT_TYPES,
                                      request_flags));
    if (!request.h) return fail("WinHttpOpenRequest");
    // Never log on with the process's own Windows credentials (NTLM/Negotiate to the proxy): the
    // test must see the proxy's 407 as a service without stored credentials would.
    DWORD policy = WINHTTP_AUTOLOGON_SECURITY_LEVEL_HIGH;
    if (!WinHttpSetOption(request.h, WINHTTP_OPTION_AUTOLOGON_POLICY, &policy, sizeof policy))
        std::fprintf(stderr, "winhttp_fetch: note: cannot set the autologon policy: %s\n",
                     error_text(GetLastError()).c_str());

    if (!WinHttpSendRequest(request.h, WINHTTP_NO_ADDITIONAL_HEADERS, 0, WINHTTP_NO_REQUEST_DATA, 0,
                            0, 0))
        return fail("WinHttpSendRequest");
    if (!WinHttpReceiveResponse(request.h, nullptr)) return fail("WinHttpReceiveResponse");

    DWORD status = 0;
    DWORD size = sizeof status;
    if (!WinHttpQueryHeaders(request.h, WINHTTP_QUERY_STATUS_CODE | WINHTTP_QUERY_FLAG_NUMBER,
                             WINHTTP_HEADER_NAME_BY_INDEX, &status, &size, WINHTTP_NO_HEADER_INDEX))
        return fail("WinHttpQueryHeaders");

    std::ofstream out(outfile.c_str(), std::ios::binary | std::ios::trunc);
    if (!out) {
        std::fprintf(stderr, "winhttp_fetch: cannot write %s\n", utf8(outfile).c_str());
        return 1;
    }
    unsigned long long total = 0;
    std::vector<char> buffer(64 * 1024);
    for (;;) {
        DWORD got = 0;
        if (!WinHttpReadData(request.h, buffer.data(), static_cast<DWORD>(buffer.size()), &got))
            return fail("WinHttpReadData");
        if (got == 0) break;
        out.write(buffer.data(), static_cast<std::streamsize>(got));
        total += got;
    }
    out.close();
    if (!out) {
        std::fprintf(stderr, "winhttp_fetch: cannot write %s\n", utf8(outfile).c_str());
        return 1;
    }
    std::printf("status %lu\nbytes %llu\n", static_cast<unsigned long>(status), total);
    return 0;
}
