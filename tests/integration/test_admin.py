"""The admin endpoint against running instances in front of a real Squid demanding Basic
(`basic_ncsa_auth` behind the logging wrapper of harness/squid_auth.py) and nginx as the origin.

- Exact counters: a fresh instance gets a known mix of traffic over raw client connections
  (GETs answered 200 and 404, a POST answered 405 with a known body size, a CONNECT tunnel
  carrying known bytes, a CONNECT refused 403, an origin-form request refused 400); then every
  counter of /status reads exactly what was sent, /metrics holds the same numbers, its text
  passes a strict exposition-format reader and `promtool check metrics`.
- /healthz: 200 with a working upstream; 503 with the reason when the upstream cannot be
  reached (before any request: an active connect check; after a failed request: the error),
  while the credentials are paused after a rejection (exactly one credential check reached
  Squid's helper), and while authshim is stopping.
- admin.token: /healthz open, /status /metrics POST /reload need `Authorization: Bearer`;
  `authshim reload` uses the token from the config. The token, the password and its Basic
  encoding appear in no answer (and the suite-wide scan reads every answer).
- Methods, unknown paths and admin.listen null."""

from __future__ import annotations

import base64
import json
import re
import signal

import pytest

from harness import admin, secrets
from harness.authshim import make_config, run_cli
from harness.client import RawConn
from harness.secrets import write_secret
from harness.squid import SquidWindow, squid_available
from harness.squid_auth import basic_squid
from harness.util import candidate_port, reserved_closed_port, slow_factor, wait_until

pytestmark = pytest.mark.skipif(not squid_available(), reason="squid is not installed")

USER = "ops-user"
PASSWORD = "Ops-pw-7Hq2x!"
LOCK_USER = "ops-lock"
LOCK_PASSWORD = "Ops-lock-pw-4Jw"
WRONG = "Ops-wrong-pw-9Kd"
TOKEN = "admin-token-Vb71-Qz"


@pytest.fixture(scope="module")
def squid_basic(tmp_root):
    for user, password in ((USER, PASSWORD), (LOCK_USER, LOCK_PASSWORD), (LOCK_USER, WRONG)):
        secrets.register(user, password)
    secrets.register("admin.token", TOKEN)
    with basic_squid(tmp_root, "squid-admin", {USER: PASSWORD, LOCK_USER: LOCK_PASSWORD},
                     options=["casesensitive on", "credentialsttl 5 minutes"],
                     conn_log=True) as s:
        yield s


def authed_config(squid, secrets_dir, nginx, user=USER, password=PASSWORD, **sections):
    pw_file = write_secret(secrets_dir / f"{user}-{abs(hash(password))}.pw", password)
    sections.setdefault("log", {"level": "trace"})  # the secrets scan wants the most output
    return make_config(squid.address, upstream_name="corp",
                       upstreams=[{"name": "corp", "address": squid.address,
                                   "credentials": "machine", "schemes": ["basic"]}],
                       credentials={"machine": {"username": user,
                                                "password": {"file": str(pw_file)}}},
                       access={"connect_ports": [443, nginx.http_port]}, **sections)


def no_secret_in(text: str):
    for needle in (PASSWORD, LOCK_PASSWORD, WRONG, TOKEN,
                   base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()):
        assert needle not in text


def read_all(conn: RawConn, timeout: float) -> bytes:
    """Everything until the peer closes."""
    conn.sock.settimeout(timeout)
    data = bytes(conn.buf)
    conn.buf.clear()
    while True:
        chunk = conn.sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def settled_status(inst, predicate, what: str) -> dict:
    """/status once `predicate(doc)` holds (counters of an exchange are taken when it ends)."""
    box = {}

    def check():
        box["doc"] = admin.status(inst)
        return predicate(box["doc"])

    wait_until(check, 10 * slow_factor(), what=what)
    return box["doc"]


# ---------------------------------------------------------------------------------------------


