"""Requests authshim must refuse before anything goes upstream: request smuggling framings
(400 and close), origin-form, missing / duplicate Host, oversized header blocks (431) and
request lines (414). The upstream is a recording fake that never answers: it must receive 0
bytes for every one of these.

The smuggling matrix (issue 7): SMUGGLING and HOSTILE_HEADS are refused (400, or 501 for a
transfer coding authshim does not implement: RFC 9112 §6.1) and the connection is closed.

obs-fold and bare CR, as RFC 9112 §5.2 / §2.2 let a recipient choose:
- bare CR anywhere in the head is rejected with 400 (Beast 1.81 reports a bad line ending);
- obs-fold (CRLF followed by SP/HTAB inside a field value) is replaced by a single space before
  any check sees the value (Beast unfolds while parsing). Every check then works on the unfolded
  value, and the upstream receives the head as authshim re-serializes it, so it never sees a
  fold: NORMALIZED proves that with an answering upstream (one request, the folded field as
  `a b`, nothing smuggled behind it). A line folded into Host makes the Host value invalid,
  which is a 400 (RFC 9112 §3.2)."""

import time

import pytest

from harness.authshim import make_config
from harness.client import ConnectionClosed, raw_request
from harness.util import slow_factor

MAX_HEADER_BYTES = 16384
T = "http://origin.test/upload"
H = "Host: origin.test\r\n"


@pytest.fixture(scope="module")
def recorder(fakes_module):
    return fakes_module.recording()


@pytest.fixture(scope="module")
def shim(start_authshim_module, recorder):
    cfg = make_config(recorder.address, timeouts={"upstream_response": "2s"},
                      limits={"max_header_bytes": MAX_HEADER_BYTES})
    return start_authshim_module(cfg, "validation")


@pytest.fixture(autouse=True)
def _clean_recorder(recorder):
    recorder.reset()


def _assert_nothing_upstream(recorder):
    time.sleep(0.3)
    assert recorder.total_bytes == 0, f"upstream received {recorder.received()[:400]!r}"


