"""Requests authshim must refuse before anything goes upstream: request smuggling framings
(400 and close), origin-form, missing / duplicate Host, oversized header blocks (431) and
request lines (414). The upstream is a recording fake that never answers: it must receive 0
bytes for every one of these."""

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


@pytest.mark.parametrize("case", list(SMUGGLING))
def test_smuggling_framing_rejected(shim, recorder, case):
    try:
        resp, closed = raw_request(shim.port, SMUGGLING[case].encode(), "POST",
                                   timeout=10 * slow_factor(), check_close=True)
    except ConnectionClosed:
        time.sleep(0.3)
        pytest.fail(f"connection closed without a response; upstream received "
                    f"{recorder.total_bytes} bytes: {recorder.received()[:300]!r}")
    assert resp.status == 400, resp.describe()
    assert closed, "connection not closed after the 400"
    _assert_nothing_upstream(recorder)


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
