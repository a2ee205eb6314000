#!/usr/bin/env bash
# Builds the libFuzzer targets (preset `fuzz`: clang-14, ASan+UBSan, build/fuzz) and runs each of
# them from its committed seed corpus (tests/fuzz/corpus/<target>/, read only: new inputs go to a
# scratch corpus under build/fuzz/runs/<target>/, which each run starts empty).
#
#   scripts/fuzz.sh                      every target for 60 s, two at a time (the CI stage)
#   scripts/fuzz.sh --seconds 300 digest one target for 5 minutes
#   scripts/fuzz.sh --long               the long run: one target at a time, each until
#                                        10,000,000 executions or 20 minutes
#   scripts/fuzz.sh --runs N             stop each target after N executions (with --seconds
#                                        as the time limit, 60 s unless given)
#   scripts/fuzz.sh --jobs N             targets run side by side (default: 2, at most nproc)
#   scripts/fuzz.sh --no-build           use build/fuzz as it is
#
# Fails (exit 1) when any target finds a crash, a leak, a UB report, a timeout (one input taking
# over 10 s) or an out-of-memory; the reproducer's path and the report's end are printed. Replay a
# reproducer with `build/fuzz/tests/fuzz/fuzz_<target> <file>` (tests/fuzz/README.md).
# Prints, per target: executions, exec/s, coverage (cov = edges, ft = features), corpus size.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

all_targets=(challenge digest config request_head)
seconds=60
runs=""
jobs=2
build=true
long=false
targets=()

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while (($#)); do
    case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --long) long=true; shift ;;
    --no-build) build=false; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *)
        if [[ " ${all_targets[*]} " != *" $1 "* ]]; then
            echo "fuzz.sh: unknown target $1 (targets: ${all_targets[*]})" >&2
            exit 2
        fi
        targets+=("$1")
        shift
        ;;
    esac
done
((${#targets[@]})) || targets=("${all_targets[@]}")
if $long; then
    runs=10000000
    seconds=1200
    jobs=1
fi
cores="$(nproc)"
((jobs <= cores)) || jobs=$cores
((jobs >= 1)) || jobs=1

if $build; then
    start=$SECONDS
    cmake --preset fuzz >/dev/null
    cmake --build build/fuzz -j "$cores"
    echo "fuzz.sh: built in $((SECONDS - start)) s"
fi

# Sanitizer reports end the run with a symbolized stack; leaks are checked (libFuzzer's default).
symbolizer="$(command -v llvm-symbolizer-14 || echo /usr/lib/llvm-14/bin/llvm-symbolizer)"
export ASAN_SYMBOLIZER_PATH="$symbolizer"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:symbolize=1:external_symbolizer_path=$symbolizer"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:print_stacktrace=1:symbolize=1:external_symbolizer_path=$symbolizer"

runs_dir="$root/build/fuzz/runs"

# run_target NAME: one libFuzzer run; its output goes to runs/NAME/log, its exit code is returned.
run_target() {
    local name="$1"
    local dir="$runs_dir/$name"
    rm -rf "$dir"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    local args=(
        -max_total_time="$seconds"
        -timeout=10
        -rss_limit_mb=2048
        -print_final_stats=1
        -artifact_prefix="$dir/artifacts/"
    )
    [[ -n "$runs" ]] && args+=(-runs="$runs")
    [[ -f "tests/fuzz/$name.dict" ]] && args+=(-dict="tests/fuzz/$name.dict")
    # The scratch corpus first: libFuzzer writes new inputs to the first directory only.
    "build/fuzz/tests/fuzz/fuzz_$name" "${args[@]}" "$dir/corpus" "tests/fuzz/corpus/$name" \
        >"$dir/log" 2>&1
}

# report NAME RC: the figures of one finished run, or what it found.
report() {
    local name="$1" rc="$2" dir="$runs_dir/$1"
    local log="$dir/log"
    local execs rate last cov ft corp
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    last="$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED|NEW|REDUCE|pulse)' "$log" | tail -1 || true)"
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
    corp="$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")"
    printf '%-13s %s  executions=%s exec/s=%s cov=%s ft=%s corpus=%s (%s new files)\n' \
        "$name" "$([[ $rc == 0 ]] && echo ok || echo FAILED)" "${execs:-?}" "${rate:-?}" \
        "${cov:-?}" "${ft:-?}" "${corp:-?}" "$(find "$dir/corpus" -type f | wc -l)"
    if [[ $rc != 0 ]]; then
        echo "---- $name: exit $rc; the end of $log:"
        grep -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)|^[[:space:]]+NEW_FUNC' "$log" | tail -40
        local unit
        for unit in "$dir"/artifacts/*; do
            [[ -e "$unit" ]] || continue
            echo "---- $name: reproducer: $unit" \
                "(replay: build/fuzz/tests/fuzz/fuzz_$name $unit)"
            # Its bytes too, so that a run elsewhere (CI) can be replayed from its output alone:
            # `base64 -d > unit` with the line below.
            if (($(stat -c %s "$unit") <= 8192)); then
                echo "---- $name: reproducer, base64: $(base64 -w0 "$unit")"
            fi
            # libFuzzer's timeout is wall-clock time: on a machine starved of CPU an ordinary
            # input can pass 10 s. The replay on its own tells a slow input from a busy machine.
            if [[ "$(basename "$unit")" == timeout-* ]]; then
                local t0=$EPOCHREALTIME
                "build/fuzz/tests/fuzz/fuzz_$name" -timeout=10 "$unit" >/dev/null 2>&1 || true
                echo "---- $name: the timeout input, replayed alone, took" \
                    "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }') s"
            fi
        done
    fi
}

echo "fuzz.sh: ${targets[*]}: ${seconds} s each${runs:+ or $runs executions}, $jobs at a time"
start=$SECONDS
failed=()
declare -A running=() # pid -> target
queue=("${targets[@]}")
while ((${#queue[@]} || ${#running[@]})); do
    while ((${#queue[@]})) && ((${#running[@]} < jobs)); do
        run_target "${queue[0]}" &
        running[$!]="${queue[0]}"
        queue=("${queue[@]:1}")
    done
    # Wait for any one run to end (bash 5.1: -p names it), then report it.
    rc=0
    wait -n -p done_pid "${!running[@]}" || rc=$?
    name="${running[$done_pid]}"
    unset "running[$done_pid]"
    report "$name" "$rc"
    ((rc == 0)) || failed+=("$name")
done
echo "fuzz.sh: $((SECONDS - start)) s of fuzzing; scratch corpora and logs in $runs_dir"
if ((${#failed[@]})); then
    echo "fuzz.sh: FAILED: ${failed[*]}"
    exit 1
fi
echo "fuzz.sh: no crash, leak, UB report, timeout or out-of-memory"
