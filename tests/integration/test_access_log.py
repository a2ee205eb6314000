"""The JSON-lines access log (`log.access`, proxycore/access_log.hpp) end to end: curl and raw
clients -> authshim -> a real Squid 5 (open, or demanding Basic or Digest) -> nginx / the upload
origin (a few fakes for what no real server does on demand), every line read back with
json.loads and checked field by field against what the client saw.

- Plain GETs (0 B to 300 KB) and a HEAD: one line each, in order, fields in the documented
  order, `time` RFC 3339 UTC with milliseconds inside the test's wall-clock window (authshim
  runs in a UTC+5:45 time zone), body bytes only (no heads), the upstream's name, no scheme,
  no 407; flushed within a second without a stop; a relative path resolved next to the config,
  its missing folder created, mode 0600. An existing file is appended to and keeps its mode.
- `path`: the query redacted to `?...` (its text nowhere in the file) by default, kept with
  `query: "keep"`; fragment and userinfo never logged, also for refused requests; `"` and `\\`
  escaped, invalid UTF-8 as U+FFFD, at most 8 KiB per field (`path`, `host`) without cutting a
  UTF-8 sequence or an escape.
- Request bodies (Content-Length, chunked, `Expect: 100-continue`): `bytes_in` is the body
  size; response bodies chunked or close-delimited upstream: `bytes_out` is the body size.
- CONNECT to nginx's TLS port: `host` is the authority, `path` null, and the tunnel bytes both
  ways equal, to the byte, what a TLS client (memory BIOs) sent and received after the 200, also
  with the ClientHello pipelined behind the CONNECT head.
- Squid demanding Basic: the first request 1 challenge, every later one (a CONNECT too) none,
  scheme `basic`; a POST replayed after the 407 counts its body once; a wrong password (2
  challenges) and no credentials configured (1) give 502 with an error; no password,
  base64(user:password) or Proxy-Authorization value (authshim's or a client's) in the file.
  Digest: 1 challenge then none, scheme `digest`, no HA1.
- Errors: unreachable upstream (502, `upstream` set); refused by authshim without an upstream:
  CONNECT port (403), origin-form (400), head too large (431), client not allowed (403);
  `error` = the text of the answer. Failures without an answer of authshim's own: a response
  cut off by the upstream must carry an `error`; a client gone during its body must have the
  body bytes received in `bytes_in`.
- Rotation at the smallest `max_bytes` (65536) with `max_files` 2: exactly access.jsonl,
  access.1.jsonl and access.2.jsonl, each line whole, each file within max_bytes and rotated
  only when the next line did not fit, the newest lines in access.jsonl, none lost between the
  files kept, mode 0600 for all.
- A stop right after requests and during a 20 MB response: every line written.
- The file deleted, or moved away, while running: a new one within ~2 s with the next lines.
- Without `log.access` (or with `false`) no access file is created.
- Last: no registered secret in anything this module's authshims wrote.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import signal
import socket
import ssl
import stat
import threading
import time
from pathlib import Path

import pytest

from harness import secrets
from harness.authshim import make_config
from harness.client import ConnectionClosed, RawConn, curl
from harness.secrets import write_secret
from harness.squid import squid_available
from harness.squid_auth import basic_squid, digest_squid
from harness.util import LOOPBACK, reserved_closed_port, slow_factor, wait_until

pytestmark = pytest.mark.skipif(not squid_available(), reason="squid is not installed")

FIELDS = ["time", "client", "method", "host", "path", "status", "bytes_in", "bytes_out",
          "duration_ms", "upstream", "scheme", "challenges"]
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
CLIENT_RE = re.compile(r"127\.0\.0\.\d{1,3}:\d{1,5}")
# duration_ms is written with exactly three decimals (microseconds).
DURATION_RE = re.compile(rb'"duration_ms":\d+\.\d{3},')
MAX_FIELD = 8 * 1024
MIN_MAX_BYTES = 65536  # the smallest log.access.max_bytes the config accepts

REALM = "authshim-access-log"
USER = "CORP\\svc-access"
DIGEST_USER = "svc-access"  # Squid's Digest drops a backslash (see test_auth_squid.py)
PASSWORD = "AccessLog-pw-7Hq2x9"
WRONG_PASSWORD = "AccessLog-wrong-4Kd8w"
# userinfo in a request target (refused by authshim, never logged)
USERINFO_USER = "al-userinfo"
USERINFO_PASSWORD = "Userinfo-pw-5Tr8"
CLIENT_USER = "client-user"
CLIENT_PASSWORD = "Client-pw-only-9Wm3"  # a client's own Proxy-Authorization (never forwarded)

# nginx files of known size, served as /al-NAME.
SIZES = {"empty.bin": 0, "one.bin": 1, "k4.bin": 4097, "k300.bin": 300_001}
BIG = 20 * 1024 * 1024


def wait_time(seconds: float) -> float:
    return seconds * slow_factor()


# ---------------------------------------------------------------------------------------------
# Reading the log


def parse_line(raw: bytes) -> dict:
    """One line -> dict, checking the field order and the value types on the way."""
    pairs = json.loads(raw.decode("utf-8"), object_pairs_hook=list)
    keys = [k for k, _ in pairs]
    expected = FIELDS + (["error"] if "error" in keys else [])
    assert keys == expected, f"fields {keys}, expected {expected}: {raw[:300]!r}"
    rec = dict(pairs)
    assert TIME_RE.fullmatch(rec["time"]), rec["time"]
    assert CLIENT_RE.fullmatch(rec["client"]), rec["client"]
    for k in ("status", "bytes_in", "bytes_out", "challenges"):
        assert type(rec[k]) is int and rec[k] >= 0, (k, rec[k])
    assert DURATION_RE.search(raw), raw[:300]
    assert rec["upstream"] is None or (type(rec["upstream"]) is str and rec["upstream"])
    assert rec["scheme"] in (None, "basic", "digest"), rec["scheme"]
    if "error" in rec:
        assert type(rec["error"]) is str and rec["error"], rec
    return rec


def read_log(path: Path, strict: bool = True) -> list[dict]:
    """Every line of `path`. `strict`: the file must end with a newline (no partial line);
    otherwise a trailing partial line (being written right now) is ignored."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    if strict:
        assert not data or data.endswith(b"\n"), \
            f"{path.name} ends in a partial line: {data[-200:]!r}"
    return [parse_line(raw) for raw in data.split(b"\n")[:-1]]


