r"""End to end on Windows, under Wine: the cross-built authshim.exe as a Windows service in a
throwaway Wine prefix, a WinHTTP client (winhttp_fetch.exe, WINHTTP_ACCESS_TYPE_DEFAULT_PROXY as
a service uses it) fetching a CRL-sized file from an origin behind a real Squid that demands
Digest, which Wine's WinHTTP cannot answer itself.

0. A new prefix (`wineboot --init; wineserver -w; wineserver -p`); authshim.exe copied to
   C:\Program Files\authshim, winhttp_fetch.exe to C:\authshim-test.
1. Squid 5 (Digest through digest_file_auth; `hosts_file` maps crl.authshim.test to 127.0.0.1)
   and nginx serving ~200 KB of random bytes.
2. A non-empty WinHttpSettings value (proxy 10.9.9.9:8080, bypass <local>) in the 64-bit view,
   read back byte for byte (`reg export`): what `winhttp revert` must restore.
3. C:\ProgramData\authshim\authshim.json (the default location; its upstream already names
   credentials "machine", which do not exist yet), then `credentials set machine --username
   USER` with the password on stdin: a DPAPI blob, no plain password.
4. `service install --start demand` (status: 3), `service start`: the listen port accepts
   connections, status 0, an authshim.exe process of this prefix runs.
5. `winhttp apply`: WinHttpSettings = 0x18, counter 0, flags 3, authshim's address, <local> in
   both registry views; HKLM\SOFTWARE\authshim\WinHttp\Previous64 = the bytes of step 2.
6. winhttp_fetch through the machine proxy (authshim): 200 and the origin's bytes; straight at
   Squid: 407. Squid logged the authenticated request with the user name, and no 407 for
   requests that carried credentials.
6b. The admin endpoint (from the Linux side): /healthz 200, /status shows Digest verified and
   the 2xx, /metrics the 200. `authshim reload` through POST /reload; then, with admin.listen
   set to null in the file, `authshim reload` sends SERVICE_CONTROL_PARAMCHANGE through the
   service control manager: the service logs the reload and closes its admin endpoint.
7. `service stop` (status: 3), `service uninstall` (reverts the WinHTTP setting it applied),
   `winhttp revert` (then nothing is left to revert): not installed (exit 4), no authshim.exe
   process left, both views exactly as in step 2, the saved state gone, the port closed.
8. The service's log shows the listen address, the accepted credentials and the fetch; the
   password (and base64(user:password), the Digest HA1s) is in no captured output, in no file
   of C:\ProgramData\authshim and in none of the prefix's registry files.

Cleanup, also on failure: `wineserver -k; wineserver -w`, the prefix removed. Should the test
process die without its teardown (a CTest timeout), a watchdog does the same. The test is
skipped when wine, squid or nginx is missing, and fails when AUTHSHIM_EXE or WINHTTP_FETCH_EXE
is not set or not a file.

Wine quirks this relies on (docs WINDOWS-TESTING.md): Wine only honours a WinHttpSettings value
with version 0x18 and counter 0; Wine's WinHTTP sends origin-form requests when the URL's host
string equals the proxy's host string, and the default bypass `<local>` sends dotless names
(localhost) direct, hence the dotted name only Squid resolves. Each step's duration and every
Wine command's are printed (seen with `-rA` or `-s`).

Run by CTest (tests/windows/CMakeLists.txt) with AUTHSHIM_EXE, WINHTTP_FETCH_EXE and
AUTHSHIM_SOURCE_DIR. The executables are copied into the prefix so that the service's command
line is a Windows path, as after an install, and a rebuild during the run changes nothing.
AUTHSHIM_KEEP_TMP keeps the tmp folder (Wine command output, the final config and log; the
prefix itself is always removed)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets as pysecrets
import shutil
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

from harness import proc as _proc  # noqa: E402
from harness.nginx import NGINX, Nginx  # noqa: E402
from harness.secrets import needle_forms  # noqa: E402
from harness.squid import (CONN_LOG, DIGEST_FILE_AUTH, Squid, SquidAuth, SquidWindow,  # noqa: E402
                           squid_available)
from harness.squid_auth import write_digest_file  # noqa: E402
from harness.util import LOOPBACK, candidate_port, port_accepts, wait_until_quiet  # noqa: E402

import wine as _wine  # noqa: E402
from wine import (CONNECTIONS_KEY, SETTINGS_VALUE, STATE_KEY, Steps, WinePrefix,  # noqa: E402
                  decode_winhttp_settings, encode_winhttp_settings)

pytestmark = [
    pytest.mark.skipif(not _wine.wine_available(), reason="wine is not installed"),
    pytest.mark.skipif(not squid_available(), reason="squid is not installed"),
    pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed"),
]

REALM = "authshim-wine-e2e"
USER = "svc-crl"
# A dotted name (WinHTTP's <local> bypass only covers dotless ones) that only Squid resolves.
ORIGIN_HOST = "crl.authshim.test"
CRL_NAME = "authshim-test.crl"
CRL_SIZE = 200 * 1024 + 123
INITIAL_PROXY = "10.9.9.9:8080"
INITIAL_BYPASS = "<local>"
AUTHSHIM_DIR = "C:\\ProgramData\\authshim"
CONFIG_WIN = AUTHSHIM_DIR + "\\authshim.json"
LOG_WIN = AUTHSHIM_DIR + "\\authshim.log"
EARLY_LOG_WIN = AUTHSHIM_DIR + "\\logs\\authshim.log"  # the service's log until its config loads
EXE_WIN = "C:\\Program Files\\authshim\\authshim.exe"
FETCH_WIN = "C:\\authshim-test\\winhttp_fetch.exe"


def _exe(var: str) -> Path:
    value = os.environ.get(var)
    if not value:
        pytest.fail(f"{var} is not set (see tests/windows/CMakeLists.txt)", pytrace=False)
    path = Path(value)
    if not path.is_file():
        pytest.fail(f"{var}={value} is not a file (build the mingw preset first)", pytrace=False)
    return path


def http_get(url: str) -> tuple[int, str]:
    """GET `url` (the service's admin endpoint) from the Linux side: (status, body text)."""
    import urllib.error
    import urllib.request
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a *_proxy
    try:
        with opener.open(url, timeout=20) as res:
            return res.status, res.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def _print_runs(prefix: WinePrefix):
    print("wine commands (exit status, duration):")
    for r in prefix.runs:
        status = "timeout" if r.timed_out else f"exit {r.returncode}"
        print(f"  {r.seconds:6.2f}s  {status:8}  {' '.join(r.argv)}")


# ---------------------------------------------------------------------------------------------
# Fixtures (this folder has no conftest: everything the test needs is here)


@pytest.fixture(scope="module")
def tmp_root():
    base = os.environ.get("AUTHSHIM_TEST_TMPDIR") or None
    root = Path(tempfile.mkdtemp(prefix="authshim-wine-e2e-", dir=base))
    os.chmod(root, 0o755)  # Squid's helpers run as user proxy and must reach their folder
    try:
        yield root
    finally:
        _proc.kill_all_live()
        if not os.environ.get("AUTHSHIM_KEEP_TMP"):
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def password():
    # Random per run (no ':' for digest_file_auth's plain format): never a false secret hit.
    return "Dg-" + pysecrets.token_urlsafe(15).replace(":", "x")


@pytest.fixture(scope="module")
def squid(tmp_root, password):
    s = Squid(tmp_root, name="squid-digest", extra="")
    d = s.prepare_dir()
    hosts = d / "hosts"
    hosts.write_text(f"127.0.0.1 {ORIGIN_HOST}\n")
    os.chmod(hosts, 0o644)
    s.extra = CONN_LOG.format(dir=d) + f"hosts_file {hosts}\n"
    passwords = write_digest_file(d / "digest-passwords", {USER: password}, REALM)
    s.auth = [SquidAuth("digest", [DIGEST_FILE_AUTH, passwords], realm=REALM,
                        options=["nonce_max_count 50"])]
    try:
        yield s  # started by the test (step 1, timed); stopped here in any case
    finally:
        s.stop()


@pytest.fixture(scope="module")
def origin(tmp_root):
    n = Nginx(tmp_root)
    try:
        yield n  # started by the test (step 1)
    finally:
        n.stop()


@pytest.fixture(scope="module")
def prefix(tmp_root):
    keep = bool(os.environ.get("AUTHSHIM_KEEP_TMP"))
    p = WinePrefix(tmp_root / "wineprefix", tmp_root / "wine-output",
                   orphan_cleanup=[] if keep else [tmp_root])
    try:
        yield p
    finally:
        t0 = time.monotonic()
        problems = p.destroy()
        print(f"\n== cleanup (wineserver -k; wineserver -w; rm -rf prefix): "
              f"{time.monotonic() - t0:.2f}s", flush=True)
        if problems:
            print("cleanup problems:\n" + "\n".join(problems), flush=True)


# ---------------------------------------------------------------------------------------------
# The test


def test_service_winhttp_digest_end_to_end(tmp_root, password, squid, origin, prefix):
    authshim_exe = _exe("AUTHSHIM_EXE")
    fetch_exe = _exe("WINHTTP_FETCH_EXE")
    steps = Steps()
    needles = {v: f"{kind} of {USER!r}" for kind, v in needle_forms(USER, password, REALM).items()}

    def redact(text: str) -> str:
        for needle, label in needles.items():
            text = text.replace(needle.decode("utf-8", "replace"), f"<{label}>")
        return text

    def authshim(*args, expect: int | None = 0, **kw):
        r = prefix.wine(EXE_WIN, *args, label="authshim " + " ".join(args), **kw)
        if expect is not None:
            assert r.returncode == expect, \
                f"expected exit {expect}: {r.describe(redact)}\n{authshim_evidence()}"
        return r

    def authshim_evidence() -> str:
        """The service's side of a failure: its log files (the configured one, and the default
        one where a service that cannot load its config reports) and `service status`."""
        text = ""
        for win in (LOG_WIN, EARLY_LOG_WIN):
            log = prefix.unix_path(win)
            tail = log.read_text(errors="replace")[-6000:] if log.exists() else "<no such file>"
            text += f"--- {win} (tail) ---\n{tail}\n"
        st = prefix.wine(EXE_WIN, "service", "status", label="service status (evidence)")
        return redact(f"{text}--- service status ---\n{st.describe()}")

    def read_setting(view: int = 64) -> bytes | None:
        data, _ = prefix.reg_read_binary(CONNECTIONS_KEY, SETTINGS_VALUE, view)
        return data

    config_path = prefix.unix_path(CONFIG_WIN)
    log_path = prefix.unix_path(LOG_WIN)
    listen_port = 0
    try:
        # ---- 0. the prefix -------------------------------------------------------------------
        with steps("0. Wine prefix: wineboot --init; wineserver -w; wineserver -p"):
            prefix.boot()
            exe_unix = prefix.unix_path(EXE_WIN)
            exe_unix.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(authshim_exe, exe_unix)
            fetch_unix = prefix.unix_path(FETCH_WIN)
            fetch_unix.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(fetch_exe, fetch_unix)

        # ---- 1. Squid (Digest) and the origin ------------------------------------------------
        with steps("1. Squid demanding Digest + origin with a CRL-sized file"):
            squid.start()
            origin.start()
            crl = origin.add_file(CRL_NAME, CRL_SIZE)
            url = f"http://{ORIGIN_HOST}:{origin.http_port}/{CRL_NAME}"
            assert port_accepts(squid.port), f"Squid not listening on {squid.port}"
            print(f"Squid {squid.address} (Digest, realm {REALM}, user {USER}); origin {url} "
                  f"({crl.size} bytes)")

        # ---- 2. a non-empty WinHTTP setting to restore later ---------------------------------
        with steps("2. initial WinHttpSettings (10.9.9.9:8080, <local>)"):
            initial = encode_winhttp_settings(INITIAL_PROXY, INITIAL_BYPASS)
            r = prefix.reg_add_binary(CONNECTIONS_KEY, SETTINGS_VALUE, initial, 64)
            assert r.returncode == 0, f"reg add failed: {r.describe()}"
            initial_read = read_setting(64)
            assert initial_read == initial, \
                f"read back {initial_read!r}, wrote {initial!r}"
            initial32 = read_setting(32)
            print(f"64-bit view: {initial_read.hex()}; 32-bit view: "
                  f"{'absent' if initial32 is None else initial32.hex()}")

        # ---- 3. config + credentials set -----------------------------------------------------
        with steps("3. config at the default location + credentials set (DPAPI)"):
            listen_port = candidate_port()
            while listen_port in (3128, squid.port, origin.http_port, origin.tls_port):
                listen_port = candidate_port()
            admin_port = candidate_port()
            while admin_port in (3128, 3129, listen_port, squid.port, origin.http_port,
                                 origin.tls_port):
                admin_port = candidate_port()
            config = {
                "listen": [f"{LOOPBACK}:{listen_port}"],
                # The credentials entry does not exist yet: `credentials set` adds it (it edits
                # the text and accepts a config whose upstream names a missing credential).
                "upstreams": [{"name": "squid", "address": squid.address,
                               "credentials": "machine", "schemes": ["digest"]}],
                "access": {"clients": ["127.0.0.0/8"], "connect_ports": [443]},
                "timeouts": {"connect": "5s", "client_header": "15s", "upstream_response": "15s",
                             "tunnel_idle": "5m", "shutdown": "5s"},
                "log": {"level": "trace", "file": LOG_WIN},
                "admin": {"listen": f"{LOOPBACK}:{admin_port}"},
            }
            config_path.parent.mkdir(parents=True, exist_ok=True)
            config_path.write_text(json.dumps(config, indent=2) + "\n")
            secret_dir = tmp_root / "secret"
            secret_dir.mkdir(mode=0o700, exist_ok=True)
            pw_file = secret_dir / "password.txt"
            pw_file.write_bytes(password.encode() + b"\n")
            os.chmod(pw_file, 0o600)
            try:
                authshim("credentials", "set", "machine", "--username", USER, stdin=pw_file)
            finally:
                pw_file.unlink()
            text = config_path.read_text()
            stored = json.loads(text)
            # Booleans first: pytest's assertion introspection would print the operands (and a
            # leaked password with them); the messages are redacted.
            cred = stored.get("credentials", {}).get("machine")
            has_user = isinstance(cred, dict) and cred.get("username") == USER
            assert has_user, f"no credentials.machine for {USER} in the config:\n{redact(text)}"
            source = cred.get("password")
            only_dpapi = (isinstance(source, dict) and set(source) == {"dpapi"}
                          and bool(source["dpapi"]))
            assert only_dpapi, f"credentials.machine.password is not a DPAPI blob:\n{redact(text)}"
            dpapi_not_plain = '"dpapi"' in text and '"plain"' not in text
            assert dpapi_not_plain, redact(text)
            in_config = password in text
            assert not in_config, "the password is in the config file"
            blob = base64.b64decode(cred["password"]["dpapi"])
            in_blob = any(f in blob for f in (password.encode(), password.encode("utf-16-le")))
            assert not in_blob, "the DPAPI blob holds the password in clear"

        # ---- 4. the service ------------------------------------------------------------------
        with steps("4. service install --start demand; service start"):
            authshim("service", "install", "--start", "demand")
            st = authshim("service", "status", expect=3)  # installed, not running
            authshim("service", "start")
            deadline = time.monotonic() + 20
            while not port_accepts(listen_port) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert port_accepts(listen_port), \
                f"nothing accepts on {LOOPBACK}:{listen_port} after service start\n" \
                f"{authshim_evidence()}"
            st = authshim("service", "status", expect=0)
            assert "running" in st.out, st.describe(redact)
            procs = prefix.processes("authshim.exe")
            assert procs, "service start said running, but no authshim.exe process exists"
            print(f"listening on {LOOPBACK}:{listen_port}; processes: {procs}")

        # ---- 5. winhttp apply ----------------------------------------------------------------
        with steps("5. winhttp apply"):
            authshim("winhttp", "apply")
            applied = read_setting(64)
            assert applied is not None, "WinHttpSettings is gone after apply"
            s = decode_winhttp_settings(applied)
            expected_proxy = f"{LOOPBACK}:{listen_port}"
            assert (s.version, s.counter, s.flags, s.proxy, s.bypass, s.trailing) == \
                (0x18, 0, 3, expected_proxy, "<local>", b""), \
                f"WinHttpSettings after apply: {s} ({applied.hex()})"
            applied32 = read_setting(32)
            assert applied32 == applied, \
                f"32-bit view after apply: {applied32!r}, 64-bit: {applied!r}"
            saved, _ = prefix.reg_read_binary(STATE_KEY, "Previous64", 64)
            assert saved == initial, f"{STATE_KEY}\\Previous64 = {saved!r}, expected {initial!r}"
            show = authshim("winhttp", "show")
            assert "points at authshim" in show.out, show.describe(redact)

        # ---- 6. the WinHTTP client -----------------------------------------------------------
        with steps("6. winhttp_fetch through authshim (200) and straight at Squid (407)"):
            window = SquidWindow(squid)
            out_win = "C:\\authshim-test\\via-authshim.crl"
            out_unix = prefix.unix_path(out_win)
            r = prefix.wine(FETCH_WIN, url, out_win, label="winhttp_fetch (default proxy)",
                            timeout=60)
            assert r.returncode == 0 and "status 200" in r.out, \
                f"fetch through authshim: {r.describe(redact)}\n" \
                f"Squid access.log:\n{window.access.text()}\n{authshim_evidence()}"
            body = out_unix.read_bytes()
            same = hashlib.sha256(body).hexdigest() == crl.sha256 and len(body) == crl.size
            assert same, f"fetched {len(body)} bytes, not the origin's {crl.size} " \
                         f"(sha256 {crl.sha256}): {r.describe(redact)}"
            wait_until_quiet(lambda: len(window.access.lines()), 1, quiet=0.3, timeout=10,
                             what="Squid access.log", unit="lines")
            authed = [f for f in window.access.lines()
                      if len(f) > 7 and f[3].endswith("/200") and ORIGIN_HOST in f[6]
                      and f[7] == USER]
            assert authed, f"Squid logged no authenticated 200 for {USER}:\n{window.access.text()}"
            assert window.count_407_with_user() == 0, \
                f"Squid rejected credentials sent for {USER}:\n{window.access.text()}"

            direct = SquidWindow(squid)
            out2_win = "C:\\authshim-test\\direct.out"
            r = prefix.wine(FETCH_WIN, url, out2_win, "--proxy", squid.address,
                            label="winhttp_fetch --proxy squid", timeout=60)
            assert r.returncode == 0 and "status 407" in r.out, \
                f"fetch straight at Squid should get 407: {r.describe(redact)}"
            wait_until_quiet(lambda: len(direct.access.lines()), 1, quiet=0.3, timeout=10,
                             what="Squid access.log", unit="lines")
            denied = [f for f in direct.access.lines()
                      if len(f) > 7 and f[3] == "TCP_DENIED/407" and ORIGIN_HOST in f[6]]
            assert denied, f"Squid logged no 407 for the direct fetch:\n{direct.access.text()}"
            print(f"through authshim: {len(body)} bytes, Squid: "
                  f"{' | '.join(' '.join(f[3:8]) for f in window.access.lines())}")

        # ---- 6b. admin endpoint and reload ---------------------------------------------------
        with steps("6b. admin endpoint; reload through it, then through "
                   "SERVICE_CONTROL_PARAMCHANGE"):
            base = f"http://{LOOPBACK}:{admin_port}"
            code, body = http_get(base + "/healthz")
            assert code == 200 and body.startswith("ok: listening on"), (code, redact(body))
            code, body = http_get(base + "/status")
            assert code == 200, (code, redact(body))
            up = json.loads(body)["upstreams"][0]
            assert (up["scheme"], up["lockout"]["state"], up["requests"]["2xx"] >= 1) == \
                ("digest", "verified", True), redact(body)
            code, body = http_get(base + "/metrics")
            assert code == 200 and 'authshim_requests_total{upstream="squid",code="200"}' in body, \
                redact(body[-3000:])
            texts = [body]
            # `authshim reload` (the default config): the admin endpoint's POST /reload.
            r = authshim("reload")
            assert "configuration reloaded" in r.out, r.describe(redact)
            # The admin endpoint switched off in the file: `authshim reload` now asks the service
            # control manager, which passes SERVICE_CONTROL_PARAMCHANGE to the service.
            cfg = json.loads(config_path.read_text())
            cfg["admin"] = {"listen": None}
            config_path.write_text(json.dumps(cfg, indent=2) + "\n")
            r = authshim("reload")
            assert "reload requested from the authshim service" in r.out, r.describe(redact)
            deadline = time.monotonic() + 20
            wanted = "configuration reloaded (SERVICE_CONTROL_PARAMCHANGE)"
            while wanted not in log_path.read_text(errors="replace") and \
                    time.monotonic() < deadline:
                time.sleep(0.2)
            log_text = log_path.read_text(errors="replace")
            assert wanted in log_text and "admin endpoint closed" in log_text, \
                redact(log_text[-4000:])
            deadline = time.monotonic() + 10
            while port_accepts(admin_port) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not port_accepts(admin_port), "the admin endpoint still accepts"
            hits = [label for t in texts for needle, label in needles.items()
                    if needle.decode("utf-8", "replace") in t]
            assert not hits, f"secret in an admin answer: {hits}"

        # ---- 7. stop, uninstall, revert ------------------------------------------------------
        with steps("7. service stop; service uninstall; winhttp revert"):
            authshim("service", "stop")
            authshim("service", "status", expect=3)  # stopped, still installed
            un = authshim("service", "uninstall")
            rv = authshim("winhttp", "revert")
            reverted_by_uninstall = "WinHTTP setting restored" in un.out
            if reverted_by_uninstall:
                assert "nothing to revert" in rv.out, rv.describe(redact)
            else:
                assert "WinHTTP setting restored" in rv.out, rv.describe(redact)
            by = "service uninstall" if reverted_by_uninstall else "winhttp revert"
            print(f"WinHTTP setting reverted by: {by}")
            authshim("service", "status", expect=4)
            deadline = time.monotonic() + 15
            while prefix.processes("authshim.exe") and time.monotonic() < deadline:
                time.sleep(0.2)
            left = prefix.processes("authshim.exe")
            assert not left, f"authshim.exe still running after uninstall: {left}"
            final = read_setting(64)
            assert final == initial, \
                f"WinHttpSettings not restored: {final!r}, expected {initial!r}"
            final32 = read_setting(32)
            assert final32 == initial32, \
                f"32-bit view not restored: {final32!r}, expected {initial32!r}"
            exists, q = prefix.reg_key_exists(STATE_KEY, 64)
            assert not exists, f"{STATE_KEY} left behind: {q.describe()}"
            assert not port_accepts(listen_port), f"{LOOPBACK}:{listen_port} still accepts"

        # ---- 8. secrets ----------------------------------------------------------------------
        with steps("8. the password in no output, log or config"):
            assert log_path.is_file() and log_path.stat().st_size > 0, f"no log at {log_path}"
            # Read after the service stopped (the log is complete): the fetch went through it.
            log_text = log_path.read_text(errors="replace")
            for wanted in (f"listening on {LOOPBACK}:{listen_port}",
                           'upstream accepted the credentials "machine"',
                           f"host={ORIGIN_HOST}:{origin.http_port} status=200 bytes={CRL_SIZE}"):
                assert wanted in log_text, \
                    f"{wanted!r} not in {LOG_WIN}:\n{redact(log_text[-4000:])}"
            hits = []
            for run in prefix.runs:
                for what, data in (("stdout", run.stdout), ("stderr", run.stderr)):
                    hits += [f"{run.label} {what}: {label}" for needle, label in needles.items()
                             if needle in data]
            # authshim's folder (config, log) and the prefix's registry files.
            files = sorted(p for p in prefix.unix_path(AUTHSHIM_DIR).rglob("*") if p.is_file())
            files += sorted(prefix.path.glob("*.reg"))
            for f in files:
                data = f.read_bytes()
                hits += [f"{f}: {label}" for needle, label in needles.items()
                         if needle in data or needle.decode().encode("utf-16-le") in data]
            assert not hits, "secret found:\n" + "\n".join(hits)
            names = ", ".join(str(f.relative_to(prefix.path)) for f in files)
            print(f"scanned the output of {len(prefix.runs)} commands and {len(files)} files "
                  f"({names}) for {len(needles)} forms of the password")
    except BaseException:
        # Whatever failed: the service's log and status, for the report.
        if prefix.unix_path(EXE_WIN).is_file():
            print("\n" + authshim_evidence(), flush=True)
        raise
    finally:
        # Kept with AUTHSHIM_KEEP_TMP (the prefix itself is always removed).
        evidence = tmp_root / "evidence"
        evidence.mkdir(exist_ok=True)
        for f in (config_path, log_path):
            if f.is_file():
                shutil.copy2(f, evidence / f.name)
        print("\n" + steps.summary())
        _print_runs(prefix)
