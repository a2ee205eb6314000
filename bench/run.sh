#!/usr/bin/env bash
# Runs the authshim benchmark on a fresh Debian 12 machine: installs what it needs, builds the
# release binary, runs bench/bench.py (arguments are passed on, e.g. --quick, --only load).
#
#   bash bench/run.sh [bench.py options]
#
# Results: bench/results/<date>-<sha>.md, bench/results/latest.md and latest.json.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

log() { printf '[bench/run.sh] %s\n' "$*"; }

# 1. The project's own dependencies (compiler, Squid, nginx, curl, htpasswd, ...).
bash scripts/setup.sh

# 2. The benchmark's extra tools, only those missing.
is_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}
missing=()
for pkg in wrk tinyproxy valgrind; do
    is_installed "$pkg" || missing+=("$pkg")
done
if ((${#missing[@]} != 0)); then
    log "installing: ${missing[*]}"
    sudo_cmd=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || {
            log "error: need root (or sudo) to install ${missing[*]}" >&2
            exit 1
        }
        sudo_cmd=(sudo)
    fi
    # tinyproxy's postinst starts a daemon on port 8888: forbid service starts during the
    # install (as scripts/setup.sh does), then stop any tinyproxy that appeared anyway.
    policy=/usr/sbin/policy-rc.d
    marker='# authshim bench/run.sh: temporary'
    own_policy=false
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\n%s\nexit 101\n' "$marker" | "${sudo_cmd[@]}" tee "$policy" >/dev/null
        "${sudo_cmd[@]}" chmod 0755 "$policy"
        own_policy=true
    fi
    remove_policy() {
        if $own_policy && grep -qF "$marker" "$policy" 2>/dev/null; then
            "${sudo_cmd[@]}" rm -f "$policy"
        fi
    }
    trap remove_policy EXIT
    before="$(pgrep -x tinyproxy || true)"
    "${sudo_cmd[@]}" apt-get update
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y \
        --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}"
    remove_policy
    after="$(pgrep -x tinyproxy || true)"
    new="$(comm -13 <(printf '%s\n' "$before" | sort) <(printf '%s\n' "$after" | sort) |
        grep -v '^$' || true)"
    if [[ -n "$new" ]]; then
        log "tinyproxy was started by the install; stopping it (pids: ${new//$'\n'/ })"
        if [[ -d /run/systemd/system ]]; then
            "${sudo_cmd[@]}" systemctl stop tinyproxy.service || true
            "${sudo_cmd[@]}" systemctl disable tinyproxy.service || true
        fi
        # shellcheck disable=SC2086 # the pid list is meant to split
        "${sudo_cmd[@]}" kill -TERM $new 2>/dev/null || true
    fi
fi

# 3. The release binary (the `release` preset: build/release/service/authshim).
if [[ " $* " != *" --binary"* ]]; then
    log "building the release binary"
    cmake --preset release
    cmake --build build/release --target authshim
fi

# 4. The benchmark.
exec python3 bench/bench.py "$@"