def wait_lines(path: Path, count: int, timeout: float = 2.5) -> list[dict]:
    """Polls until `path` holds at least `count` complete lines (flushed at least once a
    second); returns them. `timeout` is scaled by slow_factor()."""
    deadline = time.monotonic() + wait_time(timeout)
    while True:
        recs = read_log(path, strict=False)
        if len(recs) >= count:
            return recs
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} holds {len(recs)} line(s) after "
                                 f"{wait_time(timeout):.1f}s, expected {count}: {recs[-3:]}")
        time.sleep(0.05)


def stop_and_read(shim, path: Path) -> list[dict]:
    """Stops authshim (SIGTERM; the log is flushed on stop) and returns every line of `path`:
    exactly what was logged, no partial line. Faster than waiting for the one-second flush."""
    status, took, killed = shim.stop()
    assert status == 0 and not killed, f"{shim.name}: exit {status} after {took:.1f}s"
    return read_log(path)


def parse_time(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=dt.timezone.utc).timestamp()


def check_times(recs: list[dict], t0: float, t1: float, t_end: float):
    """`time` (when the head arrived, floored to the ms) within [t0, t1] (t0: before the first
    request was sent, t1: after the last answer came back); the request's end, `time` +
    `duration_ms`, before t_end (taken once the lines were read: a line is written after the
    answer went out, a tunnel's when both sides are closed); times never go backwards for
    sequential requests."""
    utc = dt.timezone.utc
    times = [parse_time(r["time"]) for r in recs]
    for r, t in zip(recs, times):
        assert t0 - 0.002 <= t <= t1 + 0.001, f"time {r['time']} outside the test's window " \
            f"[{dt.datetime.fromtimestamp(t0, utc)}, {dt.datetime.fromtimestamp(t1, utc)}]"
        assert 0 < r["duration_ms"] and t + r["duration_ms"] / 1000 <= t_end + 0.002, \
            f"{r}: ends after {dt.datetime.fromtimestamp(t_end, utc)}"
    assert times == sorted(times), [r["time"] for r in recs]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def host_of(nginx) -> str:
    return f"{LOOPBACK}:{nginx.http_port}"


