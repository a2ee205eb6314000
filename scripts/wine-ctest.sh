#!/usr/bin/env bash
# Runs ctest on the Windows cross-build (build/mingw by default) under Wine, headless, in a
# throwaway Wine prefix that is removed afterwards:
#
#   scripts/wine-ctest.sh [BUILD_DIR] [ctest arguments...]
#
# The unit-test executables run through CMAKE_CROSSCOMPILING_EMULATOR (wine); the end-to-end test
# (tests/windows/test_windows_e2e.py) makes its own prefix. Recipe: ../shared/docs/WINDOWS-TESTING.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build/mingw}"
shift || true

# Wine's WinHTTP falls back to $http_proxy: no proxy variable may leak into the tests.
while IFS= read -r var; do
    unset "$var"
done < <(compgen -e | grep -iE '_proxy$' || true)
unset DISPLAY WAYLAND_DISPLAY
export WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
WINEPREFIX="$(mktemp -d /tmp/authshim-wine-unit.XXXXXX)"
export WINEPREFIX

cleanup() {
    wineserver -k >/dev/null 2>&1 || true
    wineserver -w >/dev/null 2>&1 || true
    rm -rf "$WINEPREFIX"
}
trap cleanup EXIT

start=$SECONDS
wineboot --init >/dev/null 2>&1
wineserver -w
# A persistent server: without it every wine start pays for a new one.
wineserver -p
# Start the prefix's background services (winedevice.exe ...) now, with nowhere to write: they
# inherit the standard handles of the Wine program that starts them, and ctest would wait forever
# on a test's output pipe that they keep open.
wine cmd.exe /c exit 0 </dev/null >/dev/null 2>&1
echo "[wine-ctest] prefix $WINEPREFIX ready in $((SECONDS - start)) s"

ctest --test-dir "$build" --output-on-failure --no-tests=error -j 1 "$@"