SMUGGLING = {
    "cl-and-te": f"POST {T} HTTP/1.1\r\n{H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-and-cl": f"POST {T} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    "two-different-cl": f"POST {T} HTTP/1.1\r\n{H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "cl-list-12-13": f"POST {T} HTTP/1.1\r\n{H}Content-Length: 12, 13\r\n\r\nhello world!!",
    "cl-negative": f"POST {T} HTTP/1.1\r\n{H}Content-Length: -1\r\n\r\nx",
    "cl-plus-sign": f"POST {T} HTTP/1.1\r\n{H}Content-Length: +5\r\n\r\nhello",
    "cl-hex": f"POST {T} HTTP/1.1\r\n{H}Content-Length: 0x10\r\n\r\n0123456789abcdef",
    "te-gzip": f"POST {T} HTTP/1.1\r\n{H}Transfer-Encoding: gzip\r\n\r\nabc",
    "te-chunked-gzip": f"POST {T} HTTP/1.1\r\n{H}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    "te-on-http10": f"POST {T} HTTP/1.0\r\n{H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "bad-chunk-size": f"POST {T} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    # not in the list, but the same family (RFC 9112 §5.1: MUST be rejected with 400)
    "space-before-colon-te": f"POST {T} HTTP/1.1\r\n{H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
}


# case -> (request bytes, expected status, a word the error body must contain)
HOSTILE_HEADS = {
    # obfuscated Transfer-Encoding
    "te-xchunked": (f"POST {T} HTTP/1.1\r\n{H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400,
                    "chunked"),
    "te-identity": (f"POST {T} HTTP/1.1\r\n{H}Transfer-Encoding: identity\r\n\r\n0\r\n\r\n", 400,
                    "chunked"),
    "te-chunked-twice-in-list": (
        f"POST {T} HTTP/1.1\r\n{H}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400,
        "more than once"),
    "te-two-chunked-headers": (
        f"POST {T} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\n", 400, "Transfer-Encoding"),
    "te-vertical-tab": (f"POST {T} HTTP/1.1\r\n{H}Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n",
                        400, "malformed"),
    "te-quoted": (f'POST {T} HTTP/1.1\r\n{H}Transfer-Encoding: "chunked"\r\n\r\n0\r\n\r\n', 400,
                  "chunked"),
    "te-chunked-with-parameter": (
        f"POST {T} HTTP/1.1\r\n{H}Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", 400, "chunked"),
    "te-tab-before-colon": (
        f"POST {T} HTTP/1.1\r\n{H}Transfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n", 400, "malformed"),
    "te-folded-after-x": (
        f"POST {T} HTTP/1.1\r\n{H}Transfer-Encoding: x\r\n chunked\r\n\r\n0\r\n\r\n", 400, "chunked"),
    # a coding before chunked: the length is known, the coding is not implemented (RFC 9112 §6.1)
    "te-identity-then-chunked-headers": (
        f"POST {T} HTTP/1.1\r\n{H}Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\n", 501, "not supported"),
    # Content-Length
    "cl-duplicate-identical": (
        f"POST {T} HTTP/1.1\r\n{H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400,
        "Content-Length"),
    "cl-list-identical": (f"POST {T} HTTP/1.1\r\n{H}Content-Length: 5, 5\r\n\r\nhello", 400,
                          "Content-Length"),
    "cl-inner-space": (f"POST {T} HTTP/1.1\r\n{H}Content-Length: 1 0\r\n\r\n0123456789", 400,
                       "Content-Length"),
    "cl-19-digits": (f"POST {T} HTTP/1.1\r\n{H}Content-Length: 0000000000000000005\r\n\r\nhello",
                     400, "Content-Length"),
    # line endings
    "bare-lf-everywhere": (f"POST {T} HTTP/1.1\n{H[:-2]}\nContent-Length: 5\n\nhello", 400,
                           "malformed"),
    "bare-lf-one-header": (f"POST {T} HTTP/1.1\r\n{H[:-2]}\nContent-Length: 5\r\n\r\nhello", 400,
                           "malformed"),
    "bare-cr-in-value": (f"GET {T} HTTP/1.1\r\n{H}X-A: a\rb\r\n\r\n", 400, "line ending"),
    "bare-cr-as-line-end": (
        f"POST {T} HTTP/1.1\r\n{H}X-A: a\rContent-Length: 5\r\n\r\nhello", 400, "line ending"),
    # control bytes in names and values
    "nul-in-value": (f"GET {T} HTTP/1.1\r\n{H}X-A: a\x00b\r\n\r\n", 400, "malformed"),
    "nul-in-name": (f"GET {T} HTTP/1.1\r\n{H}X-\x00A: ab\r\n\r\n", 400, "malformed"),
    "soh-in-name": (f"GET {T} HTTP/1.1\r\n{H}X-\x01A: ab\r\n\r\n", 400, "malformed"),
    "esc-in-value": (f"GET {T} HTTP/1.1\r\n{H}X-A: a\x1bb\r\n\r\n", 400, "malformed"),
    "del-in-value": (f"GET {T} HTTP/1.1\r\n{H}X-A: a\x7fb\r\n\r\n", 400, "malformed"),
    # request line
    "invalid-method-token": (f"G@T {T} HTTP/1.1\r\n{H}\r\n", 400, "method"),
    "control-byte-in-method": (f"G\x01T {T} HTTP/1.1\r\n{H}\r\n", 400, "method"),
    "space-in-target": (f"GET http://origin.test/a b HTTP/1.1\r\n{H}\r\n", 400, "malformed"),
    "control-byte-in-target": (f"GET http://origin.test/a\x01b HTTP/1.1\r\n{H}\r\n", 400,
                               "malformed"),
    "http-0.9-request-line": (f"GET {T}\r\n\r\n", 400, "malformed"),
    "bad-version": (f"GET {T} HTTP/1.1x\r\n{H}\r\n", 400, "malformed"),
    "absolute-form-userinfo": (f"GET http://user:pass@origin.test/ HTTP/1.1\r\n{H}\r\n", 400,
                               "userinfo"),
    "connect-userinfo": ("CONNECT user@origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n",
                         400, "userinfo"),
    # Host
    "line-folded-into-host": (
        f"POST {T} HTTP/1.1\r\n{H} Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "Host"),
    "host-with-userinfo": (f"GET {T} HTTP/1.1\r\nHost: user@origin.test\r\n\r\n", 400, "Host"),
    # a chunk size past 64 bits (the head is fine, the body is not)
    "chunk-size-overflow": (
        f"POST {T} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff1\r\nhello\r\n"
        "0\r\n\r\n", 400, "chunk"),
}


def _refused(shim, recorder, raw: bytes, method: str = "POST"):
    try:
        resp, closed = raw_request(shim.port, raw, method, timeout=10 * slow_factor(),
                                   check_close=True)
    except ConnectionClosed:
        time.sleep(0.3)
        pytest.fail(f"connection closed without a response; upstream received "
                    f"{recorder.total_bytes} bytes: {recorder.received()[:300]!r}")
    return resp, closed


@pytest.mark.parametrize("case", list(SMUGGLING))
def test_smuggling_framing_rejected(shim, recorder, case):
    resp, closed = _refused(shim, recorder, SMUGGLING[case].encode())
    assert resp.status == 400, resp.describe()
    assert closed, "connection not closed after the 400"
    _assert_nothing_upstream(recorder)


@pytest.mark.parametrize("case", list(HOSTILE_HEADS))
def test_hostile_head_rejected(shim, recorder, case):
    raw, status, word = HOSTILE_HEADS[case]
    method = raw.split(" ", 1)[0]
    resp, closed = _refused(shim, recorder, raw.encode("latin-1"),
                            "CONNECT" if method == "CONNECT" else "POST")
    assert resp.status == status, resp.describe()
    assert resp.text.startswith("authshim: ") and word.lower() in resp.text.lower(), \
        f"error body should say why ({word!r}): {resp.text!r}"
    assert closed, f"connection not closed after the {status}"
    _assert_nothing_upstream(recorder)


SMUGGLED = "GET http://smuggled.test/ HTTP/1.1\r\nHost: smuggled.test\r\n\r\n"
CLOSE = "Connection: close\r\n"
# Accepted: the head means one thing to authshim and, re-serialized, the same to the upstream.
# Each is followed by a second request on the same connection; with Connection: close it must
# never reach the upstream. case -> (request bytes, (field, value) the upstream must see)
NORMALIZED = {
    "obs-fold-in-a-value": (f"GET {T} HTTP/1.1\r\n{H}{CLOSE}X-Folded: a\r\n b\r\n\r\n{SMUGGLED}",
                            ("X-Folded", "a b")),
    "obs-fold-before-chunked": (
        f"POST {T} HTTP/1.1\r\n{H}{CLOSE}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n{SMUGGLED}",
        ("Transfer-Encoding", "chunked")),
    "te-chunked-trailing-space": (
        f"POST {T} HTTP/1.1\r\n{H}{CLOSE}Transfer-Encoding: chunked \r\n\r\n0\r\n\r\n{SMUGGLED}",
        ("Transfer-Encoding", "chunked")),
    "te-empty-list-elements": (
        f"POST {T} HTTP/1.1\r\n{H}{CLOSE}Transfer-Encoding: , chunked ,\r\n\r\n0\r\n\r\n{SMUGGLED}",
        ("Transfer-Encoding", "chunked")),
    "te-chunked-mixed-case": (
        f"POST {T} HTTP/1.1\r\n{H}{CLOSE}Transfer-Encoding: cHuNkEd\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        f"{SMUGGLED}", ("Transfer-Encoding", "chunked")),
}


@pytest.fixture(scope="module")
def answering(fakes_module):
    return fakes_module.answering("normalized")


@pytest.fixture(scope="module")
def shim_answered(start_authshim_module, answering):
    return start_authshim_module(make_config(answering.address), "normalized")


@pytest.mark.parametrize("case", list(NORMALIZED))
def test_normalized_head_reaches_upstream_as_one_request(shim_answered, answering, case):
    raw, (name, value) = NORMALIZED[case]
    before = len(answering.recorded())
    resp, closed = raw_request(shim_answered.port, raw.encode(), raw.split(" ", 1)[0],
                               timeout=10 * slow_factor(), check_close=True)
    assert resp.status == 200 and resp.body == answering.body, resp.describe()
    assert closed, "Connection: close was not honoured"
    time.sleep(0.3)
    got = answering.recorded()[before:]
    assert len(got) == 1, [r.head for r in got]
    req = got[0]
    assert req.request_line == f"{raw.split(' ', 1)[0]} {T} HTTP/1.1", req.head
    assert req.header_values(name) == [value], req.head
    assert b"\r\n " not in req.head and b"\r\n\t" not in req.head, f"a fold went upstream: {req.head!r}"
    assert b"smuggled" not in req.head + req.body, req.head
    if "hello" in raw:
        assert req.body == b"hello"


def test_origin_form_rejected(shim, recorder):
    resp, _ = raw_request(shim.port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert resp.status == 400, resp.describe()
    assert "proxy" in resp.text.lower(), f"body should say this is a proxy: {resp.text!r}"
    _assert_nothing_upstream(recorder)


@pytest.mark.parametrize("case", ["missing", "duplicate-same", "duplicate-different"])
def test_host_header_rules(shim, recorder, case):
    hosts = {"missing": "", "duplicate-same": H + H,
             "duplicate-different": H + "Host: other.test\r\n"}[case]
    resp, _ = raw_request(shim.port, f"GET http://origin.test/ HTTP/1.1\r\n{hosts}\r\n".encode())
    assert resp.status == 400, resp.describe()
    _assert_nothing_upstream(recorder)


def test_header_block_over_limit_431(shim, recorder):
    fill = "".join(f"X-Fill-{i}: {'a' * 1000}\r\n" for i in range(MAX_HEADER_BYTES // 1000 + 4))
    resp, _ = raw_request(shim.port, f"GET http://origin.test/ HTTP/1.1\r\n{H}{fill}\r\n".encode())
    assert resp.status == 431, resp.describe()
    _assert_nothing_upstream(recorder)


def test_request_line_too_long_414(shim, recorder):
    path = "/" + "a" * 100_000
    resp, _ = raw_request(shim.port, f"GET http://origin.test{path} HTTP/1.1\r\n{H}\r\n".encode())
    assert resp.status == 414, resp.describe()
    _assert_nothing_upstream(recorder)


def test_control_valid_request_reaches_upstream(shim, recorder):
    """The recorder is wired up: a valid request does arrive (and, unanswered, ends in 504)."""
    resp, _ = raw_request(shim.port, f"POST {T} HTTP/1.1\r\n{H}Content-Length: 5\r\n\r\nhello".encode(),
                          "POST", timeout=15 * slow_factor())
    assert resp.status == 504, resp.describe()
    assert recorder.received().startswith(f"POST {T} HTTP/1.1\r\n".encode())
    assert recorder.received().endswith(b"hello")