def keepalive_gets(port: int, urls: list[str], method: str = "GET") -> list:
    """One client connection, one request after the other; returns the responses."""
    out = []
    with RawConn(port, timeout=wait_time(30)) as c:
        for url in urls:
            host = url.split("/")[2]
            c.send(f"{method} {url} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            out.append(c.read_response(method, timeout=wait_time(30)))
    return out


def raw_once(port: int, data: bytes, method: str = "GET", source: str | None = None):
    """`data` on a new client connection; returns the response."""
    with RawConn(port, source=source, timeout=wait_time(20)) as c:
        c.send_tolerant(data)
        return c.read_response(method, timeout=wait_time(20))


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def files(nginx):
    return {name: nginx.add_file(f"al-{name}", size) for name, size in SIZES.items()}


@pytest.fixture(scope="module")
def big(nginx):
    return nginx.add_file("al-big.bin", BIG)


@pytest.fixture(scope="module")
def squid_basic(tmp_root):
    """A Squid that demands Basic (basic_ncsa_auth), as in test_auth_squid.py."""
    with basic_squid(tmp_root, "squid-basic-al", {USER: PASSWORD, CLIENT_USER: CLIENT_PASSWORD},
                     algorithm="-B", realm=REALM) as s:
        yield s


@pytest.fixture(scope="module")
def squid_digest(tmp_root):
    with digest_squid(tmp_root, "squid-digest-al", {DIGEST_USER: PASSWORD}, REALM,
                      options=["nonce_max_count 50"]) as s:
        yield s


def open_config(squid, nginx, access_log, name="squid-open", **sections) -> dict:
    return make_config(squid.address, upstream_name=name, log={"access": access_log},
                       access={"connect_ports": [443, nginx.tls_port]}, **sections)


def auth_config(squid_auth, nginx, secrets_dir, access_log, password=PASSWORD, tag="good",
                scheme="basic", **sections) -> dict:
    """Credentials from a 0600 file; log level trace (the suite-wide secrets scan wants every
    authshim with credentials at trace)."""
    user = USER if scheme == "basic" else DIGEST_USER
    secrets.register(user, password, REALM if scheme == "digest" else None)
    pw_file = write_secret(secrets_dir / f"access-log-{tag}.txt", password)
    return make_config(
        squid_auth.address, upstream_name="squid-auth",
        upstreams=[{"name": "squid-auth", "address": squid_auth.address,
                    "credentials": "machine", "schemes": [scheme]}],
        credentials={"machine": {"username": user, "password": {"file": str(pw_file)}}},
        access={"connect_ports": [443, nginx.tls_port]},
        log={"level": "trace", "access": access_log}, **sections)


# ---------------------------------------------------------------------------------------------
# 1. Plain requests


def test_plain_gets_one_line_each_in_order(start_authshim, squid, nginx, files):
    # A local time zone 5:45 east of UTC: a `time` in local time would fall outside the window.
    shim = start_authshim(open_config(squid, nginx, "logs/access.jsonl"), "al-plain",
                          env={"TZ": "XST-5:45"})
    log = shim.dir / "logs" / "access.jsonl"  # relative to the config; `logs/` did not exist
    names = ["k4.bin", "empty.bin", "k300.bin", "one.bin", "k4.bin"]
    args = []
    for name in names:
        args += ["-o", "/dev/null", nginx.url(f"/al-{name}")]
    t0 = time.time()
    r = curl(["-w", "%{http_code} %{size_download} %{num_connects}\n", *args], proxy_port=shim.port)
    h = curl(["-I", "-o", "/dev/null", "-w", "%{http_code}", nginx.url("/al-k4.bin")],
             proxy_port=shim.port)
    t1 = time.time()
    assert r.returncode == 0, r.describe()
    assert r.text.split("\n")[:-1] == [f"200 {SIZES[n]} {1 if i == 0 else 0}"
                                       for i, n in enumerate(names)], r.text
    assert h.returncode == 0 and h.text == "200", h.describe()

    # Flushed within a second, without a stop.
    recs = wait_lines(log, len(names) + 1)
    t_end = time.time()
    assert len(recs) == len(names) + 1, recs
    expected = [("GET", f"/al-{n}", SIZES[n]) for n in names] + [("HEAD", "/al-k4.bin", 0)]
    for rec, (method, path, size) in zip(recs, expected):
        assert {k: rec[k] for k in ("method", "host", "path", "status", "bytes_in", "bytes_out",
                                    "upstream", "scheme", "challenges")} == \
            {"method": method, "host": host_of(nginx), "path": path, "status": 200,
             "bytes_in": 0, "bytes_out": size, "upstream": "squid-open", "scheme": None,
             "challenges": 0}, rec
        assert "error" not in rec, rec
    # curl's five GETs share one connection; the HEAD came on another.
    assert len({rec["client"] for rec in recs[:-1]}) == 1, [rec["client"] for rec in recs]
    assert recs[-1]["client"] != recs[0]["client"], [rec["client"] for rec in recs]
    check_times(recs, t0, t1, t_end)
    assert mode(log) == 0o600, oct(mode(log))

    # Exactly these lines, also after the stop's final flush (nothing doubled, nothing late).
    status, _, killed = shim.stop()
    assert status == 0 and not killed
    assert read_log(log) == recs


# ---------------------------------------------------------------------------------------------
# 2. path: query redaction, escaping, the field cap


def test_query_redacted_by_default(start_authshim, squid, nginx, files):
    """Also for requests authshim refuses (400): a fragment is dropped, userinfo never logged
    (neither in `path` nor in `host`)."""
    secrets.register(USERINFO_USER, USERINFO_PASSWORD)
    shim = start_authshim(open_config(squid, nginx, "access.jsonl"), "al-redact")
    log = shim.dir / "access.jsonl"
    host = host_of(nginx)
    # Raw requests: curl would drop the empty query of the third.
    urls = [nginx.url("/al-one.bin?token=QsecretQ-41x&sig=Zq9"), nginx.url("/al-one.bin"),
            nginx.url("/al-one.bin?")]
    assert [resp.status for resp in keepalive_gets(shim.port, urls)] == [200] * 3
    userinfo = f"{USERINFO_USER}:{USERINFO_PASSWORD}@"
    refused = [raw_once(shim.port, f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
               for target in (f"http://{host}/al-one.bin?token=QsecretQ-41x#QfragQ",
                              f"http://{userinfo}{host}/al-one.bin?token=QsecretQ-41x",
                              f"{userinfo}{host}/al-one.bin")]
    refused.append(raw_once(shim.port, f"CONNECT {userinfo}localhost:443 HTTP/1.1\r\n"
                                       f"Host: localhost:443\r\n\r\n".encode(), "CONNECT"))
    assert [resp.status for resp in refused] == [400] * 4, [r.describe() for r in refused]
    recs = stop_and_read(shim, log)
    assert [(rec["method"], rec["host"], rec["path"], rec["status"]) for rec in recs] == [
        ("GET", host, "/al-one.bin?...", 200),
        ("GET", host, "/al-one.bin", 200),
        ("GET", host, "/al-one.bin?...", 200),
        ("GET", "-", "/al-one.bin?...", 400),
        ("GET", "-", "/al-one.bin?...", 400),
        ("GET", "-", f"{host}/al-one.bin", 400),  # not a URL: the target minus its userinfo
        ("CONNECT", "-", None, 400),
    ], recs
    data = log.read_bytes()
    for needle in (b"QsecretQ", b"token", b"sig=", b"Zq9", b"QfragQ", b"#", USERINFO_USER.encode()):
        assert needle not in data, f"{needle!r} is in the access log: {data!r}"
    # The userinfo password: reported by label only (test output is scanned for secrets too).
    assert not secrets.REGISTRY.find(data), sorted(secrets.REGISTRY.find(data))


def test_query_kept_on_request(start_authshim, squid, nginx, files):
    shim = start_authshim(open_config(squid, nginx, {"file": "access.jsonl", "query": "keep"}),
                          "al-keep")
    log = shim.dir / "access.jsonl"
    url = nginx.url("/al-one.bin?token=QsecretQ-41x&sig=Zq9")
    r = curl(["-o", "/dev/null", "-w", "%{http_code}", url], proxy_port=shim.port)
    assert r.returncode == 0 and r.text == "200", r.describe()
    recs = stop_and_read(shim, log)
    assert [rec["path"] for rec in recs] == ["/al-one.bin?token=QsecretQ-41x&sig=Zq9"], recs


def test_path_escaped_utf8_checked_and_capped(start_authshim, squid, nginx, files):
    """Raw targets: `"` and `\\` escaped, UTF-8 kept, invalid UTF-8 as U+FFFD (one per
    maximal invalid subpart); at most 8 KiB of escaped text per field, then `...`, never
    cutting a UTF-8 sequence or an escape (`path` and `host`)."""
    shim = start_authshim(open_config(squid, nginx, {"file": "access.jsonl", "query": "keep"}),
                          "al-escape")
    log = shim.dir / "access.jsonl"
    host = host_of(nginx)
    long_path = "/al-" + "".join(chr(ord("a") + i % 26) for i in range(10_000))
    cases = [  # (target bytes, expected path)
        ('/al-one.bin?q="a\\b'.encode(), '/al-one.bin?q="a\\b'),
        ("/al-caf\u00e9.bin".encode(), "/al-caf\u00e9.bin"),
        (b"/al-x\xff\xc3(\xe2\x82.bin", "/al-x\ufffd\ufffd(\ufffd.bin"),
        (long_path.encode(), long_path[:MAX_FIELD] + "..."),
        # 2 bytes per character: "/" + 4095 of them fill 8191 bytes, the next one does not fit
        (("/" + "\u00e9" * 5000).encode(), "/" + "\u00e9" * 4095 + "..."),
        # 2 bytes per escaped `"`: "/al-" + 4094 of them fill 8192 bytes exactly
        (("/al-" + '"' * 5000).encode(), "/al-" + '"' * 4094 + "..."),
    ]
    statuses = []
    for target, _ in cases:
        statuses.append(raw_once(shim.port, b"GET http://" + host.encode() + target +
                                 b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n").status)
    assert statuses[0] == 200, statuses
    long_host = "h" * 9000
    denied = raw_once(shim.port, f"CONNECT {long_host}:22 HTTP/1.1\r\nHost: {long_host}:22\r\n\r\n"
                      .encode(), "CONNECT")
    assert denied.status == 403, denied.describe()
    recs = stop_and_read(shim, log)
    assert [rec["path"] for rec in recs[:-1]] == [p for _, p in cases]
    assert [rec["status"] for rec in recs[:-1]] == statuses
    assert recs[-1]["host"] == long_host[:MAX_FIELD] + "...", len(recs[-1]["host"])
    raw = log.read_bytes().split(b"\n")
    assert b'"path":"/al-one.bin?q=\\"a\\\\b"' in raw[0], raw[0]
    assert b'"path":"/al-x\\ufffd\\ufffd(\\ufffd.bin"' in raw[2], raw[2]


# ---------------------------------------------------------------------------------------------
# 3. Request bodies


def test_post_bytes_in_is_the_body(start_authshim, squid, nginx, pyorigin, tmp_root):
    shim = start_authshim(open_config(squid, nginx, "access.jsonl"), "al-post")
    log = shim.dir / "access.jsonl"
    body = tmp_root / "al-post.bin"
    body.write_bytes(os.urandom(200_003))
    variants = [["-H", "Expect:"], ["-H", "Expect:", "-H", "Transfer-Encoding: chunked"],
                ["-H", "Expect: 100-continue"]]
    downloaded = []
    for options in variants:
        r = curl([*options, "--data-binary", f"@{body}", "-o", "/dev/null", "-w",
                  "%{http_code} %{size_download}", pyorigin.url("/post/al")], proxy_port=shim.port)
        code, size = r.text.split()
        assert r.returncode == 0 and code == "200", r.describe()
        downloaded.append(int(size))
    recs = stop_and_read(shim, log)
    assert [(rec["method"], rec["path"], rec["status"], rec["bytes_in"], rec["bytes_out"])
            for rec in recs] == [("POST", "/post/al", 200, 200_003, n) for n in downloaded]
    assert all(rec["host"] == f"{LOOPBACK}:{pyorigin.port}" for rec in recs), recs


# ---------------------------------------------------------------------------------------------
# 4. CONNECT


class CountingTls:
    """A TLS client over memory BIOs for an established tunnel: counts the raw bytes it sends
    and receives (the tunnel bytes authshim must log)."""

    def __init__(self, cafile: Path):
        ctx = ssl.create_default_context(cafile=str(cafile))
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inc, self.out, server_hostname="localhost")
        self.sock: socket.socket | None = None
        self.sent = 0
        self.received = 0

    def first_flight(self) -> bytes:
        """The ClientHello, counted as sent; the caller sends it."""
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        data = self.out.read()
        self.sent += len(data)
        return data

    def feed(self, data: bytes):
        """Tunnel bytes the caller already received (behind the CONNECT answer's head)."""
        self.received += len(data)
        self.inc.write(data)

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)
            self.sent += len(data)

    def fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            self.inc.write_eof()
            return False
        self.feed(data)
        return True

    def handshake(self):
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                if not self.fill():
                    raise ConnectionError("tunnel closed during the TLS handshake")
        self.flush()

    def get(self, path: str) -> bytes:
        """Sends one `Connection: close` GET, reads until the server's close_notify, then reads
        the raw socket to EOF (so every byte the tunnel carried is counted). Sends nothing
        after the request."""
        self.tls.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                       .encode())
        self.flush()
        data = b""
        while True:
            try:
                chunk = self.tls.read(65536)
                if not chunk:
                    break
                data += chunk
            except ssl.SSLWantReadError:
                if not self.fill():
                    break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
        while self.fill():
            pass
        return data


@pytest.mark.parametrize("pipelined", [False, True], ids=["after-200", "pipelined"])
def test_connect_counts_tunnel_bytes(start_authshim, squid, nginx, files, pipelined):
    """`pipelined`: the ClientHello goes in the same write as the CONNECT head (authshim holds
    it in its read buffer until the tunnel is up)."""
    shim = start_authshim(open_config(squid, nginx, "access.jsonl"), "al-connect")
    log = shim.dir / "access.jsonl"
    authority = f"localhost:{nginx.tls_port}"
    head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode()
    t0 = time.time()
    tls = CountingTls(nginx.cert)
    with RawConn(shim.port, timeout=wait_time(20)) as c:
        tls.sock = c.sock
        c.send(head + (tls.first_flight() if pipelined else b""))
        resp = c.read_response("CONNECT", timeout=wait_time(20))
        assert resp.status == 200, resp.describe()
        c.sock.settimeout(wait_time(20))
        # What came behind the 200's head is tunnel data already.
        tls.feed(bytes(c.buf))
        c.buf.clear()
        tls.handshake()
        data = tls.get("/al-k300.bin")
    t1 = time.time()
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(files["k300.bin"].path.read_bytes())
    recs = stop_and_read(shim, log)
    t_end = time.time()
    assert len(recs) == 1, recs
    rec = recs[0]
    assert {k: rec[k] for k in ("method", "host", "path", "status", "upstream", "scheme",
                                "challenges")} == \
        {"method": "CONNECT", "host": authority, "path": None, "status": 200,
         "upstream": "squid-open", "scheme": None, "challenges": 0}, rec
    assert "error" not in rec, rec
    assert (rec["bytes_in"], rec["bytes_out"]) == (tls.sent, tls.received), \
        f"logged in/out {rec['bytes_in']}/{rec['bytes_out']}, the client sent {tls.sent} and " \
        f"received {tls.received} tunnel bytes"
    assert rec["bytes_out"] > SIZES["k300.bin"]
    check_times(recs, t0, t1, t_end)


# ---------------------------------------------------------------------------------------------
# 5. Upstream authentication (Squid Basic)


def assert_no_secret(path: Path):
    """No password, base64(user:password) or Proxy-Authorization value in the file's bytes
    (checked directly, and with the module's secrets registry)."""
    data = path.read_bytes()
    for user, password in ((USER, PASSWORD), (USER, WRONG_PASSWORD),
                           (CLIENT_USER, CLIENT_PASSWORD)):
        token = base64.b64encode(f"{user}:{password}".encode())
        for needle in (password.encode(), json.dumps(password)[1:-1].encode(), token,
                       b"Basic " + token):
            assert needle not in data, f"a secret of {user!r} is in {path.name}"
    for needle in (b"Proxy-Authorization", b"proxy-authorization", b"Basic "):
        assert needle not in data, f"{needle!r} in {path.name}"
    found = secrets.REGISTRY.find(data)
    assert not found, f"secrets in {path.name}: {sorted(found)}"


def test_basic_auth_challenges_and_scheme(start_authshim, squid_basic, nginx, files, secrets_dir):
    secrets.register(CLIENT_USER, CLIENT_PASSWORD)
    shim = start_authshim(auth_config(squid_basic, nginx, secrets_dir, "access.jsonl"), "al-basic")
    log = shim.dir / "access.jsonl"
    t0 = time.time()
    r = curl(["-w", "%{http_code} %{size_download}\n",
              "-o", "/dev/null", nginx.url("/al-k4.bin"),
              "-o", "/dev/null", nginx.url("/al-one.bin?token=abc"),
              "-o", "/dev/null", nginx.url("/al-k300.bin")], proxy_port=shim.port)
    assert r.returncode == 0 and r.text.split("\n")[:-1] == \
        ["200 4097", "200 1", "200 300001"], r.describe()
    # A client's own Proxy-Authorization is dropped, never logged. Credentials from a curl
    # config file, and curl's output never printed: a failure's report would show them.
    client_cfg = secrets_dir / "access-log-client.curlrc"
    client_cfg.write_text(f'proxy-user = "{CLIENT_USER}:{CLIENT_PASSWORD}"\nproxy-basic\n')
    os.chmod(client_cfg, 0o600)
    c = curl(["-v", "-K", client_cfg,
              "-o", "/dev/null", "-w", "%{http_code}", nginx.url("/al-one.bin")],
             proxy_port=shim.port)
    assert c.returncode == 0 and c.text == "200", f"curl exit {c.returncode}, status {c.text}"
    assert "> Proxy-Authorization: Basic " in c.stderr, "curl sent no Proxy-Authorization"
    t = curl(["-p", "--cacert", nginx.cert, "-o", "/dev/null", "-w", "%{http_code}",
              nginx.tls_url("/al-one.bin")], proxy_port=shim.port)
    assert t.returncode == 0 and t.text == "200", t.describe()
    t1 = time.time()
    recs = stop_and_read(shim, log)
    t_end = time.time()
    assert [(rec["method"], rec["path"], rec["status"], rec["bytes_out"], rec["upstream"],
             rec["scheme"], rec["challenges"]) for rec in recs[:4]] == [
        ("GET", "/al-k4.bin", 200, 4097, "squid-auth", "basic", 1),
        ("GET", "/al-one.bin?...", 200, 1, "squid-auth", "basic", 0),
        ("GET", "/al-k300.bin", 200, 300_001, "squid-auth", "basic", 0),
        ("GET", "/al-one.bin", 200, 1, "squid-auth", "basic", 0),
    ], recs
    # The tunnel, pre-emptive Basic as well (CONNECT carries credentials too).
    assert len(recs) == 5, recs
    assert {k: recs[4][k] for k in ("method", "host", "path", "status", "upstream", "scheme",
                                    "challenges")} == \
        {"method": "CONNECT", "host": f"localhost:{nginx.tls_port}", "path": None, "status": 200,
         "upstream": "squid-auth", "scheme": "basic", "challenges": 0}, recs[4]
    assert recs[4]["bytes_in"] > 0 and recs[4]["bytes_out"] > 1, recs[4]
    check_times(recs, t0, t1, t_end)
    assert_no_secret(log)


def test_digest_auth_scheme(start_authshim, squid_digest, nginx, files, secrets_dir):
    """Digest: the first request 1 challenge, the next ones (same upstream connection and
    nonce) none; scheme `digest`; no HA1 or password in the file."""
    shim = start_authshim(auth_config(squid_digest, nginx, secrets_dir, "access.jsonl",
                                      tag="digest", scheme="digest"), "al-digest")
    log = shim.dir / "access.jsonl"
    urls = [nginx.url("/al-k4.bin"), nginx.url("/al-one.bin"), nginx.url("/al-empty.bin")]
    assert [resp.status for resp in keepalive_gets(shim.port, urls)] == [200] * 3
    recs = stop_and_read(shim, log)
    assert [(rec["path"], rec["bytes_out"], rec["upstream"], rec["scheme"], rec["challenges"])
            for rec in recs] == [("/al-k4.bin", 4097, "squid-auth", "digest", 1),
                                 ("/al-one.bin", 1, "squid-auth", "digest", 0),
                                 ("/al-empty.bin", 0, "squid-auth", "digest", 0)], recs
    data = log.read_bytes()
    assert b"Digest " not in data and b"response=" not in data and b"nonce" not in data
    found = secrets.REGISTRY.find(data)
    assert not found, f"secrets in {log.name}: {sorted(found)}"


def test_basic_auth_post_replayed_counts_body_once(start_authshim, squid_basic, nginx, pyorigin,
                                                   secrets_dir, tmp_root):
    """The first request of a fresh authshim is a POST: Squid answers 407, authshim sends the
    body again with credentials; the client sent it once."""
    shim = start_authshim(auth_config(squid_basic, nginx, secrets_dir, "access.jsonl"),
                          "al-basic-post")
    log = shim.dir / "access.jsonl"
    body = tmp_root / "al-post-auth.bin"
    body.write_bytes(os.urandom(30_011))
    r = curl(["-H", "Expect:", "--data-binary", f"@{body}", "-w", "\n%{http_code}",
              pyorigin.url("/post/al-auth")], proxy_port=shim.port)
    out, _, code = r.text.rpartition("\n")
    assert r.returncode == 0 and code == "200", r.describe()
    assert json.loads(out)["bytes"] == 30_011
    recs = stop_and_read(shim, log)
    assert [(rec["method"], rec["status"], rec["bytes_in"], rec["bytes_out"], rec["scheme"],
             rec["challenges"]) for rec in recs] == \
        [("POST", 200, 30_011, len(out.encode()), "basic", 1)], recs
    assert_no_secret(log)


def test_basic_auth_failures_logged(start_authshim, squid_basic, nginx, files, secrets_dir):
    """A wrong password: the 407 to the bare request, then the 407 to the credentials -> 502,
    scheme basic, 2 challenges. No credentials configured: 1 challenge, no scheme -> 502."""
    wrong = start_authshim(auth_config(squid_basic, nginx, secrets_dir, "access.jsonl",
                                       password=WRONG_PASSWORD, tag="wrong"), "al-basic-wrong")
    r = curl(["-w", "%{http_code}", nginx.url("/al-one.bin")], proxy_port=wrong.port)
    assert r.returncode == 0 and r.text.endswith("502"), r.describe()
    answer = r.text[:-3]
    rec, = stop_and_read(wrong, wrong.dir / "access.jsonl")
    assert {k: rec[k] for k in ("method", "status", "bytes_out", "upstream", "scheme",
                                "challenges")} == \
        {"method": "GET", "status": 502, "bytes_out": len(answer.encode()),
         "upstream": "squid-auth", "scheme": "basic", "challenges": 2}, rec
    assert answer == f"authshim: {rec['error']}\n", (answer, rec)
    assert "squid-auth" in rec["error"], rec
    assert_no_secret(wrong.dir / "access.jsonl")

    bare = start_authshim(make_config(squid_basic.address, upstream_name="squid-auth",
                                      log={"access": "access.jsonl"}), "al-basic-none")
    r = curl(["-w", "%{http_code}", nginx.url("/al-one.bin")], proxy_port=bare.port)
    assert r.returncode == 0 and r.text.endswith("502"), r.describe()
    rec, = stop_and_read(bare, bare.dir / "access.jsonl")
    assert {k: rec[k] for k in ("status", "bytes_out", "upstream", "scheme", "challenges")} == \
        {"status": 502, "bytes_out": len(r.text[:-3].encode()), "upstream": "squid-auth",
         "scheme": None, "challenges": 1}, rec
    assert "407" in rec["error"] and "no credentials" in rec["error"], rec


# ---------------------------------------------------------------------------------------------
# 6. Errors


def test_errors_logged_with_reason(start_authshim, nginx, files):
    """Routed to the upstream: an unreachable one (502, `upstream` set). Refused by authshim
    before any routing (no `upstream`): CONNECT to a port outside connect_ports (403), an
    origin-form request (400), a head over limits.max_header_bytes (431: nothing was parsed, so
    no method, host or path), a client outside access.clients (403). `error` is the text of
    the answer, whose body is all `bytes_out` counts."""
    closed = reserved_closed_port()
    try:
        port = closed.getsockname()[1]
        shim = start_authshim(make_config(f"{LOOPBACK}:{port}", upstream_name="dead-upstream",
                                          access={"clients": ["127.0.0.1/32"]},
                                          log={"access": "access.jsonl"}), "al-errors")
        log = shim.dir / "access.jsonl"
        r = curl(["-w", "\n%{http_code}", nginx.url("/al-one.bin")], proxy_port=shim.port)
        answer, _, code = r.text.rpartition("\n")
        assert r.returncode == 0 and code == "502", r.describe()
        answers = []
        for data, source in (
                (b"CONNECT localhost:22 HTTP/1.1\r\nHost: localhost:22\r\n\r\n", None),
                (f"GET /al-one.bin HTTP/1.1\r\nHost: {host_of(nginx)}\r\n\r\n".encode(), None),
                (f"GET {nginx.url('/al-one.bin')} HTTP/1.1\r\nHost: {host_of(nginx)}\r\n"
                 f"X-Big: {'b' * 70_000}\r\n\r\n".encode(), None),
                (f"GET {nginx.url('/al-one.bin')} HTTP/1.1\r\nHost: {host_of(nginx)}\r\n\r\n"
                 .encode(), "127.0.0.2")):
            answers.append(raw_once(shim.port, data, data.split(b" ")[0].decode(), source))
        assert [a.status for a in answers] == [403, 400, 431, 403], [a.describe() for a in answers]
        recs = stop_and_read(shim, log)
    finally:
        closed.close()
    assert len(recs) == 5, recs
    unreachable, refused, origin_form, too_big, denied = recs

    assert {k: unreachable[k] for k in ("method", "host", "path", "status", "bytes_in",
                                        "bytes_out", "upstream", "scheme", "challenges")} == \
        {"method": "GET", "host": host_of(nginx), "path": "/al-one.bin", "status": 502,
         "bytes_in": 0, "bytes_out": len(answer.encode()), "upstream": "dead-upstream",
         "scheme": None, "challenges": 0}, unreachable
    assert unreachable["error"] == \
        f'cannot connect to upstream "dead-upstream" ({LOOPBACK}:{port}): Connection refused', \
        unreachable
    assert answer == f"authshim: {unreachable['error']}\n"

    expected = [  # method, host, path, error (None: checked below)
        ("CONNECT", "localhost:22", None,
         "CONNECT to port 22 is not allowed by access.connect_ports"),
        ("GET", "-", "/al-one.bin", None),  # the target as sent; it never became a URL
        ("-", "-", None, "the request head is larger than limits.max_header_bytes"),
        ("-", "-", None, "this client address is not allowed by access.clients"),
    ]
    for rec, answer, (method, host, path, error) in zip(recs[1:], answers, expected):
        assert {k: rec[k] for k in ("method", "host", "path", "status", "bytes_in", "bytes_out",
                                    "upstream", "scheme", "challenges")} == \
            {"method": method, "host": host, "path": path, "status": answer.status,
             "bytes_in": 0, "bytes_out": len(answer.body), "upstream": None, "scheme": None,
             "challenges": 0}, rec
        assert answer.body == f"authshim: {rec['error']}\n".encode(), (answer.body, rec)
        if error is not None:
            assert rec["error"] == error, rec
    assert "absolute form" in origin_form["error"], origin_form
    assert denied["client"].startswith("127.0.0.2:"), denied
    assert all(rec["client"].startswith("127.0.0.1:") for rec in recs[:4]), recs


def test_bytes_out_is_the_body_whatever_its_framing(start_authshim, fakes):
    """An upstream answering chunked (chunk extensions, a trailer) or close-delimited: authshim
    re-chunks for HTTP/1.1 and closes for HTTP/1.0; `bytes_out` is the body either way (no
    chunk framing)."""
    body = os.urandom(150_001)
    for framing in ("chunked", "eof"):
        up = fakes.answering(f"al-{framing}", body=body, framing=framing)
        shim = start_authshim(make_config(up.address, upstream_name=f"fake-{framing}",
                                          log={"access": "access.jsonl"}), f"al-{framing}")
        got = []
        for version in ("1.1", "1.0"):
            with RawConn(shim.port, timeout=wait_time(20)) as c:
                c.send(f"GET http://origin.test/{framing}/{version} HTTP/{version}\r\n"
                       f"Host: origin.test\r\n\r\n".encode())
                resp = c.read_response(timeout=wait_time(20))
                assert resp.status == 200 and resp.body == body, resp.describe()
                got.append(resp.header("Transfer-Encoding"))
        assert got == ["chunked", None], got
        recs = stop_and_read(shim, shim.dir / "access.jsonl")
        assert [(rec["path"], rec["status"], rec["bytes_out"], rec["upstream"]) for rec in recs] \
            == [(f"/{framing}/{v}", 200, len(body), f"fake-{framing}") for v in ("1.1", "1.0")], \
            recs


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_client_gone_during_body(start_authshim, fakes, framing):
    """The client sends 1000 body bytes of a longer body, authshim forwards them (seen at the
    upstream), then the client closes its connection. bytes_in must be the 1000 body bytes
    authshim received from the client (as bytes_out counts what went out of a response cut
    short). Status: 400 "malformed request body" (an EOF is all authshim sees; a client that
    only half-closed can still read it) or 499 (client_session.cpp's "client went away")."""
    up = fakes.recording("al-gone")
    shim = start_authshim(make_config(up.address, upstream_name="recording",
                                      log={"access": "access.jsonl"}), f"al-gone-{framing}")
    body = b"y" * 1000
    if framing == "chunked":
        data = (b"POST http://origin.test/gone HTTP/1.1\r\nHost: origin.test\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n3e8\r\n" + body + b"\r\n")
    else:
        data = (b"POST http://origin.test/gone HTTP/1.1\r\nHost: origin.test\r\n"
                b"Content-Length: 100000\r\n\r\n" + body)
    with RawConn(shim.port) as c:
        c.send(data)
        # Re-chunked, the body may arrive in several chunks: count its bytes (no `y` in a head
        # or a chunk-size line).
        wait_until(lambda: up.received().count(b"y") == len(body), wait_time(5),
                   what="the body at the upstream")
    rec, = stop_and_read(shim, shim.dir / "access.jsonl")
    assert {k: rec[k] for k in ("method", "host", "path", "upstream")} == \
        {"method": "POST", "host": "origin.test", "path": "/gone", "upstream": "recording"}, rec
    assert rec["status"] in (400, 499), rec
    sent = len(body)
    assert rec["bytes_in"] == sent, \
        f"bytes_in {rec['bytes_in']}, but authshim received (and forwarded) {sent} body " \
        f"bytes from the client: {rec}"


class TruncatingUpstream:
    """Answers every request with `Content-Length: 100000`, sends half of the body and closes:
    a response that fails half-way on the upstream side."""

    def __init__(self):
        self.listener = socket.create_server((LOOPBACK, 0))
        self.address = f"{LOOPBACK}:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                buf = b""
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 50_000)
                time.sleep(0.1)

    def close(self):
        self.listener.close()
        self.thread.join(timeout=5)


