"""Upstream Digest authentication against a real Apache httpd 2.4 forward proxy
(mod_auth_digest, mod_proxy_http, mod_proxy_connect; see harness/apache.py).

authshim (schemes digest, basic; password from a 0600 file) -> Apache -> nginx / the upload
origin: GET 1 KB and 5 MB (sha256), POST 2 KB (sha256 at the origin) as the first request of a
fresh authshim (407, body replayed) and after a GET, CONNECT + TLS (mod_auth_digest compares a
CONNECT's Digest `uri` strictly with `host:port`: AH01785/AH01786 + 400 otherwise), 250
sequential keep-alive requests over one client connection (Apache closes its side every 101
requests: MaxKeepAliveRequests 100), 8 parallel clients x 50 requests, a wrong password (one
`AH01794 password mismatch` in Apache's error log, then lockout: no further attempt), and last
that neither the password nor its Digest HA1 appears in any authshim output.

Apache facts these tests rely on (2.4.71, checked here): its 407 carries
`Digest realm, nonce, algorithm=MD5, qop="auth"`; `%u` in the access log is the user name from
the Digest credentials even when they fail, "-" without credentials; `MaxKeepAliveRequests 100` counts
the requests after the first, so a connection serves 101 requests (a 407 is one of them) and the
last response carries `Connection: close`."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from harness import secrets
from harness.apache import Apache, apache_available
from harness.authshim import make_config, run_cli
from harness.client import (RawConn, burst, clients_not_all_200, curl, get_keepalive,
                            run_parallel_clients, sha256_file, summarize)
from harness.secrets import write_secret
from harness.util import LogCursor, slow_factor, wait_until_quiet

pytestmark = pytest.mark.skipif(not apache_available(), reason="apache2 is not installed")

REALM = "authshim-apache"
USER = "svc"
PASSWORD = "Apache-pw-7Hq2z!"
WRONG_PW = "Wrong-pw-Zq8x7"
MAX_KEEPALIVE = 100

MEDIUM_5M = 5 * 1024 * 1024


def _remember(password: str):
    """Registers USER's password for the secrets checks (harness/secrets.py), with the realm
    for its HA1 forms."""
    secrets.register(USER, password, REALM)


# ---------------------------------------------------------------------------------------------
# Apache logs


class Entry:
    """One line of the `shim` access log (see harness/apache.py)."""

    def __init__(self, line: str):
        f = line.split(" ", 6)
        self.client, self.status, self.method, self.user = f[0], int(f[1]), f[2], f[3]
        self.keepalive, self.scheme, self.request = int(f[4]), f[5], f[6].strip('"')

    def __repr__(self):
        return f"{self.client} {self.status} {self.user} k={self.keepalive} {self.scheme} {self.request}"


class ApacheWindow:
    """What Apache logged after the window was opened."""

    def __init__(self, apache: Apache):
        self.apache = apache
        self.access = LogCursor(apache.dir / "access.log")
        self.errors = LogCursor(apache.dir / "error.log")

    def entries(self) -> list[Entry]:
        return [Entry(l) for l in self.access.text().splitlines() if l.strip()]

    def count(self, status: int) -> int:
        return sum(1 for e in self.entries() if e.status == status)

    def connections(self) -> int:
        return len({e.client for e in self.entries()})

    def error_lines(self, marker: str) -> list[str]:
        return [l for l in self.errors.text().splitlines() if marker in l]

    def settle(self, min_entries: int = 0, quiet: float = 0.3, timeout: float = 15.0):
        """Waits until at least `min_entries` lines are logged and nothing new arrives for
        `quiet` seconds (Apache logs a request when it ends; a tunnel when it closes)."""
        wait_until_quiet(lambda: len(self.entries()), min_entries, quiet, timeout * slow_factor(),
                         what="Apache", unit="lines")

    def describe(self, limit: int = 12) -> str:
        entries = self.entries()
        statuses = Counter(e.status for e in entries)
        errors = [l for l in self.errors.text().splitlines() if l.strip()][-limit:]
        return (f"Apache access log: {dict(statuses)}; last lines: {entries[-limit:]}\n"
                f"Apache error log (last lines): {errors}")


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def apache(tmp_root, nginx):
    a = Apache(tmp_root, {USER: PASSWORD}, realm=REALM, connect_ports=[443, nginx.tls_port],
               max_keepalive=MAX_KEEPALIVE).start()
    try:
        yield a
    finally:
        a.stop()


def shim_config(apache: Apache, nginx, pw_file: Path) -> dict:
    return make_config(
        apache.address, upstream_name="apache",
        upstreams=[{"name": "apache", "address": apache.address, "credentials": "machine",
                    "schemes": ["digest", "basic"]}],
        credentials={"machine": {"username": USER, "password": {"file": str(pw_file)}}},
        access={"connect_ports": [443, nginx.tls_port]},
        log={"level": "trace"})


def start_shim(launcher, apache, nginx, secrets_dir, name: str, password: str = PASSWORD):
    """A fresh authshim whose password comes from `NAME-pw.txt` (mode 0600, one newline)."""
    _remember(password)
    pw_file = write_secret(secrets_dir / f"{name}-pw.txt", password)
    return launcher(shim_config(apache, nginx, pw_file), name)


@pytest.fixture(scope="module")
def shim(start_authshim_module, apache, nginx, secrets_dir):
    return start_shim(start_authshim_module, apache, nginx, secrets_dir, "shim")


@pytest.fixture(scope="module")
def file_5m(nginx):
    return nginx.add_file("five.bin", MEDIUM_5M)


def served_by_user(window: ApacheWindow) -> list[Entry]:
    return [e for e in window.entries() if e.status == 200 and e.user == USER and e.scheme == "Digest"]


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _raw_connect_digest(apache: Apache, target: str, uri: str) -> tuple[int, int]:
    """CONNECT `target` without, then with Digest credentials computed here for `uri` (on the
    same connection). Returns (first status, second status)."""
    with RawConn(apache.port, timeout=10) as c:
        c.send(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        first = c.read_response("CONNECT")
        challenge = first.header("Proxy-Authenticate") or ""
        nonce = challenge.split('nonce="', 1)[1].split('"', 1)[0]
        response = _md5(f"{_md5(f'{USER}:{REALM}:{PASSWORD}')}:{nonce}:00000001:0a4f113b:auth:"
                        f"{_md5(f'CONNECT:{uri}')}")
        auth = (f'Digest username="{USER}", realm="{REALM}", nonce="{nonce}", uri="{uri}", '
                f'cnonce="0a4f113b", nc=00000001, qop=auth, response="{response}", algorithm=MD5')
        c.send(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
               f"Proxy-Authorization: {auth}\r\n\r\n".encode())
        second = c.read_response("CONNECT")
        return first.status, second.status


def test_fixture_connect_uri_is_strict(apache, nginx):
    """The fixture itself (no authshim): Apache accepts a CONNECT whose Digest uri is exactly
    `host:port` and answers 400 (AH01785 uri mismatch) to the same credentials computed for
    any other uri, so test_connect_tls really checks what authshim sends."""
    target = f"localhost:{nginx.tls_port}"
    window = ApacheWindow(apache)
    assert _raw_connect_digest(apache, target, target) == (407, 200)
    for uri in ("/", f"https://{target}/", "localhost"):
        assert _raw_connect_digest(apache, target, uri) == (407, 400), uri
    window.settle(8)
    assert len(window.error_lines("AH01785: uri mismatch")) == 3, window.describe()


# ---------------------------------------------------------------------------------------------
# Functional


def test_get_1k(apache, shim, nginx, tmp_root):
    small = nginx.files["small.bin"]
    window = ApacheWindow(apache)
    out = tmp_root / "apache-get-1k.out"
    r = curl(["-o", out, "-w", "%{http_code}", nginx.url("/small.bin")], proxy_port=shim.port)
    assert r.returncode == 0 and r.text == "200", f"{r.describe()}\n{window.describe()}"
    assert sha256_file(out) == small.sha256
    window.settle(1)
    assert len(served_by_user(window)) == 1, window.describe()


def test_get_5mb(apache, shim, nginx, file_5m, tmp_root):
    window = ApacheWindow(apache)
    out = tmp_root / "apache-get-5m.out"
    r = curl(["-o", out, "-w", "%{http_code} %{size_download}", nginx.url("/five.bin")],
             proxy_port=shim.port, max_time=30 * slow_factor())
    try:
        assert r.returncode == 0 and r.text == f"200 {file_5m.size}", \
            f"{r.describe()}\n{window.describe()}"
        assert sha256_file(out) == file_5m.sha256
    finally:
        out.unlink(missing_ok=True)
    window.settle(1)
    assert len(served_by_user(window)) == 1, window.describe()


@pytest.mark.parametrize("warm", [False, True], ids=["first-request", "after-get"])
def test_post_2k(apache, start_authshim, nginx, pyorigin, secrets_dir, tmp_root, warm):
    """POST 2 KB (`application/ocsp-request`, Content-Length) checked by sha256 at the upload
    origin. first-request: the POST is the first request of a fresh authshim, so Apache
    answers 407 and authshim must replay the body with credentials."""
    name = f"post-{'warm' if warm else 'first'}"
    shim = start_shim(start_authshim, apache, nginx, secrets_dir, name)
    body = tmp_root / "apache-post-2k.bin"
    if not body.exists():
        body.write_bytes(os.urandom(2048))
    if warm:
        r = curl(["-o", "/dev/null", "-w", "%{http_code}", nginx.url("/small.bin")],
                 proxy_port=shim.port)
        assert r.text == "200", r.describe()
    window = ApacheWindow(apache)
    r = curl(["-H", "Expect:", "-H", "Content-Type: application/ocsp-request", "--data-binary",
              f"@{body}", "-w", "\n%{http_code}", pyorigin.url(f"/post/{name}")],
             proxy_port=shim.port, max_time=30 * slow_factor())
    out, _, status = r.text.rpartition("\n")
    window.settle(1)
    assert r.returncode == 0 and status == "200", \
        f"POST 2 KB ({name}): got {status} {out.strip()[:300]!r}\n{window.describe()}"
    doc = json.loads(out)
    assert doc["bytes"] == 2048 and doc["sha256"] == sha256_file(body), \
        {k: doc.get(k) for k in ("bytes", "sha256", "chunked")}
    posts = [e for e in window.entries() if e.method == "POST"]
    assert posts and posts[-1].status == 200 and posts[-1].user == USER, window.describe()
    if not warm:
        assert window.count(407) == 1, f"expected one 407 (then the replay): {window.describe()}"
    else:
        assert window.count(407) == 0, f"the nonce from the GET was not reused: {window.describe()}"


def test_connect_tls(apache, start_authshim, nginx, secrets_dir, tmp_root):
    """CONNECT as the first request of a fresh authshim (407, then answered), then a second
    tunnel. mod_auth_digest rejects a CONNECT whose Digest uri is not exactly the request-target
    `host:port` (AH01785/AH01786 uri mismatch, 400): a 200 proves authshim sent `uri="host:port"`."""
    shim = start_shim(start_authshim, apache, nginx, secrets_dir, "connect")
    window = ApacheWindow(apache)
    medium = nginx.files["medium.bin"]
    for i in range(2):
        out = tmp_root / f"apache-connect-{i}.out"
        r = curl(["-p", "--cacert", nginx.cert, "-o", out, "-w", "%{http_code}",
                  nginx.tls_url("/medium.bin")], proxy_port=shim.port)
        if r.returncode != 0 or r.text != "200":
            window.settle(1, timeout=3)
        assert r.returncode == 0 and r.text == "200", \
            f"CONNECT localhost:{nginx.tls_port} #{i + 1}: {r.describe()}\n{window.describe()}"
        assert sha256_file(out) == medium.sha256
    window.settle(2)
    mismatch = window.error_lines("uri mismatch")
    assert not mismatch, mismatch
    tunnels = [e for e in window.entries() if e.method == "CONNECT" and e.status == 200]
    assert len(tunnels) == 2 and all(e.user == USER for e in tunnels), window.describe()
    assert all(e.request == f"CONNECT localhost:{nginx.tls_port} HTTP/1.1" for e in tunnels)
    n407 = window.count(407)
    print(f"\n[apache] 2 CONNECTs on a fresh authshim: {n407} x 407")
    # Each tunnel is a new upstream connection, and authshim keeps a Digest nonce to the
    # connection that got it: one 407 per tunnel at most.
    assert 1 <= n407 <= 2, f"expected one 407 per tunnel at most: {window.describe()}"


def test_250_sequential_keepalive(apache, start_authshim, nginx, secrets_dir):
    """250 GETs over one client connection: Apache closes its connection after 100 requests
    (the 407 included), twice in this run; authshim must carry on over a new one without the
    client noticing."""
    shim = start_shim(start_authshim, apache, nginx, secrets_dir, "seq")
    window = ApacheWindow(apache)
    t0 = time.monotonic()
    statuses = get_keepalive(shim.port, nginx, 250)
    took = time.monotonic() - t0
    window.settle(len(statuses))
    assert len(statuses) == 250 and all(s == 200 for s in statuses), \
        f"after {len(statuses)} requests: last {statuses[-1]!r}\n{window.describe()}"
    entries = window.entries()
    n407, conns = window.count(407), window.connections()
    per_conn = Counter(e.client for e in entries)
    msg = (f"[apache] 250 sequential requests over one client connection: {n407} x 407, "
           f"{conns} upstream connection(s) (requests each: {sorted(per_conn.values(), reverse=True)}), "
           f"{took:.1f}s")
    print("\n" + msg)
    assert len(served_by_user(window)) == 250, msg
    # MaxKeepAliveRequests 100 = 100 requests after the first: Apache serves 101 per connection.
    assert max(per_conn.values()) <= MAX_KEEPALIVE + 1, msg
    assert max(e.keepalive for e in entries) == MAX_KEEPALIVE, msg
    assert conns >= 3, f"Apache's keep-alive limit was not crossed twice: {msg}"
    assert n407 <= 250 // MAX_KEEPALIVE + 2, msg


def test_8_parallel_clients_x50(apache, start_authshim, nginx, secrets_dir):
    shim = start_shim(start_authshim, apache, nginx, secrets_dir, "par")
    window = ApacheWindow(apache)
    results, errors, took = run_parallel_clients(
        8, lambda i, out: get_keepalive(shim.port, nginx, 50, out), 120 * slow_factor())
    bad = clients_not_all_200(results, 50)
    if errors or bad:
        window.settle(1, timeout=3)
    assert not errors and not bad, f"errors {errors}; clients not all 200: {bad}\n{window.describe()}"
    window.settle(400)
    n407, conns = window.count(407), window.connections()
    msg = (f"[apache] 8 parallel clients x 50 requests: {n407} x 407, {conns} upstream "
           f"connection(s), {took:.1f}s")
    print("\n" + msg)
    assert len(served_by_user(window)) == 400, msg
    # At most one 407 per upstream connection; before the first 407 nobody knows the scheme.
    assert n407 <= conns, msg
    assert n407 <= 8 + 400 // MAX_KEEPALIVE + 2, msg


# ---------------------------------------------------------------------------------------------
# Wrong password


def _is_rejection_502(r) -> bool:
    return hasattr(r, "status") and r.status == 502 and "rejected" in r.text.lower()


def test_wrong_password_one_attempt_then_lockout(apache, start_authshim, nginx, secrets_dir):
    """A wrong password: 502 to the client, exactly one `AH01794 ... password mismatch` in
    Apache's error log (one request carried the credentials), and none after further requests
    (lockout: max_rejections 1, no retry_after, the defaults)."""
    shim = start_shim(start_authshim, apache, nginx, secrets_dir, "wrong", password=WRONG_PW)
    window = ApacheWindow(apache)
    url = nginx.url("/small.bin")
    first = burst(shim.port, url, total=40, parallel=8)
    bad = [r for r in first if not _is_rejection_502(r)]
    window.settle(1)
    assert not bad, f"expected 40 x 502 'rejected'; got {summarize(first)}; first other: " \
                    f"{bad[0].describe() if hasattr(bad[0], 'describe') else bad[0]!r}\n{window.describe()}"
    time.sleep(0.3)
    mismatches = window.error_lines("AH01794")
    with_creds = [e for e in window.entries() if e.user != "-"]
    print(f"\n[apache] wrong password, 40 requests (8 parallel): {len(mismatches)} x AH01794, "
          f"{len(with_creds)} request(s) with credentials, {window.count(407)} x 407")
    assert len(mismatches) == 1, f"expected exactly 1 password mismatch: {mismatches}"
    assert f"user {USER}: password mismatch" in mismatches[0], mismatches
    assert len(with_creds) == 1 and with_creds[0].status == 407, window.describe()

    # Later requests, one by one and on one keep-alive connection: still 502, nothing upstream.
    before = len(window.entries())
    for _ in range(5):
        r = curl(["-o", "/dev/null", "-w", "%{http_code}", url], proxy_port=shim.port)
        assert r.text == "502", r.describe()
    with RawConn(shim.port, timeout=10 * slow_factor()) as c:
        for _ in range(5):
            c.send(f"GET {url} HTTP/1.1\r\nHost: {url.split('/')[2]}\r\n\r\n".encode())
            resp = c.read_response(timeout=10 * slow_factor())
            assert _is_rejection_502(resp), resp.describe()
            if resp.header("Connection") == "close":
                break
    time.sleep(0.5)
    assert len(window.error_lines("AH01794")) == 1, window.describe()
    later_with_creds = [e for e in window.entries()[before:] if e.user != "-"]
    assert not later_with_creds, f"credentials tried again during lockout: {later_with_creds}"


# ---------------------------------------------------------------------------------------------
# Secrets: last in the module


def test_zz_secrets_absent(tmp_root, module_authshims):
    reg = secrets.REGISTRY
    assert reg, "no secret recorded: the module's other tests did not run"
    canary = tmp_root / "apache-canary.log"
    canary.write_bytes(f"x {PASSWORD} {hashlib.md5(f'{USER}:{REALM}:{WRONG_PW}'.encode()).hexdigest()}\n".encode())
    os.chmod(canary, 0o600)
    found = {label for _, label in reg.find_in_files([canary])}
    canary.unlink()
    assert reg.label(USER, PASSWORD, "password") in found and \
        reg.label(USER, WRONG_PW, "MD5 HA1", REALM) in found, found

    mine = [inst for inst in module_authshims() if inst.config.get("credentials")]
    assert mine, "no authshim with credentials was started"
    files = []
    for inst in mine:
        assert inst.config["log"]["level"] == "trace"
        files += [p for p in inst.dir.iterdir() if p.is_file() and p.name != "authshim.json"]
    hits = [(p.name, label) for p, label in reg.find_in_files(files)]
    assert not hits, f"secrets in authshim output: {hits}"

    # `authshim check` prints the effective configuration.
    cfg = dict(mine[0].config)
    path = tmp_root / "apache-check.json"
    path.write_text(json.dumps(cfg, indent=2))
    cp = run_cli(["check", "--config", path])
    out = cp.stdout + cp.stderr
    assert cp.returncode == 0, out[-2000:]
    leaked = reg.find(out)
    assert not leaked, f"`authshim check` printed: {sorted(leaked)}"
