// The Windows process entry point: arguments arrive as UTF-16 and are handed on as UTF-8; the
// console gets UTF-8 output so that paths and names print as they are.
#include "service/cli.hpp"
#include "service/windows/win32.hpp"

#include <string>
#include <vector>

int wmain(int argc, wchar_t** argv) {
    // The code page belongs to the console, not to this process: put it back on the way out.
    const UINT previous_cp = GetConsoleOutputCP();
    SetConsoleOutputCP(CP_UTF8);
    // No "insert the disk" or crash dialogs for a service: errors are reported, not shown.
    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX | SEM_NOOPENFILEERRORBOX);
    std::vector<std::string> args;
    args.reserve(static_cast<std::size_t>(argc));
    for (int i = 1; i < argc; ++i)
        args.push_back(authshim::service::win32::narrow(argv[i]));
    const int code = authshim::service::cli_main(args);
    if (previous_cp != 0) SetConsoleOutputCP(previous_cp);
    return code;
}
