"""Upstream failures give fast, explicit answers: refused -> 502, no response headers within
timeouts.upstream_response -> 504, connect hanging past timeouts.connect -> 504. Bodies are
short text naming the upstream and the reason. And a credential check that never got its
verdict (an upstream that closes, a client that abandons its upload) holds nobody up."""

import time

from harness import secrets
from harness.authshim import make_config
from harness.client import RawConn
from harness.fakes import _FakeServer
from harness.secrets import write_secret
from harness.util import reserved_closed_port, slow_factor

UPSTREAM_NAME = "corp-upstream-7"


def _get(port, timeout=20.0):
    with RawConn(port) as c:
        t0 = time.monotonic()
        c.send(b"GET http://origin.test/crl/x.crl HTTP/1.1\r\nHost: origin.test\r\n"
               b"User-Agent: Microsoft-CryptoAPI/10.0\r\n\r\n")
        resp = c.read_response(timeout=timeout * slow_factor())
        return resp, time.monotonic() - t0


def _check_body(resp, reasons):
    body = resp.text
    assert len(resp.body) < 2048, f"error body too long ({len(resp.body)} bytes)"
    assert UPSTREAM_NAME in body, f"body does not name the upstream: {body!r}"
    assert any(r in body.lower() for r in reasons), f"body does not say why ({reasons}): {body!r}"


def test_upstream_refused_502(start_authshim):
    closed = reserved_closed_port()
    try:
        port = closed.getsockname()[1]
        shim = start_authshim(make_config(f"127.0.0.1:{port}", upstream_name=UPSTREAM_NAME), "refused")
        resp, elapsed = _get(shim.port)
        assert resp.status == 502, resp.describe()
        assert elapsed < 3 * slow_factor(), f"502 took {elapsed:.2f}s"
        _check_body(resp, ("refused", "connect", "unreachable"))
        # CONNECT as well
        with RawConn(shim.port) as c:
            c.send(b"CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n")
            resp = c.read_response("CONNECT", timeout=10 * slow_factor())
        assert resp.status == 502, resp.describe()
    finally:
        closed.close()


def test_silent_upstream_504_after_upstream_response(start_authshim, fakes):
    silent = fakes.recording("silent")
    shim = start_authshim(make_config(silent.address, upstream_name=UPSTREAM_NAME,
                                      timeouts={"upstream_response": "2s"}), "silent")
    resp, elapsed = _get(shim.port)
    assert resp.status == 504, resp.describe()
    upper = 3.0 + (0.5 if slow_factor() > 1 else 0.0)
    assert 2.0 <= elapsed <= upper, f"504 after {elapsed:.2f}s (expected 2-{upper}s)"
    _check_body(resp, ("timed out", "timeout", "time out", "no response"))
    assert silent.received().startswith(b"GET http://origin.test/crl/x.crl HTTP/1.1\r\n")


def test_connect_timeout_504_full_accept_queue(start_authshim, fakes):
    queue = fakes.full_accept_queue()
    shim = start_authshim(make_config(queue.address, upstream_name=UPSTREAM_NAME,
                                      timeouts={"connect": "2s", "upstream_response": "10s"}),
                          "accept-queue")
    assert queue.connect_hangs(0.3), "fixture: the accept queue is not full"
    resp, elapsed = _get(shim.port)
    assert resp.status == 504, resp.describe()
    upper = 3.0 + (0.5 if slow_factor() > 1 else 0.0)
    assert 1.9 <= elapsed <= upper, f"504 after {elapsed:.2f}s (expected ~2s: timeouts.connect)"
    _check_body(resp, ("timed out", "timeout", "time out", "connect"))


class _NoVerdictUpstream(_FakeServer):
    """Demands Basic; a request with credentials for a `/noverdict` path gets no answer at all
    (the connection closes), others get 200 once their body is read. What each request looked
    like is kept: (method, path, carried credentials)."""

    def __init__(self):
        super().__init__("no-verdict")
        self.seen: list[tuple[str, str, bool]] = []

    def serve(self, conn, index):
        f = conn.makefile("rb")
        while True:
            line = f.readline()
            if not line:
                return
            headers = {}
            while True:
                h = f.readline()
                if h in (b"\r\n", b"\n", b""):
                    break
                k, _, v = h.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            method, target = line.decode("latin-1").split()[:2]
            authed = "proxy-authorization" in headers
            with self._lock:
                self.seen.append((method, target, authed))
            length = int(headers.get("content-length", "0"))
            if not authed:
                if length:
                    f.read(length)
                conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                             b'Proxy-Authenticate: Basic realm="x"\r\nContent-Length: 0\r\n\r\n')
                continue
            if "/noverdict" in target:
                return  # closed unanswered: the credentials are neither accepted nor refused
            while length > 0:
                chunk = f.read(min(length, 65536))
                if not chunk:
                    return
                length -= len(chunk)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def test_aborted_upload_with_unverified_credentials_blocks_nobody(start_authshim, secrets_dir):
    """Credentials not yet verified (their first use got no verdict), then a body larger than
    limits.replay_body streamed with them, which the client abandons: the next request must not
    wait for a verdict that never comes (it did, forever, once)."""
    up = _NoVerdictUpstream().start()
    try:
        secrets.register("nv-user", "Nv-pw-81x")
        pw = write_secret(secrets_dir / "noverdict.pw", "Nv-pw-81x")
        cfg = make_config(up.address, upstream_name=UPSTREAM_NAME,
                          upstreams=[{"name": UPSTREAM_NAME, "address": up.address,
                                      "credentials": "m", "schemes": ["basic"]}],
                          credentials={"m": {"username": "nv-user", "password": {"file": str(pw)}}},
                          timeouts={"upstream_response": "2s"}, limits={"replay_body": 65536},
                          log={"level": "trace"})
        shim = start_authshim(cfg, "no-verdict")
        with RawConn(shim.port) as c:  # 407, then the credentials go unanswered: 502
            c.send(b"GET http://origin.test/noverdict HTTP/1.1\r\nHost: origin.test\r\n\r\n")
            assert c.read_response(timeout=20 * slow_factor()).status == 502
        c = RawConn(shim.port)  # 2 MB announced, 100 KB sent, then the client goes away
        c.send(b"POST http://origin.test/upload HTTP/1.1\r\nHost: origin.test\r\n"
               b"Content-Length: 2000000\r\n\r\n" + b"x" * 100_000)
        time.sleep(0.3)
        c.close()
        time.sleep(0.3)
        t0 = time.monotonic()
        resp, _ = _get(shim.port, timeout=20.0)
        took = time.monotonic() - t0
        assert resp.status == 200 and resp.body == b"ok", resp.describe()
        assert took < 3 * slow_factor(), f"the next request waited {took:.1f}s"
        assert ("GET", "http://origin.test/crl/x.crl", True) in up.seen, up.seen
    finally:
        up.stop()
