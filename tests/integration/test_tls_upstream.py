"""`https://` upstreams: TLS from authshim to the upstream proxy itself.

The upstream is Squid with Basic auth (`basic_ncsa_auth`, as in test_auth_squid.py) behind
stunnel4, which terminates TLS with a server certificate for `DNS:localhost,IP:127.0.0.1`
issued by a throwaway CA. stunnel accepts on 127.0.0.1 (the normal cases) and on 127.0.0.2
(the same proxy under an address the certificate does not name: the host name mismatch case).

Cases: GET 1 KB and 5 MB (sha256), 50 sequential keep-alive requests with exactly one 407 at
Squid, a POST as the first request of a fresh authshim (407, replay over TLS), CONNECT with TLS
inside the TLS connection (several requests in one tunnel), the IP address form of the
upstream, and the failures: a CA that did not sign the proxy's certificate, no `ca_file` (the
system trust store does not know the throwaway CA), host name mismatch -> a prompt 502 and
`certificate verify failed` in authshim's log; `authshim check` with a missing `ca_file`; last,
no password in any authshim trace output of this module."""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import secrets
from harness.authshim import make_config, run_cli
from harness.client import curl, get_keepalive, sha256_file
from harness.secrets import write_secret
from harness.squid import SquidWindow, squid_available
from harness.squid_auth import basic_squid
from harness.stunnel import Stunnel, issue_server_cert, make_ca, stunnel_available
from harness.util import slow_factor

pytestmark = [
    pytest.mark.skipif(not squid_available(), reason="squid is not installed"),
    pytest.mark.skipif(not stunnel_available(), reason="stunnel4 is not installed"),
]

USER = "CORP\\svc-tls"
PASSWORD = "Tls-basic-pw-7Hq2Vx"
MISMATCH_HOST = "127.0.0.2"
# Generous on purpose: the failure cases must answer well before it (no hang until timeout).
CONNECT_TIMEOUT = "20s"
PROMPT = 3.0  # seconds (x3 on sanitizer builds) within which a TLS failure must become a 502

# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def pki(tmp_root):
    """The proxy's CA and server certificate, and an unrelated CA."""
    d = tmp_root / "pki"
    ca = make_ca(d, "ca", "authshim test proxy CA")
    cert, key = issue_server_cert(ca, d, "proxy", "localhost", "DNS:localhost,IP:127.0.0.1")
    other = make_ca(d, "other-ca", "authshim unrelated CA")
    return SimpleNamespace(ca=ca.cert, cert=cert, key=key, other_ca=other.cert)


@pytest.fixture(scope="module")
def squid_basic(tmp_root):
    """Squid's client is stunnel: one stunnel->Squid connection (SquidWindow.connections()) per
    authshim TLS connection."""
    with basic_squid(tmp_root, "squid-tls", {USER: PASSWORD}, algorithm="-B", conn_log=True,
                     options=["casesensitive on", "credentialsttl 1 minute"]) as s:
        yield s


@pytest.fixture(scope="module")
def tls_proxy(tmp_root, pki, squid_basic):
    st = Stunnel(tmp_root, squid_basic.address, pki.cert, pki.key,
                 hosts=("127.0.0.1", MISMATCH_HOST)).start()
    try:
        yield st
    finally:
        st.stop()


@pytest.fixture(scope="module")
def secrets_dir(secrets_dir):
    """conftest's, with USER's password in `basic.txt`."""
    secrets.register(USER, PASSWORD)  # for the secrets checks (harness/secrets.py)
    write_secret(secrets_dir / "basic.txt", PASSWORD)
    return secrets_dir


def shim_config(nginx, secrets_dir, address: str, ca_file: str | None = "ca.pem", **sections):
    upstream = {"name": "tls", "address": address, "credentials": "machine",
                "schemes": ["basic"]}
    if ca_file is not None:
        upstream["ca_file"] = ca_file
    timeouts = {"connect": CONNECT_TIMEOUT, **sections.pop("timeouts", {})}
    return make_config(
        address, upstream_name="tls", upstreams=[upstream],
        credentials={"machine": {"username": USER,
                                 "password": {"file": str(secrets_dir / "basic.txt")}}},
        limits={"replay_body": 1048576},
        lockout={"max_rejections": 1, "retry_after": None},
        access={"connect_ports": [443, nginx.tls_port]},
        timeouts=timeouts, log={"level": "trace"}, **sections)


