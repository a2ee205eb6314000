#!/usr/bin/env bash
# Installs what authshim needs to build and to run its test suite on Debian 12 (bookworm).
#
# Idempotent: asks dpkg which packages are missing and does nothing else when none are. Otherwise
# runs `apt-get update` and `apt-get install` for the missing ones only (as root, or through sudo).
#
# Squid, nginx and Apache httpd are test tools here, never services: their Debian maintainer scripts
# would start them on 3128 (authshim's own default port) and 80 (nginx and apache2 both). While we
# install, a policy-rc.d forbids that (honoured by invoke-rc.d and by deb-systemd-invoke), and a
# squid/nginx/apache2 on the system configuration that still appeared during our install is stopped
# again. Anything that ran before is left alone.
set -euo pipefail

# cpp-httplib is not among them: the build takes the whole header from Debian's source package
# (scripts/fetch-httplib.sh, through dpkg-dev's `apt-get source` and the deb-src entry below).
build_packages=(
    build-essential cmake ninja-build pkg-config dpkg-dev
    libboost1.81-dev libssl-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
    catch2
    # Fuzzing and ThreadSanitizer (scripts/fuzz.sh, scripts/tsan.sh): clang++-14 (clang-14),
    # libFuzzer and the ASan/UBSan/TSan runtimes (libclang-rt-14-dev), llvm-symbolizer for the
    # reports' stacks (llvm-14).
    clang-14 libclang-rt-14-dev llvm-14
)
# The Debian package and its checks (scripts/deb.sh): lintian, systemd-analyze (systemd; nothing
# starts it in a container), file (is the binary stripped).
package_packages=(
    lintian systemd file
)
# `nginx` is the real server package in bookworm (nginx-light is a wrapper that depends on it and
# adds the echo module, which the tests do not use). `apache2`: the Digest forward proxy of
# test_auth_apache.py (apache2-bin's modules; `apache2-utils` also gives htpasswd). `stunnel4`:
# TLS in front of Squid for the https:// upstream tests (it starts nothing without a config in
# /etc/stunnel).
# prometheus: only for `promtool check metrics` on the admin endpoint's /metrics (the daemon is
# stopped and disabled below, like the other servers).
test_packages=(
    squid nginx apache2 curl openssl python3 python3-pytest apache2-utils procps iproute2
    ca-certificates stunnel4 prometheus
)
# The Windows cross-build and its tests (../shared/docs/WINDOWS-TESTING.md): mingw-w64 with posix
# threads, Wine (64-bit) to run the .exe files (scripts/build-openssl-mingw.sh builds a static
# mingw OpenSSL from Debian's source package with dpkg-dev's `apt-get source`); the MSI
# (scripts/msi.sh): wixl builds it, msitools patches and reads its tables (msibuild, msiinfo,
# msiextract), osslsigncode signs it and authshim.exe.
windows_packages=(
    g++-mingw-w64-x86-64-posix mingw-w64 wine wine64 wixl msitools osslsigncode
)
# Packages whose postinst may start a daemon; each name is also the daemon's process name and its
# systemd unit. (apache2's other unit, apache-htcacheclean, is disabled by its postinst on a first
# install and never started.)
services=(squid nginx apache2 prometheus)

log() { printf '[setup] %s\n' "$*"; }
run() {
    log "+ $*"
    "$@"
}

if [[ -r /etc/os-release ]]; then
    # shellcheck disable=SC1091
    . /etc/os-release
    if [[ "${ID:-}" != debian || "${VERSION_ID:-}" != 12 ]]; then
        log "warning: written for Debian 12, this is ${PRETTY_NAME:-unknown}; package names may differ"
    fi
fi

is_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing=()
for pkg in "${build_packages[@]}" "${test_packages[@]}" "${windows_packages[@]}" \
    "${package_packages[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done

# `apt-get source openssl` needs a deb-src entry; Debian's images ship only `deb` ones.
deb_src_file=/etc/apt/sources.list.d/authshim-deb-src.sources
has_deb_src() {
    grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/
}
need_deb_src=false
has_deb_src || need_deb_src=true

