"""Self-check of the fixtures without authshim: curl straight through Squid to nginx, the TLS
server and the upload origin; the fakes against curl. If these fail, the other modules'
failures say nothing about authshim."""

import json
import time

from harness.client import RawConn, curl, sha256_file


def test_squid_forwards_static_files(squid, nginx, tmp_root):
    small = nginx.files["small.bin"]
    out = tmp_root / "selfcheck-small"
    r = curl(["-o", out, "-w", "%{http_code}", nginx.url("/small.bin")], proxy_port=squid.port)
    assert r.returncode == 0 and r.text == "200", r.describe()
    assert sha256_file(out) == small.sha256


def test_squid_conditional_get(squid, nginx):
    r = curl(["-D", "-", "-o", "/dev/null", nginx.url("/small.bin")], proxy_port=squid.port)
    etag = [l.split(":", 1)[1].strip() for l in r.text.splitlines() if l.lower().startswith("etag:")]
    assert etag, r.describe()
    r = curl(["-o", "/dev/null", "-w", "%{http_code}", "-H", f"If-None-Match: {etag[0]}",
              nginx.url("/small.bin")], proxy_port=squid.port)
    assert r.text == "304", r.describe()


def test_squid_keeps_ocsp_path(squid, nginx):
    path = "/ocsp/MFMwUTBPME0wSzAJBgUrDgMCGgUABBQ%2Bx/AB+c="
    r = curl(["--path-as-is", "-w", "%{http_code}", "-o", "/dev/null", nginx.url(path)],
             proxy_port=squid.port)
    assert r.text == "200", r.describe()
    time.sleep(0.1)
    assert f"GET {path} HTTP/1.1" in nginx.access_log()


def test_squid_connect_to_tls_server(squid, nginx):
    r = curl(["-p", "--cacert", nginx.cert, "-w", "%{http_code}", "-o", "/dev/null",
              nginx.tls_url("/small.bin")], proxy_port=squid.port)
    assert r.returncode == 0 and r.text == "200", r.describe()


def test_squid_uploads_to_pyorigin(squid, pyorigin, tmp_root):
    body = tmp_root / "selfcheck-upload"
    body.write_bytes(bytes(range(256)) * 4096)
    for extra in ([], ["-H", "Transfer-Encoding: chunked"]):
        r = curl(["-H", "Expect:", "--data-binary", f"@{body}", *extra, pyorigin.url("/up")],
                 proxy_port=squid.port)
        assert r.returncode == 0, r.describe()
        doc = json.loads(r.stdout)
        assert doc["sha256"] == sha256_file(body) and doc["bytes"] == body.stat().st_size
        assert doc["chunked"] == bool(extra)


def test_fake_recording_records(fakes):
    rec = fakes.recording()
    r = curl(["-o", "/dev/null", "http://example.test/"], proxy_port=rec.port, max_time=1)
    assert r.returncode == 28  # timed out: the fake never answers
    assert rec.received().startswith(b"GET http://example.test/ HTTP/1.1\r\n")


def test_fake_keepalive_then_close_with_curl(fakes):
    # curl itself retries a request on a reused connection that died: two connections.
    for mode in ("close_idle", "close_on_next"):
        fake = fakes.answering(mode=mode, close_delay=0.1)
        r = curl(["-w", "%{http_code}\n", "-o", "/dev/null", "http://a.test/1",
                  "-o", "/dev/null", "http://a.test/2"], proxy_port=fake.port)
        assert r.returncode == 0, r.describe()
        assert fake.connections == 2, mode
        assert [q.target for q in fake.recorded()] == ["http://a.test/1", "http://a.test/2"]


def test_fake_full_accept_queue(fakes):
    q = fakes.full_accept_queue()
    t0 = time.monotonic()
    assert q.connect_hangs(0.5)
    assert time.monotonic() - t0 >= 0.5


def test_raw_client_against_nginx(nginx):
    with RawConn(nginx.http_port) as c:
        c.send(b"HEAD /big-missing HTTP/1.1\r\nHost: x\r\n\r\nGET /small.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response("HEAD").status == 404
        resp = c.read_response("GET")
        assert resp.status == 200 and len(resp.body) == 1024