def start_tls_shim(launcher, name, nginx, secrets_dir, address, ca_source=None,
                   ca_file: str | None = "ca.pem", **sections):
    """An authshim for `address`; `ca_source` is copied next to its config as `ca_file`."""
    files = {ca_file: ca_source} if ca_source is not None and ca_file is not None else None
    cfg = shim_config(nginx, secrets_dir, address, ca_file=ca_file, **sections)
    return launcher(cfg, name, files=files)


@pytest.fixture(scope="module")
def shim(start_authshim_module, tls_proxy, pki, nginx, secrets_dir):
    """One authshim for the plain functional tests: https://localhost:PORT, the proxy's CA."""
    return start_tls_shim(start_authshim_module, "tls", nginx, secrets_dir,
                          f"https://localhost:{tls_proxy.port}", pki.ca)


@pytest.fixture(scope="module")
def file_5m(nginx):
    return nginx.add_file("five.bin", 5 * 1024 * 1024)


# ---------------------------------------------------------------------------------------------
# Working TLS


def test_get_1k(shim, squid_basic, nginx, tmp_root):
    small = nginx.files["small.bin"]
    window = SquidWindow(squid_basic)
    out = tmp_root / "tls-get-1k.out"
    r = curl(["-o", out, "-w", "%{http_code}", nginx.url("/small.bin")], proxy_port=shim.port)
    assert r.returncode == 0 and r.text == "200", r.describe()
    assert sha256_file(out) == small.sha256
    window.settle(1)
    served = [e for e in window.entries() if e[1] == "TCP_MISS/200"]
    assert served and all(e[4] != "-" for e in served), \
        f"Squid served without an authenticated user: {window.entries()}"


def test_get_5mb(shim, file_5m, nginx, tmp_root):
    out = tmp_root / "tls-get-5m.out"
    r = curl(["-o", out, "-w", "%{http_code} %{size_download}", nginx.url("/five.bin")],
             proxy_port=shim.port, max_time=30 * slow_factor())
    try:
        assert r.returncode == 0 and r.text == f"200 {file_5m.size}", r.describe()
        assert sha256_file(out) == file_5m.sha256
    finally:
        out.unlink(missing_ok=True)


def test_50_sequential_keepalive_one_407(start_authshim, tls_proxy, pki, squid_basic, nginx,
                                         secrets_dir):
    shim = start_tls_shim(start_authshim, "seq", nginx, secrets_dir,
                          f"https://localhost:{tls_proxy.port}", pki.ca)
    window = SquidWindow(squid_basic)
    t0 = time.monotonic()
    statuses = get_keepalive(shim.port, nginx, 50)
    took = time.monotonic() - t0
    assert len(statuses) == 50 and all(s == 200 for s in statuses), \
        f"after {len(statuses)} requests: last {statuses[-1]!r}"
    window.settle(50)
    n407, conns = window.count_407(), window.connections()
    msg = (f"50 sequential requests over TLS: {n407} x 407 at Squid, {conns} TLS "
           f"connection(s) to the proxy, {took:.1f}s")
    print("\n" + msg)
    served = [e for e in window.entries() if e[1] == "TCP_MISS/200"]
    assert len(served) == 50 and all(e[4] != "-" for e in served), msg
    assert n407 == 1, msg


