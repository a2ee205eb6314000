"""Hostile clients (issue 7, item 3), each against the real authshim binary:

- slowloris: clients that trickle their request head a byte every 0.5 s are cut at
  timeouts.client_header (408, then closed), while other clients are served;
- a flood of 10,000 concurrent connections with limits.max_connections = 1000: the 9,000 over
  the limit get 503 and are closed, the 1,000 under it are served, the 503s are logged as one
  line plus a count every few seconds (not 9,000 lines), and the process serves new clients
  afterwards;
- the open-file limit: raised from the soft to the hard limit at start; with a hard limit far
  below limits.max_connections, running out of descriptors (EMFILE) pauses accepts: one warning
  when it begins, one with the count of failed attempts when accepts work again (the count is
  bounded by the back-off: no spinning), and then clients are served again;
- loops: requests and CONNECTs aimed at authshim's own listen address and at its admin address
  (also once a reload has moved it), in the spellings a resolver accepts, and requests that
  already carry authshim's Via token are refused with 508 Loop Detected (RFC 5842 §7.2, in the
  IANA status registry: the request is well-formed, so 400 would blame the wrong thing; 508
  tells an operator at once what happened); a recording upstream receives 0 bytes;
- clients from an address outside access.clients: the test creates a network namespace and a
  veth pair, authshim listens on the host side, a client inside the namespace is refused (403
  and closed, 0 bytes upstream) unless access.clients names it; and the default configuration
  listens on loopback only, so from outside its namespace nothing of it is reachable.

CONNECT to a port outside access.connect_ports (403) is in test_connect.py."""

from __future__ import annotations

import ctypes
import json
import os
import re
import resource
import secrets as pysecrets
import select
import selectors
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness import admin
from harness.authshim import make_config, run_cli
from harness.client import RawConn, raw_request
from harness.util import LOOPBACK, candidate_port, slow_factor, wait_until

GET = b"GET http://origin.test/x HTTP/1.1\r\nHost: origin.test\r\n\r\n"


def _fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _clients(inst) -> dict:
    return admin.status(inst)["clients"]


# ---------------------------------------------------------------------------------------------
# slowloris

CLIENT_HEADER = 2.0
TRICKLERS = 20


def _trickle(trickling: list, quiet: list, head: bytes, until: float, out: dict):
    """Sends one byte of `head` on every open `trickling` socket each 0.5 s (nothing on the
    `quiet` ones); records per socket what came back and when it was closed (EOF or reset)."""
    state = {s: {"sent": 0, "data": b"", "closed_at": None} for s in trickling + quiet}
    out.update(state)
    open_socks = trickling + quiet
    next_byte = time.monotonic()
    while open_socks and time.monotonic() < until:
        if time.monotonic() >= next_byte:
            for s in (s for s in open_socks if s in trickling):
                st = state[s]
                if st["sent"] < len(head):
                    try:
                        s.send(head[st["sent"]:st["sent"] + 1])
                        st["sent"] += 1
                    except OSError:
                        pass  # closed by the peer: the read below sees it
            next_byte += 0.5
        ready, _, _ = select.select(open_socks, [], [], 0.05)
        for s in ready:
            try:
                chunk = s.recv(65536)
            except OSError:
                chunk = b""
            if chunk:
                state[s]["data"] += chunk
            else:
                state[s]["closed_at"] = time.monotonic()
                open_socks.remove(s)


