#!/usr/bin/env bash
# Builds the Debian package from the release build (CPack, cmake/authshim_packaging.cmake) and
# checks it the way a Debian maintainer and an admin would, without systemd running:
#   1. control fields and file list: Version = project(VERSION) in CMakeLists.txt, Depends from
#      dpkg-shlibdeps, the conffile, root-owned files, a stripped binary, no lintian overrides;
#   2. lintian: no error and no warning, overrides ignored (--no-override);
#   3. the unit: `systemd-analyze verify` says nothing at all (it exits 0 on unknown keys and bad
#      values, printing them), the hardening the unit promises is in it, and `systemd-analyze
#      security` rates its exposure at most 2.0;
#   4. a throwaway root (dpkg --root, maintainer scripts run chrootless with DPKG_ROOT set, so
#      nothing of this machine is touched): install, `authshim --version` = the package version,
#      the unit enabled, an upgrade keeping an edited conffile, remove keeping it, purge leaving
#      nothing;
#   5. apt resolves its dependencies on this Debian (apt-get -s).
#
#   scripts/deb.sh [--no-build] [BUILD_DIR]     default build/release (preset `release`)
# Prints the package's path; exits non-zero with the reason on the first failed check.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

build=true
build_dir=build/release
while (($#)); do
    case "$1" in
    --no-build) build=false; shift ;;
    -*) echo "deb.sh: unknown option $1" >&2; exit 2 ;;
    *) build_dir="$1"; shift ;;
    esac
done

fail() {
    echo "deb.sh: FAILED: $*" >&2
    exit 1
}

if $build; then
    [[ -f "$build_dir/CMakeCache.txt" ]] || cmake --preset release >/dev/null
    cmake --build "$build_dir" --target authshim -j "$(nproc)"
fi
version="$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build_dir/CMakeCache.txt")"
[[ -n "$version" ]] || fail "no CMAKE_PROJECT_VERSION in $build_dir/CMakeCache.txt"
rm -rf "$build_dir/pkg"
# SOURCE_DATE_EPOCH: the last commit's time, for the changelog and man page dates and the
# archive's timestamps (reproducible); CPack's output is only shown on failure.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
cmake "$build_dir" >/dev/null # the dates of the changelog and man page
cpack_log="$(mktemp)"
if ! cpack --config "$build_dir/CPackConfig.cmake" -B "$build_dir/pkg" >"$cpack_log" 2>&1; then
    cat "$cpack_log" >&2
    rm -f "$cpack_log"
    fail "cpack"
fi
rm -f "$cpack_log"
arch="$(dpkg --print-architecture)"
deb="$root/$build_dir/pkg/authshim_${version}_${arch}.deb"
[[ -f "$deb" ]] || fail "cpack made no $deb"
echo "deb.sh: built $deb ($(stat -c %s "$deb") bytes)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# 1. Control fields and contents.
[[ "$(dpkg-deb -f "$deb" Package)" == authshim ]] || fail "Package is not authshim"
[[ "$(dpkg-deb -f "$deb" Version)" == "$version" ]] ||
    fail "Version $(dpkg-deb -f "$deb" Version) is not project(VERSION) $version"