def test_post_first_request_replayed_over_tls(start_authshim, tls_proxy, pki, squid_basic,
                                              pyorigin, nginx, secrets_dir, tmp_root):
    """A POST as the first request of a fresh authshim: Squid answers 407, authshim replays
    the body with credentials (over TLS again); sha256 checked at the upload origin."""
    size = 2 * 1024 + 3
    body = tmp_root / "tls-post.bin"
    body.write_bytes(os.urandom(size))
    shim = start_tls_shim(start_authshim, "post", nginx, secrets_dir,
                          f"https://localhost:{tls_proxy.port}", pki.ca,
                          timeouts={"upstream_response": "5s"})
    window = SquidWindow(squid_basic)
    r = curl(["-H", "Expect:", "-H", "Content-Type: application/ocsp-request", "--data-binary",
              f"@{body}", "-w", "\n%{http_code}", pyorigin.url("/post/tls")],
             proxy_port=shim.port, max_time=30 * slow_factor())
    out, _, status = r.text.rpartition("\n")
    window.settle(1)
    assert r.returncode == 0 and status == "200", \
        f"POST {size} bytes: got {status} {out.strip()!r}; Squid logged {window.entries()}"
    doc = json.loads(out)
    assert doc["bytes"] == size and doc["sha256"] == sha256_file(body), doc
    assert window.count_407() == 1, f"expected one 407 (then a replay): {window.entries()}"


def test_connect_tls_inside_tls(shim, squid_basic, nginx, tmp_root):
    """CONNECT through the TLS connection to the proxy, then TLS to nginx inside it: three
    requests in the one tunnel (curl reuses it: one CONNECT at Squid)."""
    medium = nginx.files["medium.bin"]
    window = SquidWindow(squid_basic)
    outs = [tmp_root / f"tls-connect-{i}.out" for i in range(3)]
    args = ["-p", "--cacert", nginx.cert, "-w", "%{http_code} %{num_connects}\n"]
    for out in outs:
        args += ["-o", out, nginx.tls_url("/medium.bin")]
    r = curl(args, proxy_port=shim.port, max_time=30 * slow_factor())
    assert r.returncode == 0, r.describe()
    lines = r.text.split()
    assert lines[0::2] == ["200"] * 3, r.describe()
    assert lines[1::2] == ["1", "0", "0"], f"curl did not reuse the tunnel: {r.text!r}"
    for out in outs:
        assert sha256_file(out) == medium.sha256
    window.settle(1)
    tunnels = [e for e in window.entries() if e[2] == "CONNECT"]
    assert len(tunnels) == 1 and tunnels[0][1].endswith("/200") and tunnels[0][4] != "-", \
        window.entries()


def test_ip_address_upstream(start_authshim, tls_proxy, pki, nginx, secrets_dir):
    """`https://127.0.0.1:PORT`: the certificate's IP SAN matches."""
    shim = start_tls_shim(start_authshim, "ip", nginx, secrets_dir,
                          f"https://127.0.0.1:{tls_proxy.port}", pki.ca)
    for _ in range(2):
        r = curl(["-o", "/dev/null", "-w", "%{http_code}", nginx.url("/small.bin")],
                 proxy_port=shim.port)
        assert r.returncode == 0 and r.text == "200", r.describe()


# ---------------------------------------------------------------------------------------------
# TLS failures: a prompt 502, the reason in authshim's log


def _expect_prompt_502(shim, nginx, what: str):
    r = curl(["-o", "/dev/null", "-w", "%{http_code}", nginx.url("/small.bin")],
             proxy_port=shim.port, max_time=30 * slow_factor())
    assert r.returncode == 0 and r.text == "502", f"{what}: {r.describe()}"
    assert r.elapsed < PROMPT * slow_factor(), \
        f"{what}: 502 after {r.elapsed:.1f}s (timeouts.connect is {CONNECT_TIMEOUT})"
    # a tunnel is refused the same way
    r2 = curl(["-p", "--cacert", nginx.cert, "-o", "/dev/null", "-w", "%{http_code}",
               nginx.tls_url("/small.bin")], proxy_port=shim.port, max_time=30 * slow_factor())
    assert r2.returncode != 0 and r2.elapsed < PROMPT * slow_factor(), f"{what}: {r2.describe()}"
    assert "502" in r2.stderr, f"{what}: CONNECT: {r2.describe()}"
    log = shim.log_text()
    assert "certificate verify failed" in log, f"{what}: authshim log:\n{shim.log_tail()}"