def test_slowloris_cut_at_client_header(start_authshim, fakes):
    up = fakes.answering()
    shim = start_authshim(make_config(up.address, timeouts={"client_header": f"{CLIENT_HEADER:g}s"}),
                          "slowloris")
    # 300 bytes at 2 bytes a second would take 150 s: only the deadline can end it sooner.
    head = b"GET http://origin.test/slow HTTP/1.1\r\nHost: origin.test\r\nX-Pad: " + b"a" * 240 + \
        b"\r\n\r\n"
    socks = [socket.create_connection((LOOPBACK, shim.port)) for _ in range(TRICKLERS)]
    idle = socket.create_connection((LOOPBACK, shim.port))  # sends nothing at all
    opened = time.monotonic()
    bound = CLIENT_HEADER + 3.0 * slow_factor()  # the deadline plus time to answer and close
    state: dict = {}
    t = threading.Thread(target=_trickle, args=(socks, [idle], head, opened + 30, state))
    t.start()
    try:
        # Other clients are served meanwhile (each on a new connection).
        served = []
        while time.monotonic() < opened + CLIENT_HEADER + 0.5:
            resp, _ = raw_request(shim.port, GET, timeout=10 * slow_factor())
            served.append((time.monotonic(), resp.status))
        assert served and all(s == 200 for _, s in served), served
        assert any(at < opened + CLIENT_HEADER for at, _ in served), \
            "no other client was served while the tricklers were connected"
    finally:
        t.join()
        for s in socks + [idle]:
            s.close()
    for i, s in enumerate(socks):
        st = state[s]
        assert st["closed_at"] is not None, f"trickler {i} still open after 30 s: {st}"
        took = st["closed_at"] - opened
        assert CLIENT_HEADER - 0.2 <= took <= bound, f"trickler {i} closed after {took:.2f}s"
        assert st["sent"] < len(head), f"trickler {i} completed its head: {st}"
        assert st["data"].startswith(b"HTTP/1.1 408 "), st["data"][:200]
        assert b"timeouts.client_header" in st["data"], st["data"]
    st = state[idle]
    assert st["closed_at"] is not None and st["closed_at"] - opened <= bound, st
    assert st["data"] == b"", f"an idle connection is closed quietly: {st['data'][:200]!r}"
    assert up.recorded() and all(r.target == "http://origin.test/x" for r in up.recorded())


# ---------------------------------------------------------------------------------------------
# 10,000 connections, limits.max_connections = 1000

FLOOD = 10_000
LIMIT = 1_000
SAMPLE = 50
_IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def _raise_own_nofile(wanted: int):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(hard, wanted)))
    except (ValueError, OSError) as e:
        pytest.skip(f"cannot raise this test's open-file limit to {wanted} (soft {soft}, hard "
                    f"{hard}): {e}")


