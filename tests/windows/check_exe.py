"""Checks the shipped authshim.exe: a 64-bit PE that imports only Windows' own DLLs (no MinGW
runtime DLLs to ship beside it), carries no debug symbols, and has its version resource
(FileVersion / ProductVersion = the project version) and the Event Log message table.

usage: check_exe.py OBJDUMP EXE VERSION"""

import re
import subprocess
import sys

# Windows' own DLLs authshim.exe may import; anything else (libstdc++-6.dll, libgcc_s_seh-1.dll,
# libwinpthread-1.dll, libcrypto-3-x64.dll, ...) would have to be shipped and is refused.
SYSTEM_DLLS = {
    "advapi32.dll", "bcrypt.dll", "crypt32.dll", "kernel32.dll", "msvcrt.dll", "mswsock.dll",
    "ole32.dll", "shell32.dll", "user32.dll", "winhttp.dll", "ws2_32.dll",
}


def main() -> int:
    objdump, exe, version = sys.argv[1:4]
    headers = subprocess.run([objdump, "-p", exe], capture_output=True, text=True, check=True).stdout
    problems = []
    if "file format pei-x86-64" not in subprocess.run(
            [objdump, "-f", exe], capture_output=True, text=True, check=True).stdout:
        problems.append("not a 64-bit PE executable")
    dlls = {m.lower() for m in re.findall(r"DLL Name: (\S+)", headers)}
    if not dlls:
        problems.append("no imports found (objdump output changed?)")
    extra = sorted(dlls - SYSTEM_DLLS)
    if extra:
        problems.append(f"imports DLLs that are not part of Windows: {', '.join(extra)}")
    sections = subprocess.run([objdump, "-h", exe], capture_output=True, text=True,
                              check=True).stdout
    if ".debug_info" in sections:
        problems.append("carries debug information (the release exe is linked with -s)")
    data = open(exe, "rb").read()
    for key in ("FileVersion", "ProductVersion", "OriginalFilename"):
        if key.encode("utf-16-le") not in data:
            problems.append(f"version resource lacks {key}")
    if f"{version}".encode("utf-16-le") not in data:
        problems.append(f"version resource does not name version {version}")
    # The message table holds the texts in UTF-16; one phrase from messages.mc suffices here
    # (tests/unit/windows/event_log_test.cpp reads every message through FormatMessageW).
    if "lockout protection".encode("utf-16-le") not in data:
        problems.append("no Event Log message table")
    print(f"{exe}: {len(data)} bytes, imports {', '.join(sorted(dlls))}")
    for p in problems:
        print(f"FAIL: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
