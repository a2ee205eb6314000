#!/usr/bin/env bash
# Builds the Windows installer from a cross-built authshim.exe with wixl (packaging/windows/
# authshim.wxs), patches what wixl 0.101 drops, checks the tables, and signs when asked:
#
#   scripts/msi.sh --exe authshim.exe --version X.Y.Z --out authshim.msi [--config FILE]
#
#   --config   the default config installed as %ProgramData%\authshim\authshim.json
#              (default packaging/authshim.example.json)
#
# Signing (Authenticode, osslsigncode): set AUTHSHIM_SIGN_PFX to a PKCS#12 file holding the
# code-signing certificate and its key, and AUTHSHIM_SIGN_PASSWORD_FILE to a file holding its
# password (or AUTHSHIM_SIGN_PASSWORD to the password itself; it is handed to osslsigncode in a
# file, never on a command line). authshim.exe is signed before it is packed, the MSI after the
# last table change (any later change would break its signature). AUTHSHIM_SIGN_TIMESTAMP_URL
# adds an RFC 3161 timestamp (needs the network). Without AUTHSHIM_SIGN_PFX nothing is signed.
#
# wixl 0.101 silently ignores some attributes; they are set in the tables with msibuild:
#   Component DefaultConfig  Attributes 400 = 0x100 64-bit | 0x10 Permanent | 0x80 NeverOverwrite
#                            (the upgrade keeps the admin's config, uninstall leaves it)
#   CustomAction *Rollback   Type 3410 = 0x800 no impersonation | 0x400 in script |
#                            0x100 rollback | 0x40 ignore exit code | 18 exe from File table
#                            (wixl would make it an immediate action that runs at once)
#   SecureCustomProperties   the public properties pass to the elevated server side
#   Upgrade WIX_UPGRADE_DETECTED  Attributes 513 = 0x200 version max inclusive | 1 migrate
#                            features: a rebuild of the same version replaces the installed one
#                            (what WiX's AllowSameVersionUpgrades does) instead of installing
#                            beside it
# and the result is read back, so a wixl that behaves differently fails here, not on a fleet.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exe="" version="" out="" config="$root/packaging/authshim.example.json"
while (($#)); do
    case "$1" in
    --exe) exe="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    *) echo "msi.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
fail() {
    echo "msi.sh: FAILED: $*" >&2
    exit 1
}
[[ -n "$exe" && -n "$version" && -n "$out" ]] ||
    { echo "usage: msi.sh --exe authshim.exe --version X.Y.Z --out authshim.msi [--config FILE]" >&2; exit 2; }
[[ -f "$exe" ]] || fail "no $exe"
[[ -f "$config" ]] || fail "no $config"
# MSI versions: major.minor.build, each part a number (major, minor <= 255, build <= 65535).
[[ "$version" =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] &&
    ((BASH_REMATCH[1] <= 255 && BASH_REMATCH[2] <= 255 && BASH_REMATCH[3] <= 65535)) ||
    fail "version '$version' is not an MSI ProductVersion (major.minor.build, 255.255.65535 at most)"
for tool in wixl msibuild msiinfo; do
    command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install wixl msitools)"
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
stage="$work/stage"
mkdir -p "$stage"
cp "$config" "$stage/authshim.json"

signing=false
if [[ -n "${AUTHSHIM_SIGN_PFX:-}" ]]; then
    command -v osslsigncode >/dev/null || fail "osslsigncode is missing (apt-get install osslsigncode)"
    [[ -f "$AUTHSHIM_SIGN_PFX" ]] || fail "AUTHSHIM_SIGN_PFX names no file: $AUTHSHIM_SIGN_PFX"
    passfile="$work/pass"
    if [[ -n "${AUTHSHIM_SIGN_PASSWORD_FILE:-}" ]]; then
        [[ -f "$AUTHSHIM_SIGN_PASSWORD_FILE" ]] || fail "AUTHSHIM_SIGN_PASSWORD_FILE names no file"
        (umask 077 && tr -d '\r\n' <"$AUTHSHIM_SIGN_PASSWORD_FILE" >"$passfile")
    else
        (umask 077 && printf '%s' "${AUTHSHIM_SIGN_PASSWORD:-}" >"$passfile")
    fi
    signing=true
fi

# sign IN OUT: Authenticode SHA-256; osslsigncode's output only on failure (it names no secret).
sign() {
    local args=(sign -pkcs12 "$AUTHSHIM_SIGN_PFX" -readpass "$passfile" -h sha256
        -n "authshim" -i "https://github.com/authshim/authshim")
    [[ -n "${AUTHSHIM_SIGN_TIMESTAMP_URL:-}" ]] && args+=(-ts "$AUTHSHIM_SIGN_TIMESTAMP_URL")
    if ! osslsigncode "${args[@]}" -in "$1" -out "$2" >"$work/sign.log" 2>&1; then
        cat "$work/sign.log" >&2
        fail "signing $(basename "$1")"
    fi
}

if $signing; then
    sign "$exe" "$stage/authshim.exe"
else
    cp "$exe" "$stage/authshim.exe"
fi

msi="$work/authshim.msi"
# -a x64: a 64-bit package (Template x64;1033); wixl ignores Package/@Platform. SrcDir must be
# relative: wixl refuses absolute source paths.
if ! (cd "$work" && wixl -a x64 -D Version="$version" -D SrcDir=stage -o "$msi" \
    "$root/packaging/windows/authshim.wxs") >"$work/wixl.log" 2>&1; then
    cat "$work/wixl.log" >&2
    fail "wixl"
fi
# wixl ignores unknown attributes with a GLib warning and exits 0: any output is a defect here.
if [[ -s "$work/wixl.log" ]]; then
    cat "$work/wixl.log" >&2
    fail "wixl printed warnings (an attribute it ignores?)"
fi

# Attributes is part of the Upgrade table's key: the row is replaced, not updated.
upgrade_code="$(msiinfo export "$msi" Upgrade | tr -d '\r' | awk -F'\t' '$7 == "WIX_UPGRADE_DETECTED" { print $1 }')"
[[ "$upgrade_code" =~ ^\{[0-9A-F-]{36}\}$ ]] || fail "wixl wrote no WIX_UPGRADE_DETECTED row"
msibuild "$msi" \
    -q "UPDATE \`Component\` SET \`Attributes\` = 400 WHERE \`Component\` = 'DefaultConfig'" \
    -q "UPDATE \`CustomAction\` SET \`Type\` = 3410 WHERE \`Action\` = 'SvcInstallRollback'" \
    -q "DELETE FROM \`Upgrade\` WHERE \`ActionProperty\` = 'WIX_UPGRADE_DETECTED'" \
    -q "INSERT INTO \`Upgrade\` (\`UpgradeCode\`, \`VersionMax\`, \`Attributes\`, \`ActionProperty\`) VALUES ('$upgrade_code', '$version', 513, 'WIX_UPGRADE_DETECTED')" \
    -q "UPDATE \`Property\` SET \`Value\` = 'WIX_DOWNGRADE_DETECTED;WIX_UPGRADE_DETECTED;UPSTREAM;LISTEN_PORT;BYPASS;APPLY_WINHTTP' WHERE \`Property\` = 'SecureCustomProperties'" ||
    fail "msibuild"

# table NAME: the rows of an MSI table, tab-separated, without the three header lines.
table() { msiinfo export "$msi" "$1" | tr -d '\r' | tail -n +4; }
field() { awk -F'\t' -v key="$2" -v col="$3" '$1 == key { print $col }' <<<"$1"; }
components="$(table Component)"
actions="$(table CustomAction)"
sequence="$(table InstallExecuteSequence)"
properties="$(table Property)"
[[ "$(field "$components" DefaultConfig 4)" == 400 ]] || fail "DefaultConfig's Attributes are not 400"
[[ "$(field "$components" AuthshimExe 4)" == 256 ]] || fail "AuthshimExe is not a 64-bit component"
[[ "$(field "$actions" SvcInstallRollback 2)" == 3410 ]] || fail "SvcInstallRollback is not a rollback action"
for action in ConfigSet SvcInstall WinhttpApply WinhttpReapply; do
    [[ "$(field "$actions" "$action" 2)" == 3090 ]] || fail "$action is not a deferred, checked action without impersonation"
done
for action in SvcUninstall SvcUninstallForUpgrade; do
    [[ "$(field "$actions" "$action" 2)" == 3154 ]] || fail "$action is not a deferred action without impersonation"
done
# The order the custom actions rely on: the service stopped before RemoveFiles, the files in
# place before the configuration, the old version removed before anything is installed.
seq() { field "$sequence" "$1" 3; }
(($(seq RemoveExistingProducts) > $(seq InstallValidate) && $(seq RemoveExistingProducts) < $(seq InstallInitialize))) ||
    fail "RemoveExistingProducts is not between InstallValidate and InstallInitialize"
(($(seq SvcUninstall) < $(seq RemoveFiles) && $(seq SvcUninstallForUpgrade) < $(seq RemoveFiles))) ||
    fail "the service is not stopped before RemoveFiles"
(($(seq InstallFiles) < $(seq ConfigSet) && $(seq ConfigSet) < $(seq SvcInstallRollback) &&
    $(seq SvcInstallRollback) < $(seq SvcInstall) && $(seq SvcInstall) < $(seq WinhttpApply) &&
    $(seq SvcInstall) < $(seq WinhttpReapply) && $(seq WinhttpApply) < $(seq InstallFinalize) &&
    $(seq WinhttpReapply) < $(seq InstallFinalize))) || fail "the install actions are out of order"
# StopServices stops the service (event 34: on install and on uninstall) before RemoveFiles.
[[ "$(table ServiceControl | awk -F'\t' '$2 == "authshim" { print $3 "/" $5 "/" $6 }')" == 34/1/AuthshimExe ]] ||
    fail "no ServiceControl row stopping the authshim service"
(($(seq StopServices) > $(seq InstallInitialize) && $(seq StopServices) < $(seq RemoveFiles))) ||
    fail "StopServices is not between InstallInitialize and RemoveFiles"
upgrades="$(table Upgrade)"
awk -F'\t' '$7 == "WIX_UPGRADE_DETECTED" && $3 == v && $5 == 513 { found = 1 } END { exit !found }' \
    v="$version" <<<"$upgrades" || fail "the upgrade row does not include version $version"
[[ "$(field "$properties" SecureCustomProperties 2)" == "WIX_DOWNGRADE_DETECTED;WIX_UPGRADE_DETECTED;UPSTREAM;LISTEN_PORT;BYPASS;APPLY_WINHTTP" ]] ||
    fail "SecureCustomProperties does not list the public properties"
[[ "$(field "$properties" ProductVersion 2)" == "$version" ]] || fail "ProductVersion is not $version"
msiinfo suminfo "$msi" | tr -d '\r' | grep -qx 'Template: x64;1033' || fail "not an x64 package"

if $signing; then
    sign "$msi" "$work/signed.msi"
    msi="$work/signed.msi"
fi
mkdir -p "$(dirname "$out")"
mv "$msi" "$out.tmp" && mv "$out.tmp" "$out"
product_code="$(field "$properties" ProductCode 2)"
echo "msi.sh: built $out ($(stat -c %s "$out") bytes): version $version, product code $product_code, $($signing && echo signed || echo unsigned)"