def _flood_socket(port: int, i: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    # Spread over 127.0.0.2-201: 50 connections per source address, so that the ephemeral ports
    # (and the TIME_WAIT entries the 503s leave) never run short.
    s.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
    s.bind((f"127.0.0.{2 + i % 200}", 0))
    s.connect_ex((LOOPBACK, port))
    return s


def _limit_lines(text: str) -> list[str]:
    return [l for l in text.splitlines() if "limits.max_connections = " in l and "503" in l]


def test_ten_thousand_connections(start_authshim, fakes):
    _raise_own_nofile(FLOOD + 2000)
    up = fakes.answering()
    shim = start_authshim(make_config(up.address, limits={"max_connections": LIMIT},
                                      timeouts={"client_header": "120s"}), "flood")
    sel = selectors.DefaultSelector()
    socks = []
    got: dict[socket.socket, bytearray] = {}
    eof: set = set()
    t0 = time.monotonic()
    try:
        for i in range(FLOOD):
            s = _flood_socket(shim.port, i)
            socks.append(s)
            got[s] = bytearray()
            sel.register(s, selectors.EVENT_READ)
        # Read until the 9,000 over the limit have their 503 and EOF and nothing moves for 2 s.
        deadline = t0 + 120 * slow_factor()
        last_event = time.monotonic()
        while time.monotonic() < deadline:
            events = sel.select(timeout=0.2)
            for key, _ in events:
                s = key.fileobj
                try:
                    chunk = s.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:  # reset (or a connect that failed): no 503 on it, see below
                    chunk = b""
                if chunk:
                    got[s] += chunk
                else:
                    eof.add(s)
                    sel.unregister(s)
            if events:
                last_event = time.monotonic()
            elif len(eof) >= FLOOD - LIMIT and time.monotonic() - last_event > 2.0:
                break
        flood_took = time.monotonic() - t0
        peak_fds, rss_kb = _fd_count(shim.pid), _status_kb(shim.pid, "VmRSS")

        rejected = [s for s in socks if s in eof]
        held = [s for s in socks if s not in eof]
        assert len(rejected) == FLOOD - LIMIT and len(held) == LIMIT, \
            (len(rejected), len(held), flood_took)
        bad = [bytes(got[s][:120]) for s in rejected if not got[s].startswith(b"HTTP/1.1 503 ")]
        assert not bad, f"{len(bad)} closed without a 503, e.g. {bad[:3]}"
        assert b"limits.max_connections" in got[rejected[0]], got[rejected[0]]
        assert not any(got[s] for s in held), "a connection under the limit got bytes unasked"
        c = _clients(shim)
        assert c["connections_active"] == LIMIT, c
        assert c["connections_accepted"] == FLOOD, c
        assert c["connections_rejected_limit"] == FLOOD - LIMIT, c

        # While the 1,000 are held, one more client is over the limit too.
        resp, closed = raw_request(shim.port, GET, timeout=10 * slow_factor(), check_close=True)
        assert resp.status == 503 and closed, resp.describe()

        # The connections under the limit are served: a request on a sample of them.
        sample = held[::LIMIT // SAMPLE]
        answers: dict[socket.socket, bytearray] = {}
        for s in sample:
            s.sendall(GET)
            answers[s] = bytearray()
        pending = set(sample)
        answer_deadline = time.monotonic() + 30 * slow_factor()
        while pending and time.monotonic() < answer_deadline:
            for key, _ in sel.select(timeout=0.2):
                s = key.fileobj
                if s not in pending:
                    continue
                try:
                    answers[s] += s.recv(65536)
                except BlockingIOError:
                    continue
                if answers[s].endswith(up.body):
                    pending.discard(s)
        assert not pending, f"{len(pending)} of {len(sample)} sampled connections not answered"
        assert all(a.startswith(b"HTTP/1.1 200 ") for a in answers.values()), \
            [bytes(a[:100]) for a in answers.values() if not a.startswith(b"HTTP/1.1 200 ")][:3]
        assert len(up.recorded()) == len(sample)
    finally:
        sel.close()
        for s in socks:
            s.close()

    # After the flood the process serves new clients.
    wait_until(lambda: _clients(shim)["connections_active"] == 0, 30 * slow_factor(),
               what="the held connections to end")
    resp, _ = raw_request(shim.port, GET, timeout=10 * slow_factor())
    assert resp.status == 200 and resp.body == up.body, resp.describe()

    # 9,001 answers 503 (the flood and the one extra): per episode, one line when it begins and
    # one count per 5 s while it lasts.
    rejected_total = FLOOD - LIMIT + 1

    def counted():
        lines = _limit_lines(shim.log_text())
        firsts = sum("answering 503 to new connections" in l for l in lines)
        counts = [int(m.group(1)) for l in lines for m in [re.search(r"answered 503 to (\d+)", l)]
                  if m]
        return lines if firsts + sum(counts) == rejected_total else None

    lines = wait_until(counted, 20 * slow_factor(), what="the 503 count in the log")
    elapsed = time.monotonic() - t0
    assert len(lines) <= 4 + elapsed / 5, lines
    print(f"\nflood: {FLOOD} connections, limit {LIMIT}: all answered in {flood_took:.1f}s; "
          f"authshim at the peak: {peak_fds} fds, VmRSS {rss_kb} kB, VmHWM "
          f"{_status_kb(shim.pid, 'VmHWM')} kB; {len(lines)} log lines for {rejected_total} 503s")


# ---------------------------------------------------------------------------------------------
# open-file limit and EMFILE

def test_open_file_limit_raised_to_hard_limit(start_authshim, fakes):
    up = fakes.answering()
    shim = start_authshim(make_config(up.address, limits={"max_connections": 1000}), "nofile",
                          preexec=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 4096)))
    limits = Path(f"/proc/{shim.pid}/limits").read_text()
    row = next(l for l in limits.splitlines() if l.startswith("Max open files"))
    assert row.split()[3:5] == ["4096", "4096"], row
    assert "open-file limit raised from 256 to 4096 (the hard limit)" in shim.log_text()
    assert "is below what limits.max_connections" not in shim.log_text()