total=$((${#build_packages[@]} + ${#test_packages[@]} + ${#windows_packages[@]} +
    ${#package_packages[@]}))
if ((${#missing[@]} == 0)) && ! $need_deb_src; then
    log "all $total packages are installed and a deb-src entry exists; nothing to do"
    exit 0
fi
((${#missing[@]} == 0)) || log "missing packages: ${missing[*]}"
$need_deb_src && log "no deb-src entry: adding $deb_src_file"

if ((EUID != 0)); then
    if command -v sudo >/dev/null 2>&1; then
        log "not root: re-running through sudo"
        exec sudo -- bash "${BASH_SOURCE[0]}" "$@"
    fi
    log "error: installing packages needs root and sudo is not available;" \
        "run as root: apt-get install ${missing[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Forbid service starts during the install, unless the machine already has a policy-rc.d (Debian
# container images ship one that does the same); ours is removed again however we exit.
policy=/usr/sbin/policy-rc.d
policy_marker='# authshim scripts/setup.sh: temporary'
remove_policy() {
    if [[ -f "$policy" ]] && grep -qF "$policy_marker" "$policy"; then
        rm -f "$policy"
        log "removed temporary $policy"
    fi
}
if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\n%s\nexit 101\n' "$policy_marker" >"$policy"
    chmod 0755 "$policy"
    trap remove_policy EXIT
    log "installed temporary $policy (exit 101: no service starts during the install)"
else
    log "keeping the existing $policy"
fi

# PIDs of the squid/nginx/apache2 master processes that run on the system configuration, i.e. the
# ones a package's maintainer script starts (`apache2 -k start` through apache2ctl; their workers and
# kids exit with them). Test harnesses start their own copies with -f/-c/-p pointing outside /etc;
# those are never touched. Reads /proc directly: procps (pgrep) may be one of the packages still to
# install.
system_daemon_pids() {
    local dir pid comm stat ppid parent args word next
    for dir in /proc/[0-9]*; do
        pid="${dir#/proc/}"
        comm="$(cat "$dir/comm" 2>/dev/null)" || continue
        [[ "$comm" == "$1" ]] || continue
        stat="$(cat "$dir/stat" 2>/dev/null)" || continue
        read -r _ ppid _ <<<"${stat##*) }"
        parent="$(cat "/proc/$ppid/comm" 2>/dev/null || true)"
        [[ "$parent" == "$1" ]] && continue # a worker or kid
        args="$(tr '\0' ' ' <"$dir/cmdline" 2>/dev/null)" || continue
        next=""
        for word in $args; do
            if [[ -n "$next" && "$word" != /etc/* ]]; then
                continue 2 # a private configuration: not ours to stop
            fi
            next=""
            [[ "$word" == -c || "$word" == -f || "$word" == -p ]] && next=1
        done
        echo "$pid"
    done | sort
}
declare -A pids_before
for svc in "${services[@]}"; do
    pids_before[$svc]="$(system_daemon_pids "$svc")"
done

if $need_deb_src; then
    # The same archives as the `deb` entries (deb822 or one-line format), as deb-src.
    {
        for f in /etc/apt/sources.list.d/*.sources; do
            [[ -f "$f" && "$f" != "$deb_src_file" ]] || continue
            awk 'BEGIN { RS=""; ORS="\n\n" }
                 /(^|\n)Types:[^\n]*deb([ \n]|$)/ && /debian/ {
                     sub(/Types:[^\n]*/, "Types: deb-src"); print }' "$f"
        done
    } >"$deb_src_file.tmp"
    if [[ -f /etc/apt/sources.list ]]; then
        grep -E '^deb [^#]*debian' /etc/apt/sources.list | sed 's/^deb /deb-src /' \
            >/etc/apt/sources.list.d/authshim-deb-src.list || true
    fi
    if [[ -s "$deb_src_file.tmp" ]]; then
        mv "$deb_src_file.tmp" "$deb_src_file"
    else
        rm -f "$deb_src_file.tmp"
    fi
    [[ -s /etc/apt/sources.list.d/authshim-deb-src.list ]] ||
        rm -f /etc/apt/sources.list.d/authshim-deb-src.list
    has_deb_src || log "warning: could not derive a deb-src entry; scripts/build-openssl-mingw.sh will fail"
fi

run apt-get update
if ((${#missing[@]} == 0)); then
    log "all $total packages are installed"
    exit 0
fi
run apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}"
remove_policy

systemd_running=false
[[ -d /run/systemd/system ]] && systemd_running=true

for svc in "${services[@]}"; do
    new_pids="$(comm -13 <(printf '%s\n' "${pids_before[$svc]}") <(system_daemon_pids "$svc") |
        grep -v '^$' || true)"
    if [[ -n "$new_pids" ]]; then
        log "$svc was started by this install; stopping it (pids: ${new_pids//$'\n'/ })"
        if $systemd_running; then
            run systemctl stop "$svc.service" || true
        fi
        # shellcheck disable=SC2086 # word splitting of the pid list is intended
        kill -TERM $new_pids 2>/dev/null || true
        for _ in $(seq 1 60); do # squid waits shutdown_lifetime (30 s) before it exits
            alive=false
            for pid in $new_pids; do
                kill -0 "$pid" 2>/dev/null && alive=true
            done
            $alive || break
            sleep 1
        done
        if $alive; then
            # shellcheck disable=SC2086
            kill -KILL $new_pids 2>/dev/null || true
        fi
    fi
    # A squid/nginx/apache2 unit this run installed must not start at the next boot either.
    if $systemd_running && [[ " ${missing[*]} " == *" $svc "* ]]; then
        run systemctl disable "$svc.service" || true
    fi
done

still_missing=()
for pkg in "${missing[@]}"; do
    is_installed "$pkg" || still_missing+=("$pkg")
done
if ((${#still_missing[@]} != 0)); then
    log "error: still not installed: ${still_missing[*]}" >&2
    exit 1
fi
log "installed: ${missing[*]}"
