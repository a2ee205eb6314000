#!/usr/bin/env bash
# Extracts the whole single-header cpp-httplib (declarations and code) from Debian's source
# package, with Debian's patches applied (0.11.4+ds-1+deb12u1 carries the CVE-2023-26130 fix),
# for the admin endpoint (cmake/authshim_dependencies.cmake runs this when its cache has none).
# Debian's binary package would not do: its /usr/include/httplib.h holds declarations only, and
# its libcpp-httplib.so brings OpenSSL, zlib and brotli into the process.
#
#   scripts/fetch-httplib.sh [CACHE_DIR]
#
# CACHE_DIR defaults to $AUTHSHIM_CACHE, else ~/.cache/authshim. The header goes to
# CACHE_DIR/cpp-httplib-<source version>/httplib.h, and the last line printed is that folder. A
# complete folder (its stamp file exists) is reused at once.
#
# Needs dpkg-dev (apt-get source), patch, xz and a deb-src entry; scripts/setup.sh provides them.
set -euo pipefail

log() { printf '[httplib] %s\n' "$*" >&2; }

cache="${1:-${AUTHSHIM_CACHE:-$HOME/.cache/authshim}}"

# The version of an installed libcpp-httplib-dev first (if any), then what the deb-src entries
# offer, newest first.
mapfile -t versions < <(
    {
        dpkg-query -W -f='${Version}\n' libcpp-httplib-dev 2>/dev/null || true
        apt-cache showsrc cpp-httplib 2>/dev/null | sed -n 's/^Version: //p' | sort -Vru
    } | awk 'NF && !seen[$0]++'
)
if ((${#versions[@]} == 0)); then
    log "error: no source package for cpp-httplib: add a deb-src entry (scripts/setup.sh does)"
    exit 1
fi
for version in "${versions[@]}"; do
    dir="$cache/cpp-httplib-$version"
    if [[ -f "$dir/.complete" && -f "$dir/httplib.h" ]]; then
        log "cached: $dir"
        echo "$dir"
        exit 0
    fi
done

mkdir -p "$cache"
work="$(mktemp -d "$cache/httplib-fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work" # apt-get source drops to user _apt, which must be able to write here
found=""
for version in "${versions[@]}"; do
    log "fetching the cpp-httplib $version source package"
    (cd "$work" && apt-get source --download-only "cpp-httplib=$version" >"$work/fetch.log" 2>&1) ||
        true
    upstream="${version%-*}"
    upstream="${upstream#*:}"
    orig="$(find "$work" -maxdepth 1 -name "cpp-httplib_${upstream}.orig.tar.*" ! -name '*.asc' |
        head -n 1)"
    if [[ -n "$orig" ]]; then
        found="$version"
        break
    fi
    log "no upstream tarball for $version:"
    tail -n 3 "$work/fetch.log" >&2
done
[[ -n "$found" ]] || {
    log "error: could not fetch any cpp-httplib source tarball"
    exit 1
}
version="$found"

mkdir "$work/src"
tar -xf "$orig" -C "$work/src" --strip-components=1
# Debian's patches (3.0 (quilt): debian/patches/series), when the Debian tarball came too.
debian_tar="$(find "$work" -maxdepth 1 -name "cpp-httplib_${version#*:}.debian.tar.*" | head -n 1)"
if [[ -n "$debian_tar" ]]; then
    tar -xf "$debian_tar" -C "$work/src"
    if [[ -f "$work/src/debian/patches/series" ]]; then
        while read -r patch _; do
            [[ -z "$patch" || "$patch" == \#* ]] && continue
            log "applying Debian patch $patch"
            patch -d "$work/src" -p1 --batch --quiet <"$work/src/debian/patches/$patch"
        done <"$work/src/debian/patches/series"
    fi
else
    log "warning: no Debian tarball for $version: the upstream header is used without Debian's patches"
fi
[[ -f "$work/src/httplib.h" ]] && grep -q 'inline void Server::stop()' "$work/src/httplib.h" || {
    log "error: $orig holds no complete httplib.h"
    exit 1
}

dir="$cache/cpp-httplib-$version"
rm -rf "$dir"
mkdir -p "$dir"
cp "$work/src/httplib.h" "$dir/httplib.h"
[[ -f "$work/src/LICENSE" ]] && cp "$work/src/LICENSE" "$dir/LICENSE"
echo "$version" >"$dir/.complete"
log "cpp-httplib $version header in $dir"
echo "$dir"