def test_response_failed_halfway_has_an_error(start_authshim):
    """The upstream closes after half of a Content-Length body: authshim closes the client
    connection (no silently truncated response) and logs the bytes that went out. The line
    must say that the request failed (access_log.hpp: `error` is "why it failed, when it
    did"); status 200 alone reads like a success."""
    up = TruncatingUpstream()
    try:
        shim = start_authshim(make_config(up.address, upstream_name="truncating",
                                          log={"access": "access.jsonl"}), "al-truncated")
        with RawConn(shim.port, timeout=wait_time(10)) as c:
            c.send(b"GET http://origin.test/half HTTP/1.1\r\nHost: origin.test\r\n\r\n")
            with pytest.raises(ConnectionClosed):
                c.read_response(timeout=wait_time(10))
        rec, = stop_and_read(shim, shim.dir / "access.jsonl")
    finally:
        up.close()
    assert {k: rec[k] for k in ("method", "host", "path", "bytes_in", "bytes_out", "upstream")} \
        == {"method": "GET", "host": "origin.test", "path": "/half", "bytes_in": 0,
            "bytes_out": 50_000, "upstream": "truncating"}, rec
    # authshim's main log has "response body transfer failed on the upstream side: partial
    # message" for it; the access log line must carry the failure too.
    assert "error" in rec, f"a response cut off half-way is logged as a success: {rec}"


