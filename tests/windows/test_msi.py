r"""The Windows installer under Wine's msiexec, in a throwaway prefix, and its signing.

test_msi_install_upgrade_uninstall (one prefix, in order):
0. A new prefix; a non-empty WinHttpSettings value in the 64-bit view (the 32-bit one absent):
   what uninstalling must leave as it found it.
1. Two installs that must fail and leave nothing behind (but the default config, untouched:
   Wine's rollback keeps a Permanent component's file):
   a. LISTEN_PORT=3129, the admin endpoint's default port: `config set` refuses the edited config
      (the first custom action), the install rolls back: no exe, no config, no service.
   b. A broken WinHTTP saved state (HKLM\SOFTWARE\authshim\WinHttp with Applied64 only) and
      APPLY_WINHTTP=1: `winhttp apply` refuses it after the service was installed and started,
      so the rollback custom action (`service uninstall`) runs: no service, no process, no exe.
2. `msiexec /i authshim.msi /qn UPSTREAM=... LISTEN_PORT=<free> BYPASS=... APPLY_WINHTTP=1`:
   the service runs and accepts connections on that port, the config holds the three values, the
   WinHTTP value (both views) points at it with that bypass list, ARP shows the version, and
   `authshim --version` prints it. Then the README's follow-up, `credentials set` with the
   password on stdin: a DPAPI entry, used by the first upstream, no plain password.
3. An upgrade: the config edited by an admin, an MSI of the next version (same exe, built by
   scripts/msi.sh) installed with no properties: the config byte for byte as edited, the service
   running again on the same port, WinHTTP still applied with the bypass list from the config,
   only the new version in ARP.
4. `msiexec /x` by the upgraded MSI: no service, no authshim process, the port closed, nothing
   under Program Files, %ProgramData%\authshim holding only the kept config (logs removed), the
   WinHTTP value byte for byte as in step 0 (and the 32-bit one absent again), no
   HKLM\SOFTWARE\authshim, no ARP entry.
5. Installed again with APPLY_WINHTTP=1; the same package once more (maintenance: still one
   product, the service running); WinHTTP then changed by hand, and a rebuild of the same
   version (a new product code) installed: it replaces the installed product (one ARP entry)
   and leaves the hand-made WinHTTP setting alone, as does its uninstall.

test_msi_signing: a throwaway self-signed code-signing certificate; scripts/msi.sh with
AUTHSHIM_SIGN_PFX and AUTHSHIM_SIGN_PASSWORD_FILE signs authshim.exe and the MSI;
`osslsigncode verify -CAfile` accepts both (the exe as extracted from the MSI by msiextract), the
unsigned MSI of the build is reported unsigned, and the password is in no output.

Run by CTest (tests/windows/CMakeLists.txt) with AUTHSHIM_MSI (the built MSI), AUTHSHIM_EXE,
AUTHSHIM_VERSION and AUTHSHIM_SOURCE_DIR. Wine's msiexec differs from Windows' in ways the
assertions allow for (../shared/docs/WINDOWS-TESTING.md and the comments below): a failed install
exits 1627 there (1603 on Windows), so only "not 0" is asserted; exit codes reach Linux modulo
256; the old version's uninstall during an upgrade does not see UPGRADINGPRODUCTCODE."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
_SOURCE = Path(os.environ.get("AUTHSHIM_SOURCE_DIR") or _HERE.parents[1])
_INTEGRATION = _SOURCE / "tests" / "integration"
for _p in (str(_HERE), str(_INTEGRATION)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from harness.util import LOOPBACK, candidate_port, port_accepts  # noqa: E402

import wine as _wine  # noqa: E402
from wine import (CONNECTIONS_KEY, SETTINGS_VALUE, STATE_KEY, Steps, WinePrefix,  # noqa: E402
                  decode_winhttp_settings, encode_winhttp_settings)

EXE_WIN = "C:\\Program Files\\authshim\\authshim.exe"
DATA_WIN = "C:\\ProgramData\\authshim"
CONFIG_WIN = DATA_WIN + "\\authshim.json"
UNINSTALL_KEY = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
UPSTREAM = "squid.corp.example:3128"
BYPASS = "*.corp.example;10.*;<local>"
INITIAL = encode_winhttp_settings("10.9.9.9:8080", "<local>")
PASSWORD = "Msi-" + os.urandom(9).hex()
EXAMPLE = _SOURCE / "packaging" / "authshim.example.json"  # what the MSI installs


def _env_file(var: str) -> Path:
    value = os.environ.get(var)
    if not value:
        pytest.fail(f"{var} is not set (see tests/windows/CMakeLists.txt)", pytrace=False)
    path = Path(value)
    if not path.is_file():
        pytest.fail(f"{var}={value} is not a file (build the mingw preset first)", pytrace=False)
    return path


def _version() -> str:
    version = os.environ.get("AUTHSHIM_VERSION", "")
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        pytest.fail(f"AUTHSHIM_VERSION={version!r} is not X.Y.Z", pytrace=False)
    return version


def _build_msi(out: Path, version: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(_SOURCE / "scripts" / "msi.sh"), "--exe", str(_env_file("AUTHSHIM_EXE")),
         "--version", version, "--out", str(out)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def tmp_root():
    base = os.environ.get("AUTHSHIM_TEST_TMPDIR") or None
    root = Path(tempfile.mkdtemp(prefix="authshim-msi-", dir=base))
    try:
        yield root
    finally:
        if not os.environ.get("AUTHSHIM_KEEP_TMP"):
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def prefix(tmp_root):
    keep = bool(os.environ.get("AUTHSHIM_KEEP_TMP"))
    p = WinePrefix(tmp_root / "wineprefix", tmp_root / "wine-output",
                   orphan_cleanup=[] if keep else [tmp_root])
    try:
        yield p
    finally:
        problems = p.destroy()
        if problems:
            print("cleanup problems:\n" + "\n".join(problems), flush=True)


@pytest.mark.skipif(not _wine.wine_available(), reason="wine is not installed")
def test_msi_install_upgrade_uninstall(tmp_root, prefix):
    msi = _env_file("AUTHSHIM_MSI")
    version = _version()
    steps = Steps()
    logs = prefix.drive_c / "authshim-test"

    def msiexec(action: str, package: Path, *properties: str, label: str):
        """msiexec ACTION PACKAGE /qn with a verbose log (evidence() reads it); the package is
        copied into the prefix and named by its Windows path, as an admin would."""
        logs.mkdir(parents=True, exist_ok=True)
        shutil.copy2(package, logs / package.name)
        log_win = f"C:\\authshim-test\\{label}.log"
        r = prefix.wine("msiexec", action, f"C:\\authshim-test\\{package.name}", "/qn",
                        "/l*v", log_win, *properties, label=f"msiexec {label}", timeout=240)
        return r, log_win

    def evidence(log_win: str) -> str:
        """The custom actions' lines of a verbose msiexec log, and the service's own log."""
        text = ""
        log = prefix.unix_path(log_win)
        if log.exists():
            raw = log.read_bytes()
            body = raw.decode("utf-16-le", "replace") if raw[:2] == b"\xff\xfe" else \
                raw.decode("utf-8", "replace")
            lines = [ln for ln in body.splitlines()
                     if re.search(r"CustomAction|ConfigSet|SvcInstall|SvcUninstall|Winhttp|"
                                  r"Return value|rollback|error", ln, re.I)]
            text += f"--- {log_win} (custom actions) ---\n" + "\n".join(lines[-80:]) + "\n"
        service_log = prefix.unix_path(DATA_WIN + "\\logs\\authshim.log")
        if service_log.exists():
            text += f"--- service log (tail) ---\n{service_log.read_text(errors='replace')[-3000:]}"
        return text

    def setting(view: int) -> bytes | None:
        data, _ = prefix.reg_read_binary(CONNECTIONS_KEY, SETTINGS_VALUE, view)
        return data

    def service_state() -> str | None:
        """`sc query authshim`'s STATE (e.g. RUNNING); None when there is no such service."""
        r = prefix.wine("sc", "query", "authshim", label="sc query authshim")
        m = re.search(r"STATE\s*:\s*\d+\s+(\w+)", r.out)
        return m.group(1) if m else None

    def wait_for(predicate, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.25)
        return predicate()

    def arp_versions() -> list[str]:
        """DisplayVersion of every ARP entry named authshim."""
        r = prefix.wine("reg", "query", UNINSTALL_KEY, "/s", label="reg query Uninstall")
        entries, current = [], {}
        for line in r.out.replace("\r", "").splitlines() + ["HKEY_END"]:
            if line.startswith("HKEY_"):
                if current:
                    entries.append(current)
                current = {}
                continue
            m = re.match(r"\s+(\w+)\s+REG_\w+\s+(.*)$", line)
            if m:
                current[m.group(1)] = m.group(2).strip()
        return sorted(e.get("DisplayVersion", "?") for e in entries
                      if e.get("DisplayName") == "authshim")

    def nothing_installed(what: str):
        assert service_state() is None, f"{what}: the service exists"
        assert not prefix.unix_path(EXE_WIN).exists(), f"{what}: authshim.exe is on disk"
        assert not prefix.processes("authshim.exe"), \
            f"{what}: authshim.exe runs: {prefix.processes('authshim.exe')}"
        assert arp_versions() == [], f"{what}: ARP lists authshim"

    exe_unix = prefix.unix_path(EXE_WIN)
    config_unix = prefix.unix_path(CONFIG_WIN)
    try:
        with steps("0. Wine prefix and a WinHTTP setting to keep"):
            prefix.boot()
            assert port_accepts(3129) is False, \
                "127.0.0.1:3129 (the default admin port of the installed config) is in use"
            r = prefix.reg_add_binary(CONNECTIONS_KEY, SETTINGS_VALUE, INITIAL, 64)
            assert r.returncode == 0, r.describe()
            assert setting(64) == INITIAL
            assert setting(32) is None, "the 32-bit view has a WinHttpSettings value already"

        with steps("1a. LISTEN_PORT clashing with the admin port: refused, rolled back"):
            r, log = msiexec("/i", msi, "LISTEN_PORT=3129", "APPLY_WINHTTP=1", label="fail-port")
            assert r.returncode != 0, f"install succeeded: {r.describe()}\n{evidence(log)}"
            body = evidence(log)
            assert "ConfigSet" in body, f"ConfigSet did not run:\n{body}"
            nothing_installed("after the refused install")
            # Wine's rollback keeps the file of a Permanent component: at most the untouched
            # default may stay (the next install keeps it and writes its properties into it).
            if config_unix.exists():
                assert config_unix.read_bytes() == EXAMPLE.read_bytes(), \
                    "the rolled-back install left an edited config"
            assert setting(64) == INITIAL and setting(32) is None

        with steps("1b. winhttp apply failing after the service started: rollback action runs"):
            r = prefix.reg_add_binary(STATE_KEY, "Applied64", b"\x18\x00\x00\x00", 64)
            assert r.returncode == 0, r.describe()
            port = candidate_port()
            r, log = msiexec("/i", msi, f"LISTEN_PORT={port}", "APPLY_WINHTTP=1",
                             label="fail-winhttp")
            body = evidence(log)
            assert r.returncode != 0, f"install succeeded: {r.describe()}\n{body}"
            assert "SvcInstallRollback" in body, f"the rollback action did not run:\n{body}"
            nothing_installed("after the rolled-back install")
            assert not port_accepts(port), f"port {port} still accepts connections"
            assert setting(64) == INITIAL and setting(32) is None
            r = prefix.wine("reg", "delete", "HKLM\\SOFTWARE\\authshim", "/f", "/reg:64",
                            label="reg delete the broken state")
            assert r.returncode == 0, r.describe()

        port = candidate_port()
        with steps("2. silent install with UPSTREAM, LISTEN_PORT, BYPASS, APPLY_WINHTTP=1"):
            r, log = msiexec("/i", msi, f"UPSTREAM={UPSTREAM}", f"LISTEN_PORT={port}",
                             f"BYPASS={BYPASS}", "APPLY_WINHTTP=1", label="install")
            assert r.returncode == 0, f"{r.describe()}\n{evidence(log)}"
            assert service_state() == "RUNNING", evidence(log)
            assert wait_for(lambda: port_accepts(port), 20), \
                f"nothing listens on {LOOPBACK}:{port}\n{evidence(log)}"
            config = json.loads(config_unix.read_text())
            assert config["upstreams"][0]["address"] == UPSTREAM
            assert config["listen"] == [f"127.0.0.1:{port}"]
            assert config["winhttp"] == {"bypass": BYPASS}
            for view in (64, 32):
                s = decode_winhttp_settings(setting(view))
                assert (s.proxy, s.bypass, s.flags) == (f"127.0.0.1:{port}", BYPASS, 3), \
                    f"{view}-bit view: {s}"
            assert arp_versions() == [version]
            r = prefix.wine(EXE_WIN, "--version", label="authshim --version")
            assert r.out.strip() == f"authshim {version}", r.describe()

        with steps("2b. the README's follow-up: credentials set (password on stdin)"):
            pw_file = tmp_root / "password"
            pw_file.write_text(PASSWORD + "\n")
            r = prefix.wine(EXE_WIN, "credentials", "set", "machine", "--username", "CORP\\svc",
                            label="credentials set", stdin=pw_file)
            pw_file.unlink()
            assert r.returncode == 0, r.describe()
            assert PASSWORD not in r.out + r.err
            text = config_unix.read_text()
            assert PASSWORD not in text
            config = json.loads(text)
            assert config["upstreams"][0]["credentials"] == "machine", text
            assert set(config["credentials"]["machine"]["password"]) == {"dpapi"}, text

        next_version = re.sub(r"\d+$", lambda m: str(int(m.group()) + 1), version)
        with steps(f"3. upgrade to {next_version}: the edited config kept"):
            edited = config_unix.read_bytes().replace(b'"level": "info"', b'"level": "debug"')
            assert b'"level": "debug"' in edited
            config_unix.write_bytes(edited)
            next_msi = tmp_root / f"authshim-{next_version}.msi"
            b = _build_msi(next_msi, next_version)
            assert b.returncode == 0, f"msi.sh: {b.stdout}\n{b.stderr}"
            r, log = msiexec("/i", next_msi, label="upgrade")
            assert r.returncode == 0, f"{r.describe()}\n{evidence(log)}"
            assert config_unix.read_bytes() == edited, "the upgrade changed the config"
            assert service_state() == "RUNNING", evidence(log)
            assert wait_for(lambda: port_accepts(port), 20), evidence(log)
            for view in (64, 32):
                s = decode_winhttp_settings(setting(view))
                assert (s.proxy, s.bypass) == (f"127.0.0.1:{port}", BYPASS), \
                    f"{view}-bit view after the upgrade: {s}\n{evidence(log)}"
            assert arp_versions() == [next_version]

        with steps("4. uninstall: only the config is left, WinHTTP as before"):
            r, log = msiexec("/x", next_msi, label="uninstall")
            assert r.returncode == 0, f"{r.describe()}\n{evidence(log)}"
            nothing_installed("after the uninstall")
            assert wait_for(lambda: not port_accepts(port), 10), f"port {port} still open"
            assert not exe_unix.parent.exists(), \
                f"left under Program Files: {list(exe_unix.parent.iterdir())}"
            left = sorted(str(p.relative_to(config_unix.parent))
                          for p in config_unix.parent.rglob("*"))
            assert left == ["authshim.json"], f"left in {DATA_WIN}: {left}"
            assert config_unix.read_bytes() == edited
            assert setting(64) == INITIAL, "the 64-bit WinHTTP value was not restored"
            assert setting(32) is None, "the 32-bit WinHTTP value was left behind"
            exists, r = prefix.reg_key_exists("HKLM\\SOFTWARE\\authshim")
            assert not exists, f"HKLM\\SOFTWARE\\authshim is left: {r.out}"

        with steps("5. re-install, same-version rebuild, a WinHTTP setting changed by hand"):
            r, log = msiexec("/i", next_msi, "APPLY_WINHTTP=1", label="install-again")
            assert r.returncode == 0, f"{r.describe()}\n{evidence(log)}"
            # The same package once more: maintenance, not a second product.
            r, log = msiexec("/i", next_msi, label="same-package")
            assert r.returncode == 0, f"{r.describe()}\n{evidence(log)}"
            assert service_state() == "RUNNING", evidence(log)
            assert arp_versions() == [next_version]
            # Someone points WinHTTP elsewhere by hand; then a rebuild of the same version (a
            # new product code) replaces the installed one instead of installing beside it, and
            # leaves that setting alone.
            by_hand = encode_winhttp_settings("10.7.7.7:8080", "<local>")
            for view in (64, 32):
                assert prefix.reg_add_binary(CONNECTIONS_KEY, SETTINGS_VALUE, by_hand,
                                             view).returncode == 0
            rebuilt = tmp_root / "rebuilt" / next_msi.name
            b = _build_msi(rebuilt, next_version)
            assert b.returncode == 0, f"msi.sh: {b.stdout}\n{b.stderr}"
            r, log = msiexec("/i", rebuilt, label="same-version")
            assert r.returncode == 0, f"{r.describe()}\n{evidence(log)}"
            assert arp_versions() == [next_version], "the rebuild was installed beside the other"
            assert service_state() == "RUNNING", evidence(log)
            assert setting(64) == by_hand and setting(32) == by_hand, \
                f"the upgrade overwrote a WinHTTP setting changed by hand\n{evidence(log)}"
            r, log = msiexec("/x", rebuilt, label="uninstall-rebuilt")
            assert r.returncode == 0, f"{r.describe()}\n{evidence(log)}"
            nothing_installed("after uninstalling the rebuild")
            assert setting(64) == by_hand, "uninstall changed a WinHTTP setting set by hand"
    finally:
        print(steps.summary())


