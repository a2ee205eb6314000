"""CONNECT tunnels: a TLS request to the local nginx TLS server through authshim and Squid;
CONNECT to ports outside access.connect_ports -> 403 with nothing sent upstream."""

import time

import pytest

from harness.authshim import make_config
from harness.client import RawConn, curl, sha256_file
from harness.util import slow_factor


def test_connect_tls_request(proxy, nginx, tmp_root):
    medium = nginx.files["medium.bin"]
    out = tmp_root / "connect-medium.out"
    r = curl(["-p", "--cacert", nginx.cert, "-o", out, "-w", "%{http_code}",
              nginx.tls_url("/medium.bin")], proxy_port=proxy.port)
    assert r.returncode == 0 and r.text == "200", r.describe()
    assert sha256_file(out) == medium.sha256


def test_connect_tunnel_carries_several_requests(proxy, nginx):
    r = curl(["-p", "--cacert", nginx.cert, "-w", "%{http_code} %{num_connects}\n",
              "-o", "/dev/null", nginx.tls_url("/small.bin"),
              "-o", "/dev/null", nginx.tls_url("/medium.bin")], proxy_port=proxy.port)
    assert r.returncode == 0, r.describe()
    assert r.text.split() == ["200", "1", "200", "0"], r.text


def test_connect_raw_2xx_has_no_body_and_tunnel_works(proxy, nginx):
    import ssl
    authority = f"localhost:{nginx.tls_port}"
    c = RawConn(proxy.port)
    try:
        c.send(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
        resp = c.read_response("CONNECT")
        assert 200 <= resp.status < 300, resp.describe()
        assert "close" not in (resp.header("Connection") or "").lower(), resp.describe()
        assert not c.buf, f"bytes after the CONNECT response: {bytes(c.buf)[:100]!r}"
        ctx = ssl.create_default_context(cafile=str(nginx.cert))
        c.sock.settimeout(10)
        with ctx.wrap_socket(c.sock, server_hostname="localhost") as tls:
            tls.sendall(b"GET /small.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data[:200]
        assert data.endswith(nginx.files["small.bin"].path.read_bytes())
    finally:
        c.close()


def test_connect_port_range(start_authshim, squid, nginx):
    lo, hi = nginx.tls_port - 1, nginx.tls_port + 1
    shim = start_authshim(make_config(squid.address, access={"connect_ports": [443, f"{lo}-{hi}"]}),
                          "connect-range")
    r = curl(["-p", "--cacert", nginx.cert, "-o", "/dev/null", "-w", "%{http_code}",
              nginx.tls_url("/small.bin")], proxy_port=shim.port)
    assert r.returncode == 0 and r.text == "200", r.describe()


@pytest.mark.parametrize("target", ["127.0.0.1:{tls}", "localhost:22", "example.test:9000",
                                    "example.test:7999", "example.test:444"])
def test_connect_port_not_allowed_403(start_authshim, fakes, nginx, target):
    rec = fakes.recording()
    shim = start_authshim(make_config(rec.address, access={"connect_ports": [443, "8000-8999"]}),
                          "connect-deny")
    target = target.format(tls=nginx.tls_port)
    with RawConn(shim.port) as c:
        c.send(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        resp = c.read_response("CONNECT", timeout=10 * slow_factor())
    assert resp.status == 403, resp.describe()
    time.sleep(0.3)
    assert rec.total_bytes == 0, f"upstream received {rec.received()[:300]!r}"


def test_connect_port_not_allowed_with_curl(start_authshim, squid, nginx):
    shim = start_authshim(make_config(squid.address, access={"connect_ports": [443]}), "connect-deny-curl")
    r = curl(["-p", "--cacert", nginx.cert, "-o", "/dev/null", "-w", "%{http_connect}",
              nginx.tls_url("/small.bin")], proxy_port=shim.port)
    assert r.returncode != 0 and r.text == "403", r.describe()