def test_existing_file_appended_keeps_its_mode(start_authshim, squid, nginx, files, tmp_root):
    """An absolute path outside the instance folder; the file exists (mode 0640, one line):
    authshim appends to it and leaves its permissions alone."""
    folder = tmp_root / "al-existing"
    folder.mkdir()
    log = folder / "access.jsonl"
    old_line = (b'{"time":"2020-01-01T00:00:00.000Z","client":"127.0.0.1:1","method":"GET",'
                b'"host":"old.test","path":"/old","status":200,"bytes_in":0,"bytes_out":1,'
                b'"duration_ms":1.000,"upstream":"old","scheme":null,"challenges":0}\n')
    log.write_bytes(old_line)
    os.chmod(log, 0o640)
    shim = start_authshim(open_config(squid, nginx, str(log)), "al-existing")
    r = curl(["-o", "/dev/null", "-w", "%{http_code}", nginx.url("/al-one.bin")],
             proxy_port=shim.port)
    assert r.returncode == 0 and r.text == "200", r.describe()
    recs = stop_and_read(shim, log)
    assert log.read_bytes().startswith(old_line)
    assert [(rec["host"], rec["path"]) for rec in recs] == \
        [("old.test", "/old"), (host_of(nginx), "/al-one.bin")], recs
    assert mode(log) == 0o640, oct(mode(log))


