"""Plain HTTP forwarding through authshim -> Squid -> nginx / the upload origin: downloads
(sha256 compared), HEAD, uploads framed by Content-Length and chunked, conditional GET, OCSP
paths byte-for-byte, Via at the origin."""

import json
import time

from harness.client import RawConn, curl, sha256_file
from harness.util import slow_factor


def test_get_1k(proxy, nginx, tmp_root):
    small = nginx.files["small.bin"]
    out = tmp_root / "get-1k.out"
    r = curl(["-o", out, "-w", "%{http_code}", nginx.url("/small.bin")], proxy_port=proxy.port)
    assert r.returncode == 0 and r.text == "200", r.describe()
    assert sha256_file(out) == small.sha256


def test_get_50mb(proxy, big_file, nginx, tmp_root):
    out = tmp_root / "get-50m.out"
    r = curl(["-o", out, "-w", "%{http_code} %{size_download}", nginx.url("/big.bin")],
             proxy_port=proxy.port, max_time=60 * slow_factor())
    try:
        assert r.returncode == 0 and r.text == f"200 {big_file.size}", r.describe()
        assert sha256_file(out) == big_file.sha256
    finally:
        out.unlink(missing_ok=True)


def test_head_then_get_on_same_connection(proxy, big_file, nginx):
    host = f"127.0.0.1:{nginx.http_port}"
    with RawConn(proxy.port) as c:
        c.send(f"HEAD http://{host}/big.bin HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        head = c.read_response("HEAD")
        assert head.status == 200, head.describe()
        assert head.header("Content-Length") == str(big_file.size), head.describe()
        assert head.body == b""
        # The HEAD response carried no body: the connection must still be in sync.
        c.send(f"GET http://{host}/small.bin HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        get = c.read_response("GET")
        assert get.status == 200 and len(get.body) == 1024, get.describe()
        assert get.body == nginx.files["small.bin"].path.read_bytes()


def test_head_with_curl(proxy, nginx):
    r = curl(["-I", "-w", "%{http_code}", "-o", "/dev/null", nginx.url("/medium.bin")],
             proxy_port=proxy.port)
    assert r.returncode == 0 and r.text == "200", r.describe()


def _upload(proxy, url, body_path, extra):
    r = curl([*extra, url], proxy_port=proxy.port, max_time=30 * slow_factor())
    assert r.returncode == 0, r.describe()
    doc = json.loads(r.stdout)
    assert doc["bytes"] == body_path.stat().st_size, doc
    assert doc["sha256"] == sha256_file(body_path), doc
    return doc


def _random_file(tmp_root, name, size):
    import os
    path = tmp_root / name
    if not path.exists():
        path.write_bytes(os.urandom(size))
    return path


def test_post_content_length(proxy, pyorigin, tmp_root):
    body = _random_file(tmp_root, "post-1m.bin", 1024 * 1024 + 17)
    doc = _upload(proxy, pyorigin.url("/post"), body,
                  ["-H", "Expect:", "-H", "Content-Type: application/ocsp-request",
                   "--data-binary", f"@{body}"])
    assert doc["method"] == "POST"


def test_put_content_length(proxy, pyorigin, tmp_root):
    body = _random_file(tmp_root, "put-3m.bin", 3 * 1024 * 1024 + 5)
    doc = _upload(proxy, pyorigin.url("/put"), body, ["-H", "Expect:", "-T", body])
    assert doc["method"] == "PUT"


def test_post_expect_100_continue(proxy, pyorigin, tmp_root):
    body = _random_file(tmp_root, "post-expect.bin", 2 * 1024 * 1024)
    t0 = time.monotonic()
    _upload(proxy, pyorigin.url("/expect"), body,
            ["-H", "Expect: 100-continue", "--data-binary", f"@{body}"])
    assert time.monotonic() - t0 < 15 * slow_factor()


def test_chunked_upload(proxy, pyorigin, tmp_root):
    body = _random_file(tmp_root, "chunked-3m.bin", 3 * 1024 * 1024 + 3)
    doc = _upload(proxy, pyorigin.url("/chunked"), body,
                  ["-H", "Expect:", "-H", "Transfer-Encoding: chunked", "--data-binary", f"@{body}"])
    assert doc["method"] == "POST"


def _headers(text):
    out = {}
    for line in text.splitlines():
        if ":" in line:
            k, _, v = line.partition(":")
            out[k.strip().lower()] = v.strip()
    return out


def test_conditional_get_304(proxy, nginx):
    url = nginx.url("/small.bin")
    r = curl(["-D", "-", "-o", "/dev/null", url], proxy_port=proxy.port)
    assert r.returncode == 0, r.describe()
    h = _headers(r.text)
    assert "etag" in h and "last-modified" in h, r.text
    for cond in (f"If-None-Match: {h['etag']}", f"If-Modified-Since: {h['last-modified']}"):
        r = curl(["-D", "-", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                  "-H", cond, url], proxy_port=proxy.port)
        assert r.returncode == 0, r.describe()
        assert r.text.rstrip().endswith("304 0"), (cond, r.text)
    # a stale validator gets the full body
    r = curl(["-o", "/dev/null", "-w", "%{http_code} %{size_download}",
              "-H", 'If-None-Match: "not-the-etag"', url], proxy_port=proxy.port)
    assert r.text == "200 1024", r.describe()


def test_conditional_get_304_then_reuse(proxy, nginx):
    """A 304 has no body even if it carries Content-Length: the next request on the same
    client connection must work."""
    host = f"127.0.0.1:{nginx.http_port}"
    with RawConn(proxy.port) as c:
        c.send(f"GET http://{host}/small.bin HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        first = c.read_response()
        etag = first.header("ETag")
        assert first.status == 200 and etag, first.describe()
        c.send(f"GET http://{host}/small.bin HTTP/1.1\r\nHost: {host}\r\nIf-None-Match: {etag}\r\n\r\n".encode())
        second = c.read_response()
        assert second.status == 304, second.describe()
        c.send(f"GET http://{host}/medium.bin HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        third = c.read_response()
        assert third.status == 200 and len(third.body) == 256 * 1024, third.describe()


def test_ocsp_path_byte_for_byte(proxy, nginx):
    path = "/ocsp/MFMwUTBPME0wSzAJBgUrDgMCGgUABBQ%2Bx/AB+c="
    r = curl(["--path-as-is", "-H", "User-Agent: Microsoft-CryptoAPI/10.0", nginx.url(path)],
             proxy_port=proxy.port)
    assert r.returncode == 0 and r.text == "ocsp-ok\n", r.describe()
    deadline = time.monotonic() + 2
    while f'"GET {path} HTTP/1.1"' not in nginx.access_log() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = nginx.access_log()
    assert f'"GET {path} HTTP/1.1"' in log, f"path changed on the way; nginx access log:\n{log[-2000:]}"


def test_via_and_no_proxy_authorization_at_origin(proxy, pyorigin):
    r = curl(["-H", "Proxy-Authorization: Basic YWxpY2U6c2VjcmV0", "-H", "X-Keep: yes",
              pyorigin.url("/echo")], proxy_port=proxy.port)
    assert r.returncode == 0, r.describe()
    headers = json.loads(r.stdout)["headers"]
    names = [k.lower() for k, _ in headers]
    assert "proxy-authorization" not in names, headers
    via = ", ".join(v for k, v in headers if k.lower() == "via")
    assert "authshim" in via.lower(), f"Via at origin: {via!r}"
    assert ["X-Keep", "yes"] in headers
