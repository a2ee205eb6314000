#!/usr/bin/env bash
# Builds the proxy-core unit tests with ThreadSanitizer (preset `tsan`: clang-14, build/tsan; only
# the authshim_proxycore_tests binary and the libraries it links) and runs them: every test case
# once, then the multi-threaded ones (tag [threads]: the real server with clients, a counter
# reader, reloads and a stop on other threads; the access log's concurrent writers) a few more
# times, since a race shows only when the threads actually interleave there.
# GCC 12's TSan rejects Asio's atomic_thread_fence under -Werror, hence clang.
#   scripts/tsan.sh [--no-build] [catch2 arguments, e.g. a test name or "[server]"]
# Fails on any test failure and on the first TSan report (halt_on_error=1).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

build=true
if [[ "${1:-}" == --no-build ]]; then
    build=false
    shift
fi
repeats="${AUTHSHIM_TSAN_REPEATS:-5}"

if $build; then
    start=$SECONDS
    cmake --preset tsan >/dev/null
    cmake --build --preset tsan -j "$(nproc)"
    echo "tsan.sh: built in $((SECONDS - start)) s"
fi

symbolizer="$(command -v llvm-symbolizer-14 || echo /usr/lib/llvm-14/bin/llvm-symbolizer)"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}:external_symbolizer_path=$symbolizer"
tests=build/tsan/tests/authshim_proxycore_tests

start=$SECONDS
if (($#)); then
    "$tests" "$@"
else
    "$tests"
    log=build/tsan/threads-repeat.log
    for ((i = 1; i <= repeats; i++)); do
        if ! "$tests" "[threads]" >"$log" 2>&1; then
            cat "$log"
            echo "tsan.sh: FAILED in repeat $i of the [threads] tests"
            exit 1
        fi
    done
fi
echo "tsan.sh: tests passed under ThreadSanitizer in $((SECONDS - start)) s"
