"""What authshim sends upstream, seen by a fake upstream that records each request head and
answers 200: absolute-form target byte-for-byte, Host from the target, hop-by-hop headers and
the client's Proxy-Authorization removed, Via added, bodies re-framed intact."""

import pytest

from harness.authshim import make_config
from harness.client import RawConn

STRIPPED = ("x-foo", "keep-alive", "proxy-authorization", "proxy-connection", "te", "trailer",
            "upgrade", "proxy-authenticate")


@pytest.fixture(scope="module")
def upstream(fakes_module):
    return fakes_module.answering()


@pytest.fixture(scope="module")
def shim(start_authshim_module, upstream):
    return start_authshim_module(make_config(upstream.address), "rewriting")


def _send(shim, upstream, raw: bytes, method="GET"):
    before = len(upstream.recorded())
    with RawConn(shim.port) as c:
        c.send(raw)
        resp = c.read_response(method)
    assert resp.status == 200, resp.describe()
    recorded = upstream.recorded()
    assert len(recorded) == before + 1, f"upstream saw {len(recorded) - before} requests"
    return resp, recorded[-1]


def test_hop_by_hop_headers_stripped(shim, upstream):
    raw = (b"GET http://origin.test:8080/path?q=1 HTTP/1.1\r\n"
           b"Host: origin.test:8080\r\n"
           b"Connection: X-Foo, keep-alive\r\n"
           b"X-Foo: 1\r\n"
           b"Keep-Alive: timeout=5, max=100\r\n"
           b"Proxy-Authorization: Basic abc\r\n"
           b"Proxy-Connection: keep-alive\r\n"
           b"TE: trailers\r\n"
           b"X-Keep: yes\r\n"
           b"User-Agent: Microsoft-CryptoAPI/10.0\r\n\r\n")
    resp, req = _send(shim, upstream, raw)
    assert resp.body == upstream.body
    assert req.request_line == "GET http://origin.test:8080/path?q=1 HTTP/1.1", req.head
    assert req.header_values("Host") == ["origin.test:8080"], req.head
    names = {k.lower() for k, _ in req.headers}
    leaked = names & set(STRIPPED)
    assert not leaked, f"hop-by-hop headers forwarded: {leaked}\n{req.head.decode('latin-1')}"
    for value in req.header_values("Connection"):
        tokens = {t.strip().lower() for t in value.split(",")}
        assert tokens <= {"keep-alive", "close"}, f"Connection forwarded as {value!r}"
    via = ", ".join(req.header_values("Via"))
    assert "authshim" in via.lower(), f"Via: {via!r}"
    assert req.header("X-Keep") == "yes"
    assert req.header("User-Agent") == "Microsoft-CryptoAPI/10.0"


@pytest.mark.parametrize("target,host", [
    ("http://origin.test:8080/a", "origin.test:8080"),
    ("http://origin.test/a", "origin.test"),
    ("http://192.0.2.7:81/a", "192.0.2.7:81"),
])
def test_host_rewritten_from_target(shim, upstream, target, host):
    raw = f"GET {target} HTTP/1.1\r\nHost: wrong.example\r\n\r\n".encode()
    _, req = _send(shim, upstream, raw)
    assert req.target == target, req.head
    assert req.header_values("Host") == [host], req.head


@pytest.mark.parametrize("target", [
    "http://ocsp.test/ocsp/MFMwUTBPME0wSzAJBgUrDgMCGgUABBQ%2Bx/AB+c=",
    "http://ocsp.test/MFEwTzBNMEswSTAJBgUrDgMCGgUABBS3%2FkfNe%2B%2Bc%3D",
    "http://crl.test/a%2fb/./c/../d;p?x=1&y=%20+z&=",
    "http://crl.test/~user/%7E?q=a:b@c/d",
])
def test_target_forwarded_byte_for_byte(shim, upstream, target):
    host = target.split("/")[2]
    _, req = _send(shim, upstream, f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    assert req.target == target, f"forwarded as {req.request_line!r}"


def test_http10_client_forwarded(shim, upstream):
    raw = b"GET http://origin.test/old HTTP/1.0\r\n\r\n"
    with RawConn(shim.port) as c:
        c.send(raw)
        resp = c.read_response()
        assert resp.status == 200 and resp.body == upstream.body, resp.describe()
    req = upstream.recorded()[-1]
    assert req.target == "http://origin.test/old"
    assert req.header_values("Host") == ["origin.test"], req.head


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_request_body_forwarded_intact(shim, upstream, framing):
    body = bytes(range(256)) * 300
    if framing == "chunked":
        encoded = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7000]), body[i:i + 7000])
                           for i in range(0, len(body), 7000)) + b"0\r\n\r\n"
        head = "Transfer-Encoding: chunked\r\n"
    else:
        encoded = body
        head = f"Content-Length: {len(body)}\r\n"
    raw = f"POST http://origin.test/post HTTP/1.1\r\nHost: origin.test\r\n{head}\r\n".encode() + encoded
    _, req = _send(shim, upstream, raw, "POST")
    assert req.body == body, f"{len(req.body)} bytes forwarded, {len(body)} sent"
    te = req.header("Transfer-Encoding")
    cl = req.header("Content-Length")
    assert not (te and cl), f"forwarded with both TE and CL:\n{req.head.decode('latin-1')}"