EMFILE_HARD = 40


@pytest.mark.release_only
def test_out_of_descriptors_pauses_accepts(start_authshim, fakes):
    """Release build only: with every descriptor taken, UBSan's vptr check cannot work (it
    tests memory with a pipe(), which fails with EMFILE, and then reports a valid object as
    "invalid vptr"; shown with a 15-line program under GCC 12), so the sanitized build would
    report errors that are not there."""
    up = fakes.answering()
    shim = start_authshim(
        make_config(up.address, limits={"max_connections": 1000}, timeouts={"client_header": "120s"}),
        "emfile", preexec=lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                                     (EMFILE_HARD, EMFILE_HARD)))
    assert "the open-file limit (40) is below what limits.max_connections (1000)" in \
        shim.log_text(), shim.log_tail()
    conns = []
    try:
        # Three times more connections than descriptors: the kernel completes them in the
        # backlog; authshim accepts until it has none left.
        for _ in range(3 * EMFILE_HARD):
            conns.append(socket.create_connection((LOOPBACK, shim.port), timeout=10))
        wait_until(lambda: _fd_count(shim.pid) >= EMFILE_HARD - 2, 20 * slow_factor(),
                   what="authshim to run out of descriptors")
        wait_until(lambda: "accept failed on" in shim.log_text(), 10 * slow_factor(),
                   what="the accept failure warning")
        time.sleep(1.5)  # ~15 back-off periods: a loop logging per failure would log them all
        failing = shim.log_text()
        assert failing.count("accept failed on") == 1, _accept_lines(failing)
        assert "Too many open files" in failing
    finally:
        for c in conns:
            c.close()
    # Clients gone, descriptors free: accepts work again, and say how many attempts failed.
    line = wait_until(lambda: re.search(r"accepting on \S+ again after (\d+) failed accept "
                                        r"attempt\(s\) over (\d+) ms", shim.log_text()),
                      20 * slow_factor(), what="the accepts-resumed line")
    attempts, ms = int(line.group(1)), int(line.group(2))
    # One attempt per 100 ms back-off: a spinning accept loop would make thousands.
    assert 2 <= attempts <= ms / 100 + 2, (attempts, ms)
    resp, _ = raw_request(shim.port, GET, timeout=20 * slow_factor())
    assert resp.status == 200 and resp.body == up.body, resp.describe()
    assert shim.log_text().count("accept failed on") == 1, _accept_lines(shim.log_text())
    print(f"\nEMFILE: hard limit {EMFILE_HARD}; {attempts} failed accepts over {ms} ms, "
          f"1 warning line + 1 recovery line")


def _accept_lines(text: str) -> list[str]:
    return [l for l in text.splitlines() if "accept" in l][:20]


# ---------------------------------------------------------------------------------------------
# loops: own listen and admin addresses, Via

# Spellings of an own address that resolvers (inet_aton, getaddrinfo) and clients accept.
SELF_HOSTS = ["127.0.0.1", "localhost", "LocalHost", "localhost.", "[::1]", "0.0.0.0", "127.1",
              "2130706433", "0x7f000001", "0177.0.0.1", "0", "[::ffff:127.0.0.1]", "[::]"]


def _loop_request(method: str, authority: str, extra: str = "") -> bytes:
    if method == "CONNECT":
        return f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{extra}\r\n".encode()
    return f"GET http://{authority}/status HTTP/1.1\r\nHost: {authority}\r\n{extra}\r\n".encode()


