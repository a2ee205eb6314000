"""access.destinations, the optional allow-list of destination hosts, end to end.

- Through a real Squid to nginx: a name list lets `localhost` through (GET and CONNECT + TLS)
  and refuses the same server as `127.0.0.1`; an address block lets `127.0.0.1` through and
  refuses `localhost` (authshim resolves nothing).
- A matrix of tricky hosts against the answering fake: exactly the allowed requests reach it;
  every refused one gets 403 with the reason, on a connection that stays usable, and is counted
  in /status, /metrics and the access log.
- The recording fake receives 0 bytes for refused requests (GET and CONNECT).
- A reload that changes the list applies to the next request on an open keep-alive connection;
  an invalid list is refused and the previous one stays.
- `authshim check` names each bad entry with its JSON pointer; `authshim probe` notes a
  destination that clients would be refused.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from harness import admin
from harness.authshim import make_config, run_cli
from harness.client import RawConn, curl
from harness.squid import squid_available
from harness.util import LOOPBACK, candidate_port, slow_factor

needs_squid = pytest.mark.skipif(not squid_available(), reason="squid is not installed")

REFUSED_TEXT = re.compile(r"^authshim: the destination (\S+) is not in access.destinations\n$")


def send(conn: RawConn, method: str, target: str, host: str | None = None):
    host = host or (target if method == "CONNECT" else target.split("/")[2])
    conn.send(f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return conn.read_response(method, timeout=10 * slow_factor())


def once(port: int, method: str, target: str):
    with RawConn(port, timeout=10 * slow_factor()) as c:
        return send(c, method, target)


def assert_refused(resp, host: str):
    assert resp.status == 403, resp.describe()
    m = REFUSED_TEXT.match(resp.text)
    assert m and m.group(1) == host, resp.describe()


def rewrite(inst, cfg: dict):
    inst.config = cfg
    inst.config_path.write_text(json.dumps(cfg, indent=2))


# ---------------------------------------------------------------------------------------------
# Through a real upstream


@needs_squid
def test_name_list_through_squid(start_authshim, squid, nginx):
    shim = start_authshim(make_config(squid.address, access={
        "destinations": ["localhost"], "connect_ports": [443, nginx.tls_port]}), "dest-names")
    by_name = f"http://localhost:{nginx.http_port}/small.bin"
    r = curl(["-o", "/dev/null", "-w", "%{http_code}", by_name], proxy_port=shim.port)
    assert r.returncode == 0 and r.text == "200", r.describe()

    # The same server by its IP literal: not in a list of names.
    r = curl(["-w", "\n%{http_code}", nginx.url("/small.bin")], proxy_port=shim.port)
    body, _, code = r.text.rpartition("\n")
    assert code == "403", r.describe()
    assert body == "authshim: the destination 127.0.0.1 is not in access.destinations\n", body

    # CONNECT + TLS to the allowed name; CONNECT to the literal refused.
    r = curl(["-p", "--cacert", nginx.cert, "-o", "/dev/null", "-w", "%{http_code}",
              nginx.tls_url("/small.bin")], proxy_port=shim.port)
    assert r.returncode == 0 and r.text == "200", r.describe()
    assert_refused(once(shim.port, "CONNECT", f"127.0.0.1:{nginx.tls_port}"), "127.0.0.1")
    r = curl(["-p", "--cacert", nginx.cert, "-o", "/dev/null", "-w", "%{http_connect}",
              f"https://127.0.0.1:{nginx.tls_port}/small.bin"], proxy_port=shim.port)
    assert r.returncode != 0 and r.text == "403", r.describe()


@needs_squid
def test_address_block_through_squid(start_authshim, squid, nginx):
    shim = start_authshim(make_config(squid.address, access={
        "destinations": ["127.0.0.0/8"], "connect_ports": [443, nginx.tls_port]}), "dest-cidr")
    r = curl(["-o", "/dev/null", "-w", "%{http_code}", nginx.url("/small.bin")],
             proxy_port=shim.port)
    assert r.returncode == 0 and r.text == "200", r.describe()
    resp = once(shim.port, "CONNECT", f"127.0.0.1:{nginx.tls_port}")
    assert resp.status == 200, resp.describe()

    # A name that resolves into the block is not in it: authshim does not resolve names.
    r = curl(["-o", "/dev/null", "-w", "%{http_code}",
              f"http://localhost:{nginx.http_port}/small.bin"], proxy_port=shim.port)
    assert r.text == "403", r.describe()
    r = curl(["-p", "--cacert", nginx.cert, "-o", "/dev/null", "-w", "%{http_connect}",
              nginx.tls_url("/small.bin")], proxy_port=shim.port)
    assert r.returncode != 0 and r.text == "403", r.describe()
    # Legacy spellings of 127.0.0.1 that the upstream might read as it: refused, not matched.
    for host in ("2130706433", "0177.0.0.1", "0x7f.1", "127.1"):
        assert_refused(once(shim.port, "GET", f"http://{host}:{nginx.http_port}/small.bin"), host)


# ---------------------------------------------------------------------------------------------
# The matching rules, counted and logged

PATTERNS = ["*.example.com", "example.org", "10.0.0.0/8", "2001:db8::/32"]

ALLOWED = [  # (method, request-target)
    ("GET", "http://a.example.com/x"),
    ("GET", "http://A.B.Example.COM./deep"),
    ("GET", "http://example.org/"),
    ("GET", "http://EXAMPLE.ORG.:8080/"),
    ("GET", "http://10.1.2.3/"),
    ("GET", "http://[2001:db8::1]/"),
    ("GET", "http://[::ffff:10.0.0.1]/"),
    ("CONNECT", "a.example.com:443"),
    ("CONNECT", "[2001:db8::5]:443"),
    ("CONNECT", "10.0.0.1:443"),
]

REFUSED = [  # (method, request-target, host in the answer)
    ("GET", "http://example.com/", "example.com"),
    ("GET", "http://evil-example.com/", "evil-example.com"),
    ("GET", "http://example.com.evil.com/", "example.com.evil.com"),
    ("GET", "http://a.example.com.evil.com/", "a.example.com.evil.com"),
    ("GET", "http://www.example.org/", "www.example.org"),
    ("GET", "http://example.org.evil/", "example.org.evil"),
    ("GET", "http://a%2eexample.com/", "a%2eexample.com"),
    ("GET", "http://0x0a.0.0.1/", "0x0a.0.0.1"),
    ("GET", "http://012.0.0.1/", "012.0.0.1"),
    ("GET", "http://167772161/", "167772161"),
    ("GET", "http://10.1/", "10.1"),
    ("GET", "http://10.0.0.1./", "10.0.0.1."),
    ("GET", "http://11.0.0.1/", "11.0.0.1"),
    ("GET", "http://[::10.0.0.1]/", "::10.0.0.1"),
    ("GET", "http://[2001:db9::1]/", "2001:db9::1"),
    ("CONNECT", "example.com:443", "example.com"),
    ("CONNECT", "0x0a.1:443", "0x0a.1"),
    ("CONNECT", "11.0.0.1:443", "11.0.0.1"),
    ("CONNECT", "[::ffff:11.0.0.1]:443", "::ffff:11.0.0.1"),
]


def test_matrix_counted_and_logged(start_authshim, fakes):
    up = fakes.answering()
    shim = start_authshim(make_config(up.address, access={"destinations": PATTERNS},
                                      log={"access": "access.jsonl"}), "dest-matrix")
    for method, target, host in REFUSED:
        assert_refused(once(shim.port, method, target), host)
    for method, target in ALLOWED:
        resp = once(shim.port, method, target)
        assert resp.status == 200, f"{method} {target}: {resp.describe()}"
    # Exactly the allowed requests reached the upstream, in order.
    assert [(q.method, q.target) for q in up.recorded()] == ALLOWED

    # A refusal keeps the connection (no body to skip): the next request on it goes through.
    with RawConn(shim.port, timeout=10 * slow_factor()) as c:
        assert_refused(send(c, "GET", "http://example.com/"), "example.com")
        assert send(c, "GET", "http://ok.example.com/").status == 200
    refused = len(REFUSED) + 1

    doc = admin.status(shim)
    assert doc["clients"]["denied"] == {"client": 0, "port": 0, "loop": 0,
                                        "destination": refused}, doc["clients"]
    m = admin.parse_metrics(admin.metrics_text(shim))
    assert admin.metric(m, "authshim_client_requests_refused_total",
                        reason="destination") == refused
    assert admin.metric(m, "authshim_requests_total", upstream="test-upstream",
                        code="403") == refused

    status, took, killed = shim.stop()
    assert status == 0 and not killed
    recs = [json.loads(line) for line in (shim.dir / "access.jsonl").read_text().splitlines()]
    denied = [r for r in recs if r["status"] == 403]
    assert len(denied) == refused, recs
    for rec, (method, target, host) in zip(denied, REFUSED):
        assert rec["method"] == method and rec["upstream"] is None, rec
        assert rec["error"] == f"the destination {host} is not in access.destinations", rec
    assert "is not in access.destinations" in shim.log_text()


def test_refused_sends_nothing_upstream(start_authshim, fakes):
    rec = fakes.recording()
    shim = start_authshim(make_config(rec.address, access={
        "destinations": ["*.example.com"], "connect_ports": ["1-65535"]}), "dest-zero")
    for method, target, host in (("GET", "http://example.com/", "example.com"),
                                 ("GET", "http://127.0.0.1:1/", "127.0.0.1"),
                                 ("CONNECT", "example.net:443", "example.net"),
                                 ("CONNECT", "2130706433:22", "2130706433")):
        assert_refused(once(shim.port, method, target), host)
    # A POST with a body: refused before the body is read, the connection closed.
    with RawConn(shim.port, timeout=10 * slow_factor()) as c:
        c.send(b"POST http://example.com/ HTTP/1.1\r\nHost: example.com\r\n"
               b"Content-Length: 5\r\n\r\nhello")
        resp = c.read_response(timeout=10 * slow_factor())
        assert_refused(resp, "example.com")
        assert c.closed_by_peer(), "connection kept open with an unread body"
    time.sleep(0.3)
    assert rec.total_bytes == 0, f"upstream received {rec.received()[:300]!r}"


# ---------------------------------------------------------------------------------------------
# Reload


def test_reload_changes_the_list(start_authshim, fakes):
    up = fakes.answering()
    # A fixed admin port: `authshim reload` finds the instance through it.
    cfg = make_config(up.address, access={"destinations": ["a.example.com"]},
                      admin={"listen": f"{LOOPBACK}:{candidate_port()}"})
    shim = start_authshim(cfg, "dest-reload")
    with RawConn(shim.port, timeout=30 * slow_factor()) as c:
        assert send(c, "GET", "http://a.example.com/").status == 200
        assert_refused(send(c, "GET", "http://b.example.com/"), "b.example.com")

        cfg["access"]["destinations"] = ["*.example.com"]
        rewrite(shim, cfg)
        a = admin.reload(shim)
        assert a.status == 200, a.text
        assert "access.destinations now has 1 pattern; requests to other hosts get 403 " \
               "(open tunnels stay open)" in a.json()["changes"], a.text
        # The same keep-alive connection: its next request uses the new list.
        assert send(c, "GET", "http://b.example.com/").status == 200
        assert_refused(send(c, "GET", "http://a.example.net/"), "a.example.net")

        # An invalid list is refused as a whole; the one in force stays.
        cfg["access"]["destinations"] = ["*.example.com", "*", "example.net:80"]
        rewrite(shim, cfg)
        a = admin.reload(shim)
        assert a.status == 422, a.text
        errors = "\n".join(a.json()["errors"])
        assert "/access/destinations/1" in errors and "/access/destinations/2" in errors, errors
        assert send(c, "GET", "http://c.example.com/").status == 200
        assert_refused(send(c, "GET", "http://a.example.net/"), "a.example.net")

        # Without the key (through `authshim reload`): every destination again.
        del cfg["access"]["destinations"]
        rewrite(shim, cfg)
        cp = run_cli(["reload", "--config", shim.config_path])
        assert cp.returncode == 0, cp.stderr
        assert "access.destinations removed: every destination is allowed" in cp.stdout, cp.stdout
        assert send(c, "GET", "http://a.example.net/").status == 200
    assert [q.target for q in up.recorded()] == [
        "http://a.example.com/", "http://b.example.com/", "http://c.example.com/",
        "http://a.example.net/"]


# ---------------------------------------------------------------------------------------------
# Command line


def test_check_names_each_bad_entry(tmp_root):
    path = tmp_root / "dest-bad.json"
    bad = ["ok.example.com", "", "*", "foo.*.example.com", "example.com:443", "http://example.com",
           "user@example.com", "10.0.0.0/33", "0177.0.0.1", " example.com", ".example.com"]
    path.write_text(json.dumps({"upstreams": [{"address": "127.0.0.1:3128"}],
                                "access": {"destinations": bad}}, indent=2))
    r = run_cli(["check", "--config", path])
    assert r.returncode == 1, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    lines = [line for line in r.stderr.splitlines() if "/access/destinations/" in line]
    assert len(lines) == len(bad) - 1, r.stderr
    why = {"": "is empty", "*": "is a lone", "foo.*.example.com": "not a leading",
           "example.com:443": "has a port", "http://example.com": "has a scheme",
           "user@example.com": "has user information", "10.0.0.0/33": "prefix length",
           "0177.0.0.1": "ends in a number", " example.com": "contains whitespace",
           ".example.com": 'starts with "."'}
    for index, entry in enumerate(bad[1:], start=1):
        line = next((x for x in lines if f"{path}: /access/destinations/{index}: " in x), None)
        assert line is not None, f"nothing for entry {index} {entry!r}:\n{r.stderr}"
        assert "expected a host pattern such as" in line and why[entry] in line, line

    path.write_text(json.dumps({"upstreams": [{"address": "127.0.0.1:3128"}],
                                "access": {"destinations": ["CRL.Example.com.", "*.Example.org",
                                                            "192.0.2.0/24"]}}))
    r = run_cli(["check", "--config", path])
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)["access"]["destinations"]
    assert shown == ["crl.example.com", "*.example.org", "192.0.2.0/24"], r.stdout


@needs_squid
def test_probe_notes_a_refused_destination(tmp_root, squid, nginx):
    path = tmp_root / "dest-probe.json"
    path.write_text(json.dumps(make_config(squid.address,
                                           access={"destinations": ["localhost"]})))
    r = run_cli(["probe", "--config", path, "--url", nginx.url("/small.bin")])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "note: 127.0.0.1 is not in access.destinations: clients of authshim get 403 for it" \
        in r.stdout, r.stdout
    r = run_cli(["probe", "--config", path, "--url",
                 f"http://localhost:{nginx.http_port}/small.bin"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "access.destinations" not in r.stdout, r.stdout