# ---------------------------------------------------------------------------------------------
# 7. Rotation


def test_rotation_by_size(start_authshim, squid, nginx, files):
    shim = start_authshim(open_config(
        squid, nginx, {"file": "logs/access.jsonl", "query": "keep", "max_bytes": MIN_MAX_BYTES,
                       "max_files": 2}), "al-rotate")
    folder = shim.dir / "logs"
    # ~6.3 KB lines (the kept query): about 10 per file, 45 requests rotate 4 times.
    pad = "p" * 6000
    total = 45
    urls = [nginx.url(f"/al-one.bin?n={i:03d}&pad={pad}") for i in range(total)]
    responses = keepalive_gets(shim.port, urls)
    assert [resp.status for resp in responses] == [200] * total
    newest = f"?n={total - 1:03d}&"
    deadline = time.monotonic() + wait_time(3)
    while not any(newest in rec["path"] for rec in read_log(folder / "access.jsonl", strict=False)):
        assert time.monotonic() < deadline, f"the last request's line did not arrive: " \
                                            f"{sorted(os.listdir(folder))}"
        time.sleep(0.05)

    names = ["access.2.jsonl", "access.1.jsonl", "access.jsonl"]  # oldest first
    assert sorted(os.listdir(folder)) == sorted(names), os.listdir(folder)
    raw = {name: (folder / name).read_bytes() for name in names}
    per_file = {name: read_log(folder / name) for name in names}
    for name in names:
        size = len(raw[name])
        assert 0 < size <= MIN_MAX_BYTES, f"{name}: {size} bytes, max_bytes {MIN_MAX_BYTES}"
        assert mode(folder / name) == 0o600, f"{name}: mode {oct(mode(folder / name))}"
    # A file was rotated only when the next line did not fit into it.
    for older, newer in zip(names, names[1:]):
        first_next = len(raw[newer].split(b"\n")[0]) + 1
        assert len(raw[older]) + first_next > MIN_MAX_BYTES, \
            f"{older} ({len(raw[older])} bytes) was rotated although the next line " \
            f"({first_next} bytes) fitted"
    # The kept lines are the newest ones, in order, none lost between the files.
    kept = [int(rec["path"].split("?n=")[1][:3]) for name in names for rec in per_file[name]]
    assert kept == list(range(total - len(kept), total)), kept
    assert len(kept) < total  # the oldest went with the rotation
    assert all(rec["path"] == f"/al-one.bin?n={n:03d}&pad={pad}"
               for n, rec in zip(kept, [r for name in names for r in per_file[name]]))


