"""Connection handling: keep-alive towards the client (200 requests on one connection),
16 parallel clients, and the upstream pool surviving connections the upstream closed."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.authshim import make_config
from harness.client import RawConn, curl, sha256_file
from harness.squid import Squid
from harness.util import slow_factor


def test_200_sequential_requests_reuse_one_connection(proxy, nginx, tmp_root):
    url = nginx.url("/small.bin")
    cfg = tmp_root / "curl-200.cfg"
    cfg.write_text("".join(f'url = "{url}"\noutput = "/dev/null"\n' for _ in range(200)))
    r = curl(["-K", cfg, "-w", "%{http_code} %{num_connects} %{size_download}\n"],
             proxy_port=proxy.port, max_time=60 * slow_factor())
    assert r.returncode == 0, r.describe()
    lines = r.text.splitlines()
    assert len(lines) == 200, r.describe()
    codes = {l.split()[0] for l in lines}
    sizes = {l.split()[2] for l in lines}
    connects = sum(int(l.split()[1]) for l in lines)
    assert codes == {"200"} and sizes == {"1024"}, (codes, sizes)
    assert connects == 1, f"curl opened {connects} connections for 200 requests (expected 1)"


def test_sequential_requests_raw_keepalive(proxy, nginx):
    host = f"127.0.0.1:{nginx.http_port}"
    small = nginx.files["small.bin"].path.read_bytes()
    medium = nginx.files["medium.bin"].path.read_bytes()
    with RawConn(proxy.port) as c:
        for i in range(50):
            name, data = ("small.bin", small) if i % 2 else ("medium.bin", medium)
            c.send(f"GET http://{host}/{name} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            resp = c.read_response()
            assert resp.status == 200 and resp.body == data, (i, resp.describe())


def test_16_parallel_clients(proxy, nginx, tmp_root):
    files = [nginx.files["small.bin"], nginx.files["medium.bin"]]

    def client(n):
        args, outs = [], []
        for i in range(6):
            f = files[(n + i) % 2]
            out = tmp_root / f"par-{n}-{i}.out"
            outs.append((out, f))
            args += ["-o", out, nginx.url(f"/{f.name}")]
        r = curl(["-w", "%{http_code}\n", *args], proxy_port=proxy.port, max_time=60 * slow_factor())
        problems = []
        if r.returncode != 0 or r.text.split() != ["200"] * 6:
            problems.append(f"client {n}: {r.describe()}")
        for out, f in outs:
            if not out.exists() or sha256_file(out) != f.sha256:
                problems.append(f"client {n}: {out.name} differs from {f.name}")
        return problems

    with ThreadPoolExecutor(16) as pool:
        problems = [p for ps in pool.map(client, range(16)) for p in ps]
    assert not problems, "\n".join(problems)


def test_upstream_connection_reused(start_authshim, fakes):
    """Keep-alive towards the upstream: sequential requests, even from different client
    connections, share one pooled upstream connection."""
    fake = fakes.answering(mode="keepalive")
    shim = start_authshim(make_config(fake.address, upstream_name="fake"), "pool-reuse")
    for i in range(4):
        with RawConn(shim.port) as c:
            for j in range(2):
                c.send(f"GET http://origin.test/{i}/{j} HTTP/1.1\r\nHost: origin.test\r\n\r\n".encode())
                resp = c.read_response(timeout=10 * slow_factor())
                assert resp.status == 200 and resp.body == fake.body, resp.describe()
        time.sleep(0.1)
    assert len(fake.recorded()) == 8
    assert fake.connections == 1, f"8 sequential requests used {fake.connections} upstream connections"


@pytest.fixture
def short_idle_squid(tmp_root):
    s = Squid(tmp_root, name="squid-idle1s", client_idle_pconn_timeout="1 second").start()
    try:
        yield s
    finally:
        s.stop()


def test_pooled_connection_closed_by_squid(start_authshim, short_idle_squid, nginx):
    """Squid closes idle client connections after 1 s (client_idle_pconn_timeout): requests
    after such a close, from a new client connection and on a kept one, still succeed."""
    shim = start_authshim(make_config(short_idle_squid.address, upstream_name="squid-idle"), "pool-squid")
    url = nginx.url("/small.bin")
    for attempt in range(2):
        r = curl(["-o", "/dev/null", "-w", "%{http_code}", url], proxy_port=shim.port)
        assert r.returncode == 0 and r.text == "200", f"request {attempt}: {r.describe()}"
        time.sleep(2.0)
    host = f"127.0.0.1:{nginx.http_port}"
    with RawConn(shim.port) as c:
        for attempt in range(2):
            c.send(f"GET http://{host}/small.bin HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            resp = c.read_response(timeout=10 * slow_factor())
            assert resp.status == 200 and len(resp.body) == 1024, (attempt, resp.describe())
            if attempt == 0:
                time.sleep(2.0)


@pytest.mark.parametrize("mode", ["close_idle", "close_on_next"])
def test_pooled_connection_closed_by_fake_upstream(start_authshim, fakes, mode):
    fake = fakes.answering(mode=mode, close_delay=0.2)
    shim = start_authshim(make_config(fake.address, upstream_name="fake"), f"pool-{mode}")
    with RawConn(shim.port) as c:
        for i in range(3):
            c.send(f"GET http://origin.test/{i} HTTP/1.1\r\nHost: origin.test\r\n\r\n".encode())
            resp = c.read_response(timeout=10 * slow_factor())
            assert resp.status == 200 and resp.body == fake.body, (i, resp.describe())
            time.sleep(0.5)  # close_idle: the fake has closed the pooled connection by now
    targets = [q.target for q in fake.recorded()]
    assert targets == [f"http://origin.test/{i}" for i in range(3)], targets
    assert fake.connections == 3, f"{fake.connections} upstream connections (expected one per request)"
    if mode == "close_on_next":
        # the retried requests had reached the dead connection first
        assert [q.target for q in fake.unanswered] == ["http://origin.test/1", "http://origin.test/2"]


def test_spare_upstream_connection_after_a_tunnel(start_authshim, fakes):
    """A tunnel keeps its upstream connection, so authshim opens a spare one for the next
    CONNECT, which then skips the TCP handshake with the upstream."""
    fake = fakes.answering(mode="keepalive")
    shim = start_authshim(make_config(fake.address, upstream_name="fake"), "spare")
    deadline = 5 * slow_factor()
    for i in range(3):
        with RawConn(shim.port) as c:
            c.send(b"CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n")
            resp = c.read_response("CONNECT", timeout=10 * slow_factor())
            assert resp.status == 200, resp.describe()
        # the tunnel's connection plus one spare
        start = time.monotonic()
        while fake.connections < i + 2 and time.monotonic() - start < deadline:
            time.sleep(0.02)
        assert fake.connections == i + 2, f"after {i + 1} tunnel(s): {fake.connections} connections"
    tunnels = [r for r in fake.recorded() if r.method == "CONNECT"]
    assert [r.connection for r in tunnels] == [0, 1, 2], \
        "each CONNECT after the first should use the spare connection opened before it"