def test_wrong_ca_502(start_authshim, tls_proxy, pki, squid_basic, nginx, secrets_dir):
    shim = start_tls_shim(start_authshim, "wrong-ca", nginx, secrets_dir,
                          f"https://localhost:{tls_proxy.port}", pki.other_ca,
                          ca_file="other-ca.pem")
    window = SquidWindow(squid_basic)
    _expect_prompt_502(shim, nginx, "ca_file = an unrelated CA")
    time.sleep(0.3)
    assert window.entries() == [], "a request reached Squid through an untrusted TLS connection"


def test_system_trust_store_502(start_authshim, tls_proxy, nginx, secrets_dir):
    """No ca_file: the system trust store, which does not know the throwaway CA."""
    shim = start_tls_shim(start_authshim, "system-store", nginx, secrets_dir,
                          f"https://localhost:{tls_proxy.port}", ca_file=None)
    _expect_prompt_502(shim, nginx, "no ca_file (system trust store)")


def test_host_name_mismatch_502(start_authshim, tls_proxy, pki, nginx, secrets_dir):
    """`https://127.0.0.2:PORT`: the same stunnel and certificate (trusted CA), but the
    certificate names only localhost and 127.0.0.1."""
    port = tls_proxy.ports[MISMATCH_HOST]
    # Precondition: the 127.0.0.2 listener works and is trusted for "localhost"; only the
    # name check fails for 127.0.0.2.
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    with socket.create_connection((MISMATCH_HOST, port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost"):
            pass
    with socket.create_connection((MISMATCH_HOST, port), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            ctx.wrap_socket(raw, server_hostname=MISMATCH_HOST)

    shim = start_tls_shim(start_authshim, "mismatch", nginx, secrets_dir,
                          f"https://{MISMATCH_HOST}:{port}", pki.ca)
    _expect_prompt_502(shim, nginx, "host name mismatch")


# ---------------------------------------------------------------------------------------------
# Configuration check


def test_check_missing_ca_file(tmp_root, tls_proxy, pki, nginx, secrets_dir):
    d = tmp_root / "check-ca"
    d.mkdir(exist_ok=True)
    cfg = shim_config(nginx, secrets_dir, f"https://localhost:{tls_proxy.port}",
                      ca_file="missing-ca.pem")
    path = d / "authshim.json"
    path.write_text(json.dumps(cfg, indent=2))
    cp = run_cli(["check", "--config", path])
    assert cp.returncode == 1, f"exit {cp.returncode}\nstdout: {cp.stdout}\nstderr: {cp.stderr}"
    assert "/upstreams/0/ca_file" in cp.stderr, cp.stderr
    # Control: the same config with the file in place is valid.
    (d / "missing-ca.pem").write_bytes(Path(pki.ca).read_bytes())
    cp = run_cli(["check", "--config", path])
    assert cp.returncode == 0, f"exit {cp.returncode}\nstderr: {cp.stderr}"


# ---------------------------------------------------------------------------------------------
# Secrets: last in the module


def test_zz_password_not_in_trace_output(tmp_root, module_authshims):
    reg = secrets.REGISTRY  # filled by Authshim.start from each config's password file
    # Canary: the search finds a planted secret.
    canary = tmp_root / "canary.log"
    canary.write_bytes(b"x " + base64.b64encode(f"{USER}:{PASSWORD}".encode()) + b" x\n")
    assert reg.label(USER, PASSWORD, "base64(user:password)") in \
        {label for _, label in reg.find_in_files([canary])}
    canary.unlink()

    mine = [inst for inst in module_authshims() if inst.config.get("credentials")]
    assert len(mine) >= 5, f"only {len(mine)} authshim(s) with credentials ran in this module"
    hits, verbose_lines = [], 0
    for inst in mine:
        assert inst.config["log"]["level"] == "trace"
        for p in inst.dir.iterdir():
            if not p.is_file() or p.name == "authshim.json":
                continue
            data = p.read_bytes()
            verbose_lines += data.count(b" trace ") + data.count(b" debug ")
            hits += [(inst.name, p.name, label) for label in sorted(reg.find(data))]
    # authshim has no trace statements yet; a debug line (tunnel open) shows the level took effect
    assert verbose_lines > 0, "no output below info level to check (log format changed?)"
    assert not hits, f"secrets in authshim output: {hits}"