# ---------------------------------------------------------------------------------------------
# 8. Stop


def test_nothing_lost_on_stop(start_authshim, squid, nginx, files, big):
    """20 requests, then SIGTERM while a 20 MB response is half-way: the running request
    finishes (timeouts.shutdown) and every line is in the file when authshim has exited."""
    shim = start_authshim(open_config(squid, nginx, "access.jsonl"), "al-stop")
    log = shim.dir / "access.jsonl"
    responses = keepalive_gets(shim.port, [nginx.url(f"/al-one.bin?n={i}") for i in range(20)])
    assert [resp.status for resp in responses] == [200] * 20
    host = host_of(nginx)
    with socket.create_connection((LOOPBACK, shim.port), timeout=wait_time(30)) as sock:
        sock.sendall(f"GET {nginx.url('/al-big.bin')} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data or len(data) < 100_000:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed early: {data[:200]!r}"
            data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data[:200]
        lines_at_stop = len(read_log(log, strict=False))
        shim.proc.send_signal(signal.SIGTERM)  # once: a second SIGTERM exits at once
        received = len(data) - (data.index(b"\r\n\r\n") + 4)
        while chunk := sock.recv(1 << 20):  # the response goes on; then authshim closes
            received += len(chunk)
    assert received == BIG, f"the running response was cut at {received} of {BIG} bytes"
    status = shim.proc.wait(shim.shutdown_timeout + 2)
    assert status == 0, f"exit status {status} after SIGTERM"
    recs = read_log(log)
    assert [rec["path"] for rec in recs] == ["/al-one.bin?..."] * 20 + ["/al-big.bin"], \
        f"{len(recs)} lines after the stop ({lines_at_stop} were written before it)"
    assert (recs[-1]["status"], recs[-1]["bytes_out"]) == (200, BIG), recs[-1]


# ---------------------------------------------------------------------------------------------
# 9. The file removed while running


@pytest.mark.parametrize("how", ["deleted", "moved"])
def test_removed_file_is_recreated(start_authshim, squid, nginx, files, how):
    shim = start_authshim(open_config(squid, nginx, {"file": "access.jsonl", "query": "keep"}),
                          f"al-{how}")
    log = shim.dir / "access.jsonl"
    first = keepalive_gets(shim.port, [nginx.url(f"/al-one.bin?n={i}") for i in range(3)])
    assert [resp.status for resp in first] == [200] * 3
    assert [rec["path"] for rec in wait_lines(log, 3)] == [f"/al-one.bin?n={i}" for i in range(3)]
    moved = shim.dir / "access.old.jsonl"
    if how == "deleted":
        log.unlink()
    else:
        log.rename(moved)
    second = keepalive_gets(shim.port, [nginx.url(f"/al-one.bin?n={i}") for i in range(3, 5)])
    assert [resp.status for resp in second] == [200] * 2
    t0 = time.monotonic()
    recs = wait_lines(log, 2, timeout=2.0)
    took = time.monotonic() - t0
    assert [rec["path"] for rec in recs] == ["/al-one.bin?n=3", "/al-one.bin?n=4"], \
        f"after {took:.1f}s: {recs}"
    assert mode(log) == 0o600, oct(mode(log))
    if how == "moved":
        # The moved file keeps what it had and gets nothing more.
        assert [rec["path"] for rec in read_log(moved)] == \
            [f"/al-one.bin?n={i}" for i in range(3)]
    shim.stop()
    assert len(read_log(log)) == 2


# ---------------------------------------------------------------------------------------------
# 10. Off by default


@pytest.mark.parametrize("setting", ["absent", "false"])
def test_no_access_log_unless_configured(start_authshim, squid, nginx, files, setting):
    sections = {} if setting == "absent" else {"log": {"access": False}}
    shim = start_authshim(make_config(squid.address, **sections), f"al-off-{setting}")
    r = curl(["-o", "/dev/null", "-w", "%{http_code}", nginx.url("/al-one.bin")],
             proxy_port=shim.port)
    assert r.returncode == 0 and r.text == "200", r.describe()
    shim.stop()  # an access log would have been flushed by now
    made = sorted(str(p.relative_to(shim.dir)) for p in shim.dir.rglob("*"))
    assert made == sorted(["authshim.json", f"{shim.name}.stdout", f"{shim.name}.stderr"]), made


# ---------------------------------------------------------------------------------------------
# Last: no secret in anything this module's authshims wrote


def test_zz_no_secret_in_any_output(tmp_root, module_authshims):
    """Every file in every instance folder of this module (access logs, trace-level main logs),
    searched for every registered secret; the search itself is proven on a canary first."""
    reg = secrets.REGISTRY
    secrets.register(USER, PASSWORD)  # idempotent; for the labels below when run alone
    secrets.register(USERINFO_USER, USERINFO_PASSWORD)
    canary = tmp_root / "al-canary.log"
    canary.write_bytes(PASSWORD.encode() + b"\n" +
                       base64.b64encode(f"{USER}:{PASSWORD}".encode()) + b"\n" +
                       USERINFO_PASSWORD.encode() + b"\n")
    os.chmod(canary, 0o600)
    hits = {label for _, label in reg.find_in_files([canary])}
    canary.unlink()
    for label in (reg.label(USER, PASSWORD, "password"),
                  reg.label(USER, PASSWORD, "base64(user:password)"),
                  reg.label(USERINFO_USER, USERINFO_PASSWORD, "password")):
        assert label in hits, f"the search misses a planted secret: {label}"
    instances = module_authshims()
    assert any(inst.config.get("credentials") for inst in instances), \
        "no authshim with credentials ran: the auth tests did not run"
    files = [p for inst in instances for p in inst.dir.rglob("*")
             if p.is_file() and p.name != "authshim.json"]
    found = reg.find_in_files(files)
    assert not found, f"secrets in authshim output: {[(str(p), label) for p, label in found]}"
