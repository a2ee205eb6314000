#!/usr/bin/env bash
# Builds static OpenSSL 3 (libcrypto.a, libssl.a and headers) for x86_64-w64-mingw32 from Debian's
# source package, for the Windows cross-build (cmake/mingw-w64-x86_64.cmake). Debian ships no
# mingw OpenSSL.
#
#   scripts/build-openssl-mingw.sh [CACHE_DIR]
#
# CACHE_DIR defaults to $AUTHSHIM_CACHE, else ~/.cache/authshim. The result is installed into
# CACHE_DIR/openssl-mingw64-<source version>, and the last line printed is that prefix. A prefix
# that is complete (its stamp file exists) is reused at once: the build runs once per source
# version (~100 s on 2 cores).
#
# Kept: the legacy provider (MD4, for NTLM later), built into libcrypto (no-module). Left out:
# shared libraries, tests, engines, DSO loading, the console UI, CAPI engine, async.
#
# Needs the mingw-w64 toolchain, dpkg-dev (apt-get source) and a deb-src entry for bookworm;
# scripts/setup.sh --windows provides all three.
set -euo pipefail

log() { printf '[openssl-mingw] %s\n' "$*" >&2; }

cache="${1:-${AUTHSHIM_CACHE:-$HOME/.cache/authshim}}"
cross=x86_64-w64-mingw32-
command -v "${cross}gcc-posix" >/dev/null || {
    log "error: ${cross}gcc-posix not found (Debian package gcc-mingw-w64-x86-64-posix)"
    exit 1
}

# The versions the deb-src entries offer, newest first. The newest whose upstream tarball can be
# fetched is built (a mirror may lack some files of a source package: only the orig tarball is
# needed, and apt checks its hash against the Sources index).
mapfile -t versions < <(apt-cache showsrc openssl 2>/dev/null | sed -n 's/^Version: //p' |
    grep '^3\.' | sort -Vru)
if ((${#versions[@]} == 0)); then
    log "error: no 3.x source package for openssl: add a deb-src entry (scripts/setup.sh --windows does)"
    exit 1
fi
for version in "${versions[@]}"; do
    prefix="$cache/openssl-mingw64-$version"
    if [[ -f "$prefix/.complete" ]]; then
        log "cached: $prefix"
        echo "$prefix"
        exit 0
    fi
done

start=$SECONDS
mkdir -p "$cache"
work="$(mktemp -d "$cache/openssl-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
tarball=""
for version in "${versions[@]}"; do
    log "fetching the openssl $version source package"
    (cd "$work" && apt-get source --download-only "openssl=$version" >"$work/fetch.log" 2>&1) ||
        true
    upstream="${version%%-*}"
    upstream="${upstream#*:}"
    tarball="$(find "$work" -maxdepth 1 -name "openssl_${upstream}.orig.tar.*" ! -name '*.asc' |
        head -n 1)"
    [[ -n "$tarball" ]] && break
    log "no upstream tarball for $version:"
    tail -n 3 "$work/fetch.log" >&2
done
[[ -n "$tarball" ]] || {
    log "error: could not fetch any openssl source tarball"
    exit 1
}
prefix="$cache/openssl-mingw64-$version"
stamp="$prefix/.complete"
# Unpack the upstream tarball only; Debian's patches concern Debian's own packaging and paths.
mkdir "$work/src"
tar -xf "$tarball" -C "$work/src" --strip-components=1

rm -rf "$prefix"
log "configuring for mingw64 (prefix $prefix)"
cd "$work/src"
# CC/CXX are the posix-thread compilers, like the rest of the cross-build.
CC="${cross}gcc-posix" CXX="${cross}g++-posix" AR="${cross}ar" RANLIB="${cross}ranlib" \
    RC="${cross}windres" \
    ./Configure mingw64 --prefix="$prefix" --libdir=lib --openssldir="$prefix/ssl" \
    no-shared no-tests no-module no-engine no-dso no-ui-console no-capieng no-async \
    >"$work/configure.log" 2>&1 || {
    tail -n 30 "$work/configure.log" >&2
    exit 1
}
log "building libcrypto and libssl"
make -j "$(nproc)" build_libs >"$work/build.log" 2>&1 || {
    tail -n 40 "$work/build.log" >&2
    exit 1
}
make install_dev >"$work/install.log" 2>&1 || {
    tail -n 20 "$work/install.log" >&2
    exit 1
}
[[ -f "$prefix/lib/libcrypto.a" && -f "$prefix/lib/libssl.a" && -f "$prefix/include/openssl/ssl.h" ]] || {
    log "error: the install is incomplete"
    exit 1
}
echo "$version" >"$stamp"
log "built openssl $version for mingw64 in $((SECONDS - start)) s"
echo "$prefix"
