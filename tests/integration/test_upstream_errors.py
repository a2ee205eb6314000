"""Upstream failures give fast, explicit answers: refused -> 502, no response headers within
timeouts.upstream_response -> 504, connect hanging past timeouts.connect -> 504. Bodies are
short text naming the upstream and the reason."""

import time

from harness.authshim import make_config
from harness.client import RawConn
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