def test_counters_move_by_exact_amounts(start_authshim, squid_basic, secrets_dir, nginx):
    inst = start_authshim(authed_config(squid_basic, secrets_dir, nginx), "exact")
    before = admin.status(inst)
    up0 = admin.upstream(before)
    assert before["clients"]["requests"] == 0
    assert up0["requests"] == {"1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0,
                               "without_response": 0}
    assert up0["state"] == "unknown" and up0["scheme"] is None
    assert up0["lockout"] == {"state": "unverified", "paused": False, "paused_until": None}

    host = f"127.0.0.1:{nginx.http_port}"
    small = nginx.files["small.bin"].path.read_bytes()
    to_client = 0
    from_client = 0
    timeout = 30 * slow_factor()

    # Connection 1, keep-alive: 5 x 200, 3 x 404, 1 POST -> 405.
    with RawConn(inst.port, timeout=timeout) as c:
        for _ in range(5):
            c.send(f"GET http://{host}/small.bin HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            r = c.read_response(timeout=timeout)
            assert r.status == 200 and r.body == small, r.describe()
            to_client += len(r.body)
        for i in range(3):
            c.send(f"GET http://{host}/missing-{i} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            r = c.read_response(timeout=timeout)
            assert r.status == 404, r.describe()
            to_client += len(r.body)
        body = b"p" * 300
        c.send(f"POST http://{host}/small.bin HTTP/1.1\r\nHost: {host}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        r = c.read_response(timeout=timeout)
        assert r.status == 405, r.describe()
        to_client += len(r.body)
        from_client += len(body)

    # Connection 2: a tunnel to nginx's plain port carrying one HTTP exchange of known size.
    with RawConn(inst.port, timeout=timeout) as c:
        c.send(f"CONNECT {host} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        r = c.read_response("CONNECT", timeout=timeout)
        assert r.status == 200, r.describe()
        inner = f"GET /small.bin HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        c.send(inner)
        got = read_all(c, timeout)
        assert got.endswith(small), got[:300]
        from_client += len(inner)
        to_client += len(got)

    # Connection 3: CONNECT to a port outside access.connect_ports -> 403 from authshim.
    with RawConn(inst.port, timeout=timeout) as c:
        c.send(b"CONNECT 127.0.0.1:25 HTTP/1.1\r\nHost: 127.0.0.1:25\r\n\r\n")
        r = c.read_response("CONNECT", timeout=timeout)
        assert r.status == 403, r.describe()
        to_client += len(r.body)

    # Connection 4: origin-form (authshim is a proxy) -> 400.
    with RawConn(inst.port, timeout=timeout) as c:
        c.send(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        r = c.read_response(timeout=timeout)
        assert r.status == 400, r.describe()
        to_client += len(r.body)

    answered = 5 + 3 + 1 + 1 + 1 + 1
    doc = settled_status(inst, lambda d: sum(admin.upstream(d)["requests"].values()) == answered
                         and d["clients"]["connections_active"] == 0,
                         "every exchange counted")
    up = admin.upstream(doc)
    assert doc["clients"] == {
        "connections_active": 0, "connections_accepted": 4, "connections_rejected_limit": 0,
        "requests": answered, "bad_requests": 1,
        "denied": {"client": 0, "port": 1, "loop": 0, "destination": 0}}
    assert up["requests"] == {"1xx": 0, "2xx": 6, "3xx": 0, "4xx": 6, "5xx": 0,
                              "without_response": 0}
    assert up["tunnels"] == {"total": 1, "active": 0}
    # One 407 (the first request); from then on Basic goes pre-emptively, CONNECT included.
    assert up["auth"] == {"407_received": 1, "407_answered": 1, "stale_nonces": 0,
                          "rejections": 0, "unusable_challenges": 0, "refused_while_paused": 0}
    assert up["bytes"] == {"from_clients": from_client, "to_clients": to_client}
    assert up["state"] == "ok" and up["scheme"] == "basic" and up["credentials"] == "machine"
    assert up["lockout"] == {"state": "verified", "paused": False, "paused_until": None}
    assert up["last_error"] is None and up["last_failure"] is None
    assert up["last_answer"] is not None
    conns = up["connections"]
    assert conns["connect_failures"] == 0 and conns["timeouts"] == 0
    assert conns["opened"] >= 1 and conns["active"] == 0
    assert doc["listeners"] == [f"127.0.0.1:{inst.port}"]
    assert doc["admin"] == f"127.0.0.1:{inst.admin_port}"
    assert doc["config"]["path"] == str(inst.config_path)
    assert doc["config"]["hash"].startswith("sha256:") and len(doc["config"]["hash"]) == 71
    assert doc["config"]["reloads"] == 0 and doc["config"]["last_reload"] is None
    assert doc["uptime_seconds"] > 0 and doc["stopping"] is False

    text = admin.metrics_text(inst)
    problem = admin.promtool_check(text)
    assert problem is None, problem
    m = admin.parse_metrics(text)
    codes = {code: admin.metric(m, "authshim_requests_total", upstream="corp", code=str(code))
             for code in (200, 400, 403, 404, 405)}
    assert codes == {200: 6, 400: 1, 403: 1, 404: 3, 405: 1}
    assert [k for k in m if k[0] == "authshim_requests_total"
            and dict(k[1])["code"] not in ("200", "400", "403", "404", "405")] == []
    assert admin.metric(m, "authshim_request_duration_seconds_count", upstream="corp") == answered
    assert admin.metric(m, "authshim_request_duration_seconds_bucket", upstream="corp",
                        le="+Inf") == answered
    assert 0 < admin.metric(m, "authshim_request_duration_seconds_sum", upstream="corp") < 60
    expected = {
        "authshim_client_requests_received_total": answered,
        "authshim_client_connections_accepted_total": 4,
        "authshim_client_connections_active": 0,
        "authshim_tunnels_total": 1,
        "authshim_tunnels_active": 0,
        "authshim_client_received_bytes_total": from_client,
        "authshim_client_sent_bytes_total": to_client,
        "authshim_upstream_407_total": 1,
        "authshim_auth_challenges_answered_total": 1,
        "authshim_auth_rejections_total": 0,
        "authshim_auth_paused": 0,
        "authshim_upstream_up": 1,
        "authshim_upstream_connects_total": conns["opened"],
        "authshim_upstream_reused_connections_total": conns["reused"],
        "authshim_config_reloads_total": 0,
    }
    got = {}
    for name in expected:
        try:
            got[name] = admin.metric(m, name, upstream="corp")
        except KeyError:
            got[name] = admin.metric(m, name)
    assert got == expected
    assert admin.metric(m, "authshim_client_requests_refused_total", reason="bad_request") == 1
    assert admin.metric(m, "authshim_client_requests_refused_total", reason="connect_port") == 1
    assert admin.metric(m, "authshim_client_requests_refused_total", reason="destination") == 0
    assert admin.metric(m, "authshim_auth_scheme_info", upstream="corp", scheme="basic") == 1
    assert admin.metric(m, "authshim_build_info", version=doc["version"]) == 1
    no_secret_in(text)
    no_secret_in(json.dumps(doc))


def test_healthz_ok_then_upstream_gone(start_authshim, squid_basic, secrets_dir, nginx):
    inst = start_authshim(authed_config(squid_basic, secrets_dir, nginx), "health-ok")
    a = admin.request(inst.admin_port, "GET", "/healthz")
    assert a.status == 200, a.text  # reachable (active check), not verified yet
    assert a.text.startswith("ok: listening on 127.0.0.1:"), a.text
    with RawConn(inst.port) as c:
        c.send(f"GET {nginx.url('/small.bin')} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert c.read_response().status == 200
    a = admin.request(inst.admin_port, "GET", "/healthz")
    assert a.status == 200 and "is ok" in a.text, a.text
    assert a.headers["cache-control"] == "no-store"


def test_healthz_unreachable_upstream(start_authshim):
    closed = reserved_closed_port()
    port = closed.getsockname()[1]
    try:
        inst = start_authshim(make_config(f"127.0.0.1:{port}", upstream_name="gone"), "health-gone")
        # No request yet: the endpoint connects to the upstream itself.
        a = admin.request(inst.admin_port, "GET", "/healthz")
        assert a.status == 503, a.text
        assert "cannot connect to upstream \"gone\"" in a.text and "refused" in a.text, a.text
        with RawConn(inst.port) as c:
            c.send(b"GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\n\r\n")
            assert c.read_response().status == 502
        a = admin.request(inst.admin_port, "GET", "/healthz")
        assert a.status == 503 and "is failing" in a.text, a.text
        up = admin.upstream(admin.status(inst))
        assert up["state"] == "failing"
        assert up["last_error"]["text"].startswith("cannot connect to upstream \"gone\"")
        assert up["connections"]["connect_failures"] == 1 and up["connections"]["opened"] == 0
        m = admin.parse_metrics(admin.metrics_text(inst))
        assert admin.metric(m, "authshim_upstream_up", upstream="gone") == 0
        assert admin.metric(m, "authshim_requests_total", upstream="gone", code="502") == 1
    finally:
        closed.close()


def test_healthz_and_status_while_paused(start_authshim, squid_basic, secrets_dir, nginx):
    window = SquidWindow(squid_basic)
    checks_before = squid_basic.helper_log.basic_checks(LOCK_USER, WRONG)
    inst = start_authshim(authed_config(squid_basic, secrets_dir, nginx, LOCK_USER, WRONG),
                          "health-paused")
    url = nginx.url("/small.bin")
    for _ in range(3):
        with RawConn(inst.port) as c:
            c.send(f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            r = c.read_response()
            assert r.status == 502, r.describe()
            assert "rejected the credentials" in r.text, r.text
    a = admin.request(inst.admin_port, "GET", "/healthz")
    assert a.status == 503 and "paused" in a.text, a.text
    up = admin.upstream(admin.status(inst))
    assert up["state"] == "paused"
    assert up["lockout"] == {"state": "paused", "paused": True, "paused_until": None}
    assert up["auth"]["rejections"] == 1
    assert up["auth"]["refused_while_paused"] == 2
    assert "rejected the credentials \"machine\"" in up["last_error"]["text"]
    # The wrong password reached Squid's helper exactly once.
    window.settle(min_entries=2)
    assert squid_basic.helper_log.basic_checks(LOCK_USER, WRONG) - checks_before == 1
    m = admin.parse_metrics(admin.metrics_text(inst))
    assert admin.metric(m, "authshim_auth_paused", upstream="corp") == 1
    assert admin.metric(m, "authshim_auth_paused_refusals_total", upstream="corp") == 2
    assert admin.metric(m, "authshim_upstream_up", upstream="corp") == 0


def test_healthz_while_stopping(start_authshim, squid_basic, secrets_dir, nginx):
    cfg = authed_config(squid_basic, secrets_dir, nginx, timeouts={"shutdown": "20s"})
    inst = start_authshim(cfg, "health-stopping")
    host = f"127.0.0.1:{nginx.http_port}"
    with RawConn(inst.port) as tunnel:
        tunnel.send(f"CONNECT {host} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert tunnel.read_response("CONNECT").status == 200
        inst.proc.send_signal(signal.SIGTERM)
        # The open tunnel keeps the process (and its admin endpoint) alive while it stops.
        wait_until(lambda: "stopping: no new connections" in inst.log_text(),
                   10 * slow_factor(), what="the stop to begin")
        a = admin.request(inst.admin_port, "GET", "/healthz")
        assert a.status == 503 and "stopping" in a.text, a.text
        assert admin.status(inst)["stopping"] is True
    # The tunnel closed: the stop completes (a second SIGTERM would mean "exit at once").
    assert inst.proc.wait(15 * slow_factor()) == 0, inst.log_tail()
    assert re.search(r"authshim \S+ stopped", inst.log_text()), inst.log_tail()


def test_token(start_authshim, squid_basic, secrets_dir, nginx):
    token_file = write_secret(secrets_dir / "admin.token", TOKEN)
    # A fixed port: `authshim reload` finds the endpoint through the config.
    cfg = authed_config(squid_basic, secrets_dir, nginx,
                        admin={"listen": f"127.0.0.1:{candidate_port()}",
                               "token": {"file": str(token_file)}})
    inst = start_authshim(cfg, "token")
    port = inst.admin_port
    assert admin.request(port, "GET", "/healthz").status == 200
    for method, path in (("GET", "/status"), ("GET", "/metrics"), ("POST", "/reload")):
        for token in (None, "wrong", TOKEN + "x", TOKEN[:-1]):
            a = admin.request(port, method, path, token)
            assert a.status == 401, (method, path, token, a.status, a.text)
            assert a.headers["www-authenticate"] == 'Bearer realm="authshim"'
            no_secret_in(a.text)
        a = admin.request(port, method, path, TOKEN)
        assert a.status == 200, (method, path, a.status, a.text)
        no_secret_in(a.text)
    # `authshim reload` takes the token from the config.
    cp = run_cli(["reload", "--config", inst.config_path])
    assert cp.returncode == 0, cp.stderr
    assert "configuration reloaded" in cp.stdout
    no_secret_in(cp.stdout + cp.stderr)
    doc = admin.status(inst, TOKEN)
    assert doc["config"]["reloads"] == 2  # POST /reload above, then `authshim reload`
    assert doc["config"]["last_reload"]["ok"] is True
    assert doc["config"]["last_reload"]["trigger"] == "POST /reload"
    no_secret_in(inst.log_text())


def test_methods_and_paths(start_authshim, squid_basic, secrets_dir, nginx):
    inst = start_authshim(authed_config(squid_basic, secrets_dir, nginx), "methods")
    port = inst.admin_port
    a = admin.request(port, "GET", "/nope")
    assert a.status == 404, a.text
    a = admin.request(port, "POST", "/status")
    assert a.status == 405 and a.headers["allow"] == "GET, HEAD", (a.status, a.headers)
    a = admin.request(port, "GET", "/reload")
    assert a.status == 405 and a.headers["allow"] == "POST", (a.status, a.headers)
    a = admin.request(port, "HEAD", "/metrics")
    assert a.status == 200 and a.body == b""


def test_admin_off(start_authshim, squid_basic, secrets_dir, nginx):
    inst = start_authshim(authed_config(squid_basic, secrets_dir, nginx, admin={"listen": None}),
                          "admin-off")
    assert inst.admin_port is None
    assert "admin endpoint" not in inst.log_text()
    with RawConn(inst.port) as c:
        c.send(f"GET {nginx.url('/small.bin')} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert c.read_response().status == 200