depends="$(dpkg-deb -f "$deb" Depends)"
for lib in libc6 libssl3 libstdc++6; do
    [[ "$depends" == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
[[ "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" == /etc/authshim/authshim.json ]] ||
    fail "conffiles is not exactly /etc/authshim/authshim.json"
dpkg-deb -c "$deb" >"$tmp/contents"
for want in ./usr/bin/authshim ./etc/authshim/authshim.json ./lib/systemd/system/authshim.service \
    ./usr/share/doc/authshim/copyright ./usr/share/doc/authshim/changelog.gz \
    ./usr/share/man/man1/authshim.1.gz; do
    grep -qE "^-[rwx-]{9} root/root .* ${want//./\\.}\$" "$tmp/contents" || fail "no file $want"
done
grep -qE '^-rwxr-xr-x root/root .* \./usr/bin/authshim$' "$tmp/contents" ||
    fail "/usr/bin/authshim is not 0755"
if grep -q 'lintian/overrides' "$tmp/contents"; then fail "the package ships lintian overrides"; fi
dpkg-deb -x "$deb" "$tmp/x"
file_type="$(file -b "$tmp/x/usr/bin/authshim")"
[[ "$file_type" == *", stripped"* ]] || fail "/usr/bin/authshim is not stripped: $file_type"
echo "deb.sh: control fields and contents ok (Depends: $depends)"

# 2. lintian: errors and warnings fail, overrides (there are none) would be ignored.
if ! lintian --no-override --fail-on error,warning "$deb" >"$tmp/lintian" 2>&1; then
    cat "$tmp/lintian"
    fail "lintian"
fi
echo "deb.sh: lintian: no error, no warning$(grep -c '^[IP]:' "$tmp/lintian" |
    sed 's/^0$//; s/^\([1-9][0-9]*\)$/ (\1 info or pedantic tags)/')"

# 3. The unit, verified with ExecStart= pointing at the extracted binary (verify wants it to
# exist) and MANPATH at the packaged man page (for Documentation=man:authshim(1)).
unit="$tmp/x/lib/systemd/system/authshim.service"
for line in Type=notify 'ExecReload=/bin/kill -HUP $MAINPID' DynamicUser=yes \
    ProtectSystem=strict NoNewPrivileges=yes CapabilityBoundingSet= \
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
    'LoadCredential=authshim.upstream-password' \
    'ExecStart=/usr/bin/authshim run --config /etc/authshim/authshim.json'; do
    grep -qxF -- "$line" "$unit" || fail "the unit lacks the line '$line'"
done
mkdir "$tmp/units"
sed "s|^ExecStart=/usr/bin/authshim |ExecStart=$tmp/x/usr/bin/authshim |" "$unit" \
    >"$tmp/units/authshim.service"
rc=0
out="$(MANPATH="$tmp/x/usr/share/man" systemd-analyze verify "$tmp/units/authshim.service" 2>&1)" ||
    rc=$?
((rc == 0)) && [[ -z "$out" ]] || fail "systemd-analyze verify (exit $rc): $out"
if ! systemd-analyze security --offline=true --threshold=20 "$tmp/units/authshim.service" \
    >"$tmp/security" 2>&1; then
    tail -3 "$tmp/security"
    fail "systemd-analyze security: exposure above 2.0"
fi
echo "deb.sh: unit: systemd-analyze verify silent; $(tail -1 "$tmp/security" | sed 's/^→ //')"

# 4. Install, upgrade, remove and purge in an empty root.
r="$tmp/root"
mkdir -p "$r/var/lib/dpkg/info" "$r/var/lib/dpkg/updates"
: >"$r/var/lib/dpkg/status"
dpkg_root() {
    dpkg --root="$r" --force-script-chrootless --force-depends --force-confdef --force-confold \
        "$@" </dev/null >>"$tmp/dpkg.log" 2>&1 || {
        cat "$tmp/dpkg.log"
        fail "dpkg $*"
    }
}
dpkg_root -i "$deb"
[[ "$(dpkg-query --admindir="$r/var/lib/dpkg" -W -f='${db:Status-Abbrev}' authshim)" == "ii " ]] ||
    fail "not installed (ii) after dpkg -i"
[[ "$("$r/usr/bin/authshim" --version)" == "authshim $version" ]] ||
    fail "the installed authshim --version is '$("$r/usr/bin/authshim" --version)', not $version"
"$r/usr/bin/authshim" check --config "$r/etc/authshim/authshim.json" >"$tmp/check" 2>&1 ||
    fail "the installed configuration does not pass authshim check: $(cat "$tmp/check")"
[[ -L "$r/etc/systemd/system/multi-user.target.wants/authshim.service" ]] ||
    fail "the unit is not enabled after install"
# An upgrade to a newer package whose default configuration changed, over an edited one.
mkdir "$tmp/new"
dpkg-deb -R "$deb" "$tmp/new"
sed -i "s/^Version: .*/Version: $version+1/" "$tmp/new/DEBIAN/control"
sed -i 's/"level": "info"/"level": "warn"/' "$tmp/new/etc/authshim/authshim.json"
dpkg-deb --root-owner-group -b "$tmp/new" "$tmp/new.deb" >/dev/null
sed -i 's/127.0.0.1:3128/127.0.0.1:3130/' "$r/etc/authshim/authshim.json"
dpkg_root -i "$tmp/new.deb"
grep -q '127.0.0.1:3130' "$r/etc/authshim/authshim.json" || fail "the upgrade lost the edited configuration"
grep -q '"level": "warn"' "$r/etc/authshim/authshim.json.dpkg-dist" ||
    fail "the upgrade left no authshim.json.dpkg-dist with the new default"
dpkg_root -r authshim
[[ ! -e "$r/usr/bin/authshim" ]] || fail "/usr/bin/authshim left after remove"
[[ -f "$r/etc/authshim/authshim.json" ]] || fail "remove deleted the configuration (purge only)"
dpkg_root -P authshim
[[ ! -e "$r/etc/authshim" ]] || fail "/etc/authshim left after purge"
left="$(find "$r" -mindepth 1 -path "$r/var/lib/dpkg" -prune -o ! -type d -print)"
[[ -z "$left" ]] || fail "files left after purge: $left"
echo "deb.sh: throwaway root: install, upgrade keeping the edited conffile, remove, purge ok"

# 5. Its dependencies resolve on this Debian.
if ! apt-get -s install "$deb" >"$tmp/apt" 2>&1; then
    cat "$tmp/apt"
    fail "apt-get -s install: dependencies do not resolve"
fi
echo "deb.sh: apt-get -s install: dependencies resolve"
echo "deb.sh: $deb passed every check"