def _assert_loop_refused(shim, rec, method: str, authority: str, extra: str = ""):
    resp, _ = raw_request(shim.port, _loop_request(method, authority, extra), method,
                          timeout=10 * slow_factor())
    assert resp.status == 508, f"{method} {authority}: {resp.describe()}"
    assert "authshim itself" in resp.text, resp.text
    assert rec.total_bytes == 0, f"{method} {authority}: upstream got {rec.received()[:300]!r}"


@pytest.fixture(scope="module")
def loop_pair(start_authshim_module, fakes_module):
    rec = fakes_module.recording("loop-recorder")
    shim = start_authshim_module(make_config(rec.address, timeouts={"upstream_response": "1s"},
                                             access={"connect_ports": ["1-65535"]}), "loop")
    return shim, rec


@pytest.fixture
def loop_shim(loop_pair):
    loop_pair[1].reset()
    return loop_pair


def test_requests_aimed_at_own_listen_and_admin_addresses_refused(loop_shim):
    shim, rec = loop_shim
    assert shim.admin_port
    before = _clients(shim)["denied"]["loop"]
    for port in (shim.port, shim.admin_port):
        for host in SELF_HOSTS:
            for method in ("GET", "CONNECT"):
                _assert_loop_refused(shim, rec, method, f"{host}:{port}")
    time.sleep(0.3)
    assert rec.total_bytes == 0
    assert _clients(shim)["denied"]["loop"] - before == 2 * 2 * len(SELF_HOSTS)


def test_admin_address_moved_by_reload_is_refused(start_authshim, fakes):
    rec = fakes.recording()
    shim = start_authshim(make_config(rec.address, timeouts={"upstream_response": "1s"},
                                      access={"connect_ports": ["1-65535"]}), "loop-reload")
    old_admin, new_admin = shim.admin_port, candidate_port()
    cfg = json.loads(shim.config_path.read_text())
    cfg["admin"] = {"listen": f"{LOOPBACK}:{new_admin}"}
    shim.config_path.write_text(json.dumps(cfg, indent=2))
    answer = admin.reload(shim)
    assert answer.status == 200 and answer.json()["ok"] is True, answer.text
    shim.admin_port = new_admin
    for host in ("127.0.0.1", "localhost", "[::1]", "0.0.0.0"):
        _assert_loop_refused(shim, rec, "GET", f"{host}:{new_admin}")
        _assert_loop_refused(shim, rec, "CONNECT", f"{host}:{new_admin}")
    # The old admin port is no longer authshim's: it goes upstream like any other address.
    resp, _ = raw_request(shim.port, _loop_request("GET", f"127.0.0.1:{old_admin}"),
                          timeout=10 * slow_factor())
    assert resp.status == 504 and rec.total_bytes > 0, resp.describe()


@pytest.mark.parametrize("via", ["1.1 authshim", "1.0 corp-gw, 1.1 authshim",
                                 "1.1 AUTHSHIM (authshim/0.1)", "HTTP/1.1 authshim",
                                 "1.1 corp-gw\r\nVia: 1.1 authshim"])
def test_request_with_own_via_token_refused(loop_shim, via):
    shim, rec = loop_shim
    for method in ("GET", "CONNECT"):
        target = "origin.test:443" if method == "CONNECT" else "origin.test"
        _assert_loop_refused(shim, rec, method, target, f"Via: {via}\r\n")
    time.sleep(0.3)
    assert rec.total_bytes == 0


def test_via_of_another_proxy_is_forwarded(loop_shim):
    shim, rec = loop_shim
    raw = b"GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\n" \
          b"Via: 1.1 authshim-other, 1.1 corp (authshim)\r\n\r\n"
    resp, _ = raw_request(shim.port, raw, timeout=10 * slow_factor())
    assert resp.status == 504, resp.describe()  # reached the (silent) upstream
    assert b"Via: 1.1 authshim-other, 1.1 corp (authshim)" in rec.received()


