"""Response and request bodies relayed whatever their framing: a chunked upstream answer
(chunk extensions, a trailer, chunks split across writes) or one delimited by the upstream's
close reaches an HTTP/1.1 client re-chunked and an HTTP/1.0 client delimited by close; a
Content-Length body of any size arrives intact and leaves both connections usable; pipelined
requests behind a request body are not swallowed with it."""

import hashlib
import random

import pytest

from harness.authshim import make_config
from harness.client import RawConn

BODY = random.Random(5).randbytes(300_000 + 11)


def _get(port: int, target: str, version: str = "1.1", conn: RawConn | None = None):
    raw = f"GET {target} HTTP/{version}\r\nHost: origin.test\r\n\r\n".encode()
    if conn is not None:
        conn.send(raw)
        return conn.read_response()
    with RawConn(port) as c:
        c.send(raw)
        return c.read_response()


@pytest.fixture(scope="module", params=["chunked", "eof", "content-length"])
def setup(request, fakes_module, start_authshim_module):
    upstream = fakes_module.answering(f"framing-{request.param}", body=BODY,
                                      framing=request.param)
    shim = start_authshim_module(make_config(upstream.address), f"framing-{request.param}")
    return request.param, upstream, shim


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_http11_client_gets_the_whole_body_and_keeps_the_connection(setup):
    framing, upstream, shim = setup
    with RawConn(shim.port) as c:
        for i in range(3):
            r = _get(shim.port, f"http://origin.test/{framing}/{i}", conn=c)
            assert r.status == 200, r.describe()
            assert len(r.body) == len(BODY) and _digest(r.body) == _digest(BODY), \
                f"{framing}: body of {len(r.body)} bytes differs"
            te = ",".join(r.header_values("Transfer-Encoding")).lower()
            if framing == "content-length":
                assert r.header("Content-Length") == str(len(BODY)) and not te, r.head
            else:
                assert te == "chunked" and r.header("Content-Length") is None, r.head
            assert not r.header_values("X-Trailer"), "a trailer became a header"


def test_http10_client_gets_the_whole_body_delimited_as_it_can_read_it(setup):
    framing, upstream, shim = setup
    with RawConn(shim.port) as c:
        r = _get(shim.port, f"http://origin.test/{framing}/h10", version="1.0", conn=c)
        assert r.status == 200, r.describe()
        assert _digest(r.body) == _digest(BODY), f"{framing}: {len(r.body)} bytes"
        assert not r.header_values("Transfer-Encoding"), r.head
        if framing != "content-length":
            assert c.closed_by_peer(), "an HTTP/1.0 body without length must end with the close"


def test_head_has_no_body(setup):
    framing, upstream, shim = setup
    with RawConn(shim.port) as c:
        c.send(b"HEAD http://origin.test/head HTTP/1.1\r\nHost: origin.test\r\n\r\n")
        r = c.read_response("HEAD")
        assert r.status == 200 and r.body == b"", r.describe()
        if framing != "eof":  # the connection still works: the next answer is whole
            r = _get(shim.port, "http://origin.test/after-head", conn=c)
            assert _digest(r.body) == _digest(BODY)


def test_pipelined_request_behind_a_body_is_answered(setup):
    framing, upstream, shim = setup
    if framing == "eof":
        pytest.skip("an EOF-delimited answer ends the upstream connection; covered above")
    body = random.Random(9).randbytes(70_000)
    with RawConn(shim.port) as c:
        c.send(b"POST http://origin.test/upload HTTP/1.1\r\nHost: origin.test\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body +
               b"GET http://origin.test/pipelined HTTP/1.1\r\nHost: origin.test\r\n\r\n")
        first = c.read_response()
        second = c.read_response()
    assert first.status == 200 and second.status == 200, (first.describe(), second.describe())
    assert _digest(second.body) == _digest(BODY)
    seen = {r.target: r for r in upstream.recorded()}
    assert seen["http://origin.test/upload"].body == body
    assert "http://origin.test/pipelined" in seen
