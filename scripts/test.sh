#!/usr/bin/env bash
# The one command that sets up, builds and runs the whole test suite on a fresh Debian 12 machine:
#   1. scripts/setup.sh           build and test dependencies (Debian packages)
#   2. build/asan                 Debug, ASan+UBSan: every test except the release_only ones
#   3. build/release              Release, un-sanitized: the integration tests, where the
#                                 release_only memory/CPU assertions run; then the Debian
#                                 package built from it and checked (scripts/deb.sh)
#   4. build/fuzz                 the libFuzzer targets (clang-14, ASan+UBSan), 60 s each from
#                                 their seed corpora, two at a time (scripts/fuzz.sh)
#   5. build/tsan                 the proxy-core unit tests under ThreadSanitizer (clang-14,
#                                 scripts/tsan.sh)
#   6. build/mingw                Windows x64 cross-build (mingw-w64) and its MSI (wixl):
#                                 unit tests, the end-to-end test and the MSI test under Wine
# The cache variables of the builds live in CMakePresets.json (presets `asan`, `release`, `fuzz`,
# `tsan` and `mingw`).
# Prints the wall time of each stage; exits non-zero if anything failed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Each stage's output also goes to build/stage-logs/NAME.log; the end of a failed stage's log is
# printed again after the last stage, so that it is in the tail a CI system keeps.
logs="$root/build/stage-logs"
rm -rf "$logs"
mkdir -p "$logs"

# stage NAME CMD...: runs CMD, then prints `== stage NAME: <seconds> s`; returns CMD's status.
stage() {
    local name="$1" start=$SECONDS rc=0
    shift
    echo "== stage $name: $*"
    "$@" 2>&1 | tee "$logs/$name.log" || rc=${PIPESTATUS[0]}
    if ((rc == 0)); then
        echo "== stage $name: $((SECONDS - start)) s"
    else
        echo "== stage $name: $((SECONDS - start)) s (FAILED, exit $rc)"
    fi
    return "$rc"
}

# The tests talk to proxies on loopback that they start themselves; a proxy from the environment
# would be used by curl, pytest helpers and the like instead.
while IFS= read -r var; do
    unset "$var"
done < <(compgen -e | grep -iE '_proxy$' || true)

# Sanitizer reports fail the test that triggers them, with a stack trace.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0:print_stacktrace=1:check_initialization_order=1:strict_init_order=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

build_jobs="$(nproc)"
test_jobs=$((build_jobs < 2 ? build_jobs : 2))

failed=()

stage setup bash scripts/setup.sh

# (a) Sanitized build: unit and integration tests, everything except release_only.
stage asan-configure cmake --preset asan
stage asan-build cmake --build build/asan -j "$build_jobs"
stage asan-test ctest --test-dir build/asan --output-on-failure --no-tests=error -j "$test_jobs" ||
    failed+=(asan-test)

# (b) Release build: the integration tests only. They run one at a time so that the CPU and memory
# assertions measure authshim, not a neighbouring test.
stage release-configure cmake --preset release
stage release-build cmake --build build/release -j "$build_jobs" --target authshim
stage release-test ctest --test-dir build/release -L integration --output-on-failure \
    --no-tests=error -j 1 || failed+=(release-test)

# (b2) The Debian package, from that release build: control fields, lintian without errors or
# warnings, the unit through systemd-analyze, install/upgrade/remove/purge in a throwaway root.
stage deb bash scripts/deb.sh --no-build || failed+=(deb)

# (c) Fuzzing: each libFuzzer target for 60 s from its seed corpus (new inputs go to a scratch
# corpus under build/fuzz/runs, never to tests/fuzz/corpus); any crash, leak, UB report, timeout
# or out-of-memory fails the stage, with the reproducer's path printed.
stage fuzz bash scripts/fuzz.sh || failed+=(fuzz)

# (d) ThreadSanitizer: the proxy-core unit tests (the real server with clients, a counter reader,
# reloads and a stop on other threads among them) built with clang-14 and -fsanitize=thread.
stage tsan bash scripts/tsan.sh || failed+=(tsan)

# (e) Windows: authshim.exe cross-built with mingw-w64 (static OpenSSL built once from Debian's
# source package and cached in ~/.cache/authshim), its unit tests and the end-to-end test
# (service, WinHTTP, DPAPI credentials, a WinHTTP client through authshim to a Digest Squid)
# under Wine; the MSI built with them (scripts/msi.sh) installed, upgraded and removed by Wine's
# msiexec, and signed with a throwaway certificate (tests/windows/test_msi.py).
stage windows-openssl bash scripts/build-openssl-mingw.sh
stage windows-configure cmake --preset mingw
stage windows-build cmake --build build/mingw -j "$build_jobs"
stage windows-test bash scripts/wine-ctest.sh build/mingw || failed+=(windows-test)

if ((${#failed[@]} != 0)); then
    for name in "${failed[@]}"; do
        echo "== the end of stage $name's output (all of it: $logs/$name.log):"
        # Progress lines (libFuzzer's, ctest's passed tests) say nothing the failure report does not.
        progress='^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)|^[[:space:]]+NEW_FUNC'
        progress+='|^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed|^ +Start +[0-9]+: '
        grep -vE "$progress" "$logs/$name.log" | tail -60 || true
    done
    echo "== test.sh: FAILED: ${failed[*]}"
    exit 1
fi
echo "== test.sh: all stages passed"