def test_loop_through_an_upstream_detected_by_via(start_authshim, fakes):
    """authshim A's upstream is authshim B: B receives A's request carrying `Via: 1.1 authshim`,
    exactly as A would receive its own request back through an upstream that routes to it, and
    refuses it; nothing reaches B's upstream."""
    rec = fakes.recording()
    b = start_authshim(make_config(rec.address, timeouts={"upstream_response": "1s"}), "loop-b")
    a = start_authshim(make_config(f"{LOOPBACK}:{b.port}"), "loop-a")
    resp, _ = raw_request(a.port, GET, timeout=10 * slow_factor())
    assert resp.status == 508 and "authshim itself" in resp.text, resp.describe()
    time.sleep(0.3)
    assert rec.total_bytes == 0, rec.received()[:300]
    assert "it would loop back into authshim" in b.log_text()


# ---------------------------------------------------------------------------------------------
# clients from a non-allowed address: a network namespace and a veth pair

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


class Netns:
    """A network namespace joined to this one by a veth pair: `host_ip` on this side, `ns_ip`
    inside. Unique names per run; removed on close."""

    def __init__(self):
        tag = f"{os.getpid() % 100000}{pysecrets.token_hex(2)}"
        self.name = f"ashtest{tag}"
        self.host_if, self.ns_if = f"ash{tag}h", f"ash{tag}n"
        used = _ip("-4", "-o", "addr").stdout + _ip("-4", "route").stdout
        for _ in range(100):
            a, b = 200 + pysecrets.randbelow(50), pysecrets.randbelow(256)
            if f"10.{a}.{b}." not in used:
                break
        self.host_ip, self.ns_ip = f"10.{a}.{b}.1", f"10.{a}.{b}.2"
        self.created = []

    def create(self):
        _ip("netns", "add", self.name)
        self.created.append(("netns", self.name))
        _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        self.created.append(("link", self.host_if))
        _ip("link", "set", self.ns_if, "netns", self.name)
        _ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        _ip("link", "set", self.host_if, "up")
        self.exec_ip("addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if)
        self.exec_ip("link", "set", self.ns_if, "up")
        self.exec_ip("link", "set", "lo", "up")
        return self

    def exec_ip(self, *args: str):
        _ip("netns", "exec", self.name, "ip", *args)

    def close(self):
        for kind, name in reversed(self.created):
            if kind == "link":
                _ip("link", "del", name, check=False)
            else:
                _ip("netns", "del", name, check=False)

    def enter(self):
        """For preexec: moves the calling (child) process into the namespace."""
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if _libc.setns(fd, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns failed")
        finally:
            os.close(fd)

    def client(self, host: str, port: int, data: bytes, timeout: float = 10.0) -> dict:
        """Connects from inside the namespace, sends `data`, reads until EOF; returns
        {"error": str|None, "data": bytes, "eof": bool}."""
        code = _NS_CLIENT
        cp = subprocess.run(["ip", "netns", "exec", self.name, sys.executable, "-c", code, host,
                             str(port), data.hex(), str(timeout)],
                            capture_output=True, text=True, timeout=timeout + 30)
        assert cp.returncode == 0, cp.stderr
        out = json.loads(cp.stdout)
        out["data"] = bytes.fromhex(out["data"])
        return out


_NS_CLIENT = """
import json, socket, sys, time
host, port, data, timeout = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3]), float(sys.argv[4])
out = {"error": None, "data": b"", "eof": False}
try:
    s = socket.create_connection((host, port), timeout=timeout)
    s.sendall(data)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            out["eof"] = True
            break
        out["data"] += chunk
except OSError as e:
    out["error"] = type(e).__name__ + ": " + str(e)
out["data"] = out["data"].hex()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def netns():
    if shutil.which("ip") is None:
        pytest.skip("the ip tool (iproute2) is not installed")
    ns = Netns()
    try:
        ns.create()
    except subprocess.CalledProcessError as e:
        ns.close()
        pytest.skip(f"cannot create a network namespace and veth pair here (needs root / "
                    f"CAP_NET_ADMIN): {' '.join(e.cmd)}: {e.stderr.strip()}")
    try:
        yield ns
    finally:
        ns.close()


def test_client_outside_access_clients_refused_over_veth(start_authshim, fakes, netns, tmp_root):
    up = fakes.answering()
    listen = [f"{LOOPBACK}:0", f"{netns.host_ip}:0"]
    # Listening beyond loopback with the default access.clients (loopback) is refused at start:
    # never an open proxy by accident.
    cfg_file = tmp_root / "veth-default-access.json"
    cfg_file.write_text(json.dumps(make_config(up.address, access=None, listen=listen)))
    cp = run_cli(["check", "--config", cfg_file])
    assert cp.returncode != 0 and '"access.clients" must be given explicitly' in cp.stderr, \
        (cp.returncode, cp.stdout, cp.stderr)

    shim = start_authshim(make_config(up.address, listen=listen,
                                      access={"clients": ["127.0.0.0/8"]}), "veth-deny")
    veth_port = shim.ports[1]
    out = netns.client(netns.host_ip, veth_port, GET)
    assert out["error"] is None, out
    assert out["data"].startswith(b"HTTP/1.1 403 "), out["data"][:300]
    assert b"access.clients" in out["data"], out["data"]
    assert out["eof"], "the refused connection was not closed"
    time.sleep(0.3)
    assert up.recorded() == [], "a refused client's request went upstream"
    assert _clients(shim)["denied"]["client"] == 1
    assert f"denied client {netns.ns_ip}:" in shim.log_text()
    # The same listener serves an allowed client: from 127.0.0.1 to the veth address.
    with RawConn(veth_port, host=netns.host_ip, source=LOOPBACK) as c:
        c.send(GET)
        resp = c.read_response(timeout=10 * slow_factor())
    assert resp.status == 200 and resp.body == up.body, resp.describe()


def test_client_inside_access_clients_served_over_veth(start_authshim, fakes, netns):
    up = fakes.answering()
    shim = start_authshim(make_config(up.address, listen=[f"{LOOPBACK}:0", f"{netns.host_ip}:0"],
                                      access={"clients": ["127.0.0.0/8", f"{netns.ns_ip}/32"]}),
                          "veth-allow")
    out = netns.client(netns.host_ip, shim.ports[1],
                       GET.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
    assert out["error"] is None and out["data"].startswith(b"HTTP/1.1 200 "), out
    assert out["data"].endswith(up.body), out["data"][-200:]
    assert [r.target for r in up.recorded()] == ["http://origin.test/x"]


def test_default_config_listens_on_loopback_only(start_authshim, netns):
    """authshim with the default listen and admin addresses runs inside the namespace (where
    127.0.0.1:3128 and :3129 are free for sure); from this side, its veth address answers
    neither port, while inside the namespace 127.0.0.1:3128 does."""
    cfg = make_config(f"{LOOPBACK}:9", listen=None, admin=None, access=None)
    shim = start_authshim(cfg, "default-listen", preexec=netns.enter)
    assert shim.port == 3128 and shim.admin_port == 3129, shim.log_tail()
    for port in (3128, 3129):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((netns.ns_ip, port), timeout=5 * slow_factor()).close()
    inside = netns.client(LOOPBACK, 3128, GET)
    assert inside["error"] is None and inside["data"].startswith(b"HTTP/1.1 502 "), inside
    # Every listening socket of the process is bound to 127.0.0.1.
    listening = [l.split()[1] for l in Path(f"/proc/{shim.pid}/net/tcp").read_text().splitlines()[1:]
                 if l.split()[3] == "0A"]
    assert sorted(listening) == ["0100007F:0C38", "0100007F:0C39"], listening
    v6 = Path(f"/proc/{shim.pid}/net/tcp6").read_text().splitlines()[1:]
    assert not [l for l in v6 if l.split()[3] == "0A"], v6