@pytest.mark.skipif(shutil.which("osslsigncode") is None, reason="osslsigncode is not installed")
def test_msi_signing(tmp_root):
    unsigned = _env_file("AUTHSHIM_MSI")
    version = _version()
    d = tmp_root / "signing"
    d.mkdir()
    password = "pfx-" + os.urandom(9).hex()

    def run(*args):
        return subprocess.run(list(args), stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=120, cwd=d)

    r = run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-sha256", "-days", "2", "-nodes",
            "-keyout", "key.pem", "-out", "cert.pem", "-subj", "/CN=authshim test signing",
            "-addext", "extendedKeyUsage=codeSigning", "-addext", "keyUsage=digitalSignature")
    assert r.returncode == 0, r.stderr
    (d / "password").write_text(password + "\n")
    r = run("openssl", "pkcs12", "-export", "-out", "sign.pfx", "-inkey", "key.pem", "-in",
            "cert.pem", "-passout", f"file:{d / 'password'}")
    assert r.returncode == 0, r.stderr

    signed = d / "authshim-signed.msi"
    b = _build_msi(signed, version, {"AUTHSHIM_SIGN_PFX": str(d / "sign.pfx"),
                                     "AUTHSHIM_SIGN_PASSWORD_FILE": str(d / "password")})
    assert b.returncode == 0, f"msi.sh: {b.stdout}\n{b.stderr}"
    assert "signed" in b.stdout and "unsigned" not in b.stdout, b.stdout
    assert password not in b.stdout + b.stderr

    v = run("osslsigncode", "verify", "-CAfile", "cert.pem", "-in", str(signed))
    assert v.returncode == 0 and "Signature verification: ok" in v.stdout, v.stdout + v.stderr

    extracted = d / "extracted"
    extracted.mkdir()
    r = subprocess.run(["msiextract", "-C", str(extracted), str(signed)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    exes = list(extracted.rglob("authshim.exe"))
    assert len(exes) == 1, f"extracted: {list(extracted.rglob('*'))}"
    v = run("osslsigncode", "verify", "-CAfile", "cert.pem", "-in", str(exes[0]))
    assert v.returncode == 0 and "Signature verification: ok" in v.stdout, v.stdout + v.stderr

    # The build's own MSI is unsigned (no AUTHSHIM_SIGN_PFX in CI): verify says so.
    v = run("osslsigncode", "verify", "-CAfile", "cert.pem", "-in", str(unsigned))
    # ("No signature found" from osslsigncode 2.9, "MSI file has no signature" from bookworm's 2.5)
    assert v.returncode != 0 and re.search(r"no signature", v.stdout + v.stderr, re.I), \
        v.stdout + v.stderr
    # A wrong password fails the build with osslsigncode's reason, and builds nothing.
    (d / "wrong").write_text("not-the-password\n")
    bad = d / "bad.msi"
    b = _build_msi(bad, version, {"AUTHSHIM_SIGN_PFX": str(d / "sign.pfx"),
                                  "AUTHSHIM_SIGN_PASSWORD_FILE": str(d / "wrong")})
    assert b.returncode != 0 and "signing authshim.exe" in b.stderr, b.stdout + b.stderr
    assert not bad.exists()
