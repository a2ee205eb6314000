"""Access policy: clients outside access.clients get 403 (on loopback: allow only 127.0.0.2 and
connect from 127.0.0.1 / 127.0.0.2), and requests aimed at authshim's own listen address are
refused without going upstream."""

import time

from harness.authshim import make_config
from harness.client import RawConn
from harness.util import slow_factor

GET = b"GET http://origin.test/x HTTP/1.1\r\nHost: origin.test\r\n\r\n"


def test_client_outside_access_clients_403(start_authshim, fakes):
    up = fakes.answering()
    shim = start_authshim(make_config(up.address, access={"clients": ["127.0.0.2/32"]}), "acl")
    with RawConn(shim.port, source="127.0.0.1") as c:
        c.send_tolerant(GET)
        resp = c.read_response(timeout=10 * slow_factor())
    assert resp.status == 403, resp.describe()
    assert up.recorded() == [], "a denied client's request went upstream"
    with RawConn(shim.port, source="127.0.0.2") as c:
        c.send(GET)
        resp = c.read_response(timeout=10 * slow_factor())
    assert resp.status == 200 and resp.body == up.body, resp.describe()
    assert [q.target for q in up.recorded()] == ["http://origin.test/x"]


def test_request_to_own_listen_address_refused(start_authshim, fakes):
    rec = fakes.recording()
    shim = start_authshim(make_config(rec.address, timeouts={"upstream_response": "3s"},
                                      access={"connect_ports": ["1-65535"]}), "self-loop")
    own = f"127.0.0.1:{shim.port}"
    for method, raw in (("GET", f"GET http://{own}/ HTTP/1.1\r\nHost: {own}\r\n\r\n"),
                        ("GET", f"GET http://{own}/x HTTP/1.1\r\nHost: origin.test\r\n\r\n"),
                        ("CONNECT", f"CONNECT {own} HTTP/1.1\r\nHost: {own}\r\n\r\n")):
        with RawConn(shim.port) as c:
            c.send(raw.encode())
            resp = c.read_response(method, timeout=10 * slow_factor())
        assert 400 <= resp.status <= 599, f"{raw.splitlines()[0]} -> {resp.describe()}"
        time.sleep(0.3)
        assert rec.total_bytes == 0, f"{raw.splitlines()[0]}: upstream received {rec.received()[:300]!r}"
