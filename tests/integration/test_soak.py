"""Soak (issue 7, item 5): mixed load with injected upstream faults for AUTHSHIM_SOAK_SECONDS
(default 120; the 30-minute run sets 1800), release build only (sanitizers inflate memory).

Two authshim instances run side by side:
- "main", in front of a real Squid demanding Basic (basic_ncsa_auth) with nginx (HTTP and TLS)
  and the Python upload origin behind it, carries: keep-alive GETs (1 KB and 256 KB, checked
  byte for byte), one request per new connection (GET and HEAD), POST uploads of 1-200 KB
  (Content-Length and chunked, checked by the origin's sha256), CONNECT tunnels with TLS to
  nginx (three GETs each), and clients that go away mid-response (plain close or reset);
- "faults", in front of a scripted fake upstream, gets requests that each pick a fault: a
  reset before the head (502), a garbage head (502), no answer within
  timeouts.upstream_response (504), a Content-Length body cut by FIN and a chunked body cut by
  RST (the client sees the body short), a pooled connection closed when the next request
  arrives (the GET goes again: 200), between plain 200s.

Every 10 s the VmRSS and the open descriptors (/proc/PID/fd) of both are sampled. After the
warm-up (the first 30 s; a quarter of shorter runs) no sample may exceed the first sample
after it by more than 10 %, plus an absolute slack for small numbers: 1024 kB of RSS (allocator
and page granularity on a ~10 MB process) and 2 descriptors per concurrent client (each one in
flight holds a client and an upstream socket, so the count moves with the load at the instant
of sampling). Both processes must stay alive, every non-faulted request must succeed, every
fault must give its expected outcome, and at the end SIGTERM must end each with exit code 0
and no error-level or sanitizer line in its log. The samples table is printed (and written as
JSON to AUTHSHIM_SOAK_REPORT when set). The module ends within AUTHSHIM_SOAK_SECONDS + 60 s.
AUTHSHIM_SOAK_PAUSE (seconds, default 0) slows each main-instance client down.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import ssl
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from harness import admin, secrets
from harness.authshim import SANITIZER_MARKERS, make_config
from harness.client import ConnectionClosed, RawConn
from harness.fakes import abort
from harness.secrets import write_secret
from harness.squid import squid_available
from harness.squid_auth import basic_squid

MODULE_START = time.monotonic()
pytestmark = [pytest.mark.release_only,
              pytest.mark.skipif(not squid_available(), reason="squid is not installed")]

SOAK_SECONDS = float(os.environ.get("AUTHSHIM_SOAK_SECONDS", "120"))
SAMPLE_EVERY = 10.0
WARMUP = min(30.0, SOAK_SECONDS / 4)
GROWTH = 0.10
RSS_SLACK_KB = 1024
USER = "soak-user"
PASSWORD = "Soak-pw-5Tr9!"
OP_TIMEOUT = 15.0  # socket timeout of one client operation
# Seconds each main-instance client waits between its requests (0: flat out), to leave CPU to
# neighbours when the soak runs beside other work.
PAUSE = float(os.environ.get("AUTHSHIM_SOAK_PAUSE", "0"))

# Client threads against each instance (the descriptor slack is 2 per concurrent client).
MAIN_WORKERS = {"keepalive_get": 2, "new_connection": 1, "post_upload": 1, "connect_tls": 1,
                "client_abort": 1}
FAULT_WORKERS = 1


# ---------------------------------------------------------------------------------------------
# The fault-injecting upstream


FAULT_BODY = random.Random(11).randbytes(2048)
CUT_BODY = random.Random(12).randbytes(64 * 1024)


def fault_script():
    doomed: set[int] = set()  # connections whose next request is read and left unanswered

    def script(up, conn, req) -> bool:
        if req.connection in doomed:
            return False
        case = req.target.split("/")[3]
        ok = (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(FAULT_BODY)) + FAULT_BODY
        if case in ("ok", "stale-hit"):
            conn.sendall(ok)
            return True
        if case == "stale-arm":
            conn.sendall(ok)
            doomed.add(req.connection)
            return True
        if case == "reset":
            abort(conn)
            return False
        if case == "garbage":
            conn.sendall(b"\x16\x03\x01 not a response at all\r\n\r\n")
        elif case == "cut-fin":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(CUT_BODY)
                         + CUT_BODY[:20_000])
            return False
        elif case == "cut-rst-chunked":
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + b"%x\r\n" % 20_000 + CUT_BODY[:20_000] + b"\r\n")
            time.sleep(0.02)
            abort(conn)
            return False
        # garbage and timeout: hold the connection until authshim gives up on it
        try:
            while up._recv(conn):
                pass
        except OSError:
            pass
        return False

    return script


# (path, expected outcome): "200" with FAULT_BODY, "502", "504", "cut" (ConnectionClosed
# while reading the body). None: not a fault.
FAULT_CYCLE = [("ok", None), ("reset", "502"), ("ok", None), ("garbage", "502"),
               ("stale-arm", None), ("stale-hit", "200"), ("cut-fin", "cut"), ("ok", None),
               ("cut-rst-chunked", "cut"), ("ok", None), ("timeout", "504")]


# ---------------------------------------------------------------------------------------------
# Bookkeeping


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = Counter()
        self.errors = Counter()
        self.faults = Counter()
        self.fault_mismatches = Counter()
        self.examples: list[str] = []

    def record(self, kind: str, good: bool, detail: str = ""):
        with self.lock:
            (self.ok if good else self.errors)[kind] += 1
            if not good and len(self.examples) < 20:
                self.examples.append(f"{kind}: {detail}")

    def fault(self, kind: str, good: bool, detail: str = ""):
        with self.lock:
            (self.faults if good else self.fault_mismatches)[kind] += 1
            if not good and len(self.examples) < 20:
                self.examples.append(f"fault {kind}: {detail}")

    def totals(self) -> tuple[int, int, int, int]:
        with self.lock:
            return (sum(self.ok.values()), sum(self.errors.values()), sum(self.faults.values()),
                    sum(self.fault_mismatches.values()))


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise KeyError("VmRSS")


def log_texts(inst):
    """stderr and every log file of `inst`, rotated ones included."""
    yield inst.proc.stderr_text()
    if inst.log_file() is not None:
        for path in sorted(inst.dir.glob(inst.log_file().stem + "*")):
            yield path.read_text(errors="replace")


# ---------------------------------------------------------------------------------------------
# Client loops (each runs until `stop` is set)


def _get(c: RawConn, target: str, host: str, method: str = "GET"):
    c.send(f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return c.read_response(method, timeout=OP_TIMEOUT)


def keepalive_get(port, env, tally, stop, rng):
    host = f"127.0.0.1:{env['nginx'].http_port}"
    files = [env["nginx"].files["small.bin"], env["nginx"].files["medium.bin"]]
    data = {f.name: f.path.read_bytes() for f in files}
    conn = None
    while not stop.wait(PAUSE):
        f = rng.choice(files)
        try:
            if conn is None:
                conn = RawConn(port, timeout=OP_TIMEOUT)
            r = _get(conn, f"http://{host}/{f.name}", host)
            good = r.status == 200 and r.body == data[f.name]
            tally.record("keepalive_get", good, f"{r.status} {len(r.body)} bytes")
            if (r.header("Connection") or "").lower() == "close":
                conn.close()
                conn = None
        except Exception as e:  # noqa: BLE001 - counted
            tally.record("keepalive_get", False, repr(e))
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()


def new_connection(port, env, tally, stop, rng):
    host = f"127.0.0.1:{env['nginx'].http_port}"
    small = env["nginx"].files["small.bin"].path.read_bytes()
    medium = env["nginx"].files["medium.bin"]
    n = 0
    while not stop.wait(PAUSE):
        n += 1
        try:
            with RawConn(port, timeout=OP_TIMEOUT) as c:
                if n % 3 == 0:
                    r = _get(c, f"http://{host}/medium.bin", host, "HEAD")
                    good = (r.status == 200 and not r.body
                            and r.header("Content-Length") == str(medium.size))
                    tally.record("head", good, r.describe()[:200])
                else:
                    r = _get(c, f"http://{host}/small.bin", host)
                    tally.record("new_connection_get", r.status == 200 and r.body == small,
                                 r.describe()[:200])
        except Exception as e:  # noqa: BLE001 - counted
            tally.record("head" if n % 3 == 0 else "new_connection_get", False, repr(e))


def post_upload(port, env, tally, stop, rng):
    origin = env["pyorigin"]
    host = f"127.0.0.1:{origin.port}"
    conn = None
    n = 0
    while not stop.wait(PAUSE):
        n += 1
        body = rng.randbytes(rng.randint(1, 200 * 1024))
        chunked = n % 2 == 0
        head = f"POST http://{host}/upload/{n} HTTP/1.1\r\nHost: {host}\r\n"
        if chunked:
            head += "Transfer-Encoding: chunked\r\n\r\n"
            payload = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 16384]), body[i:i + 16384])
                               for i in range(0, len(body), 16384)) + b"0\r\n\r\n"
        else:
            head += f"Content-Length: {len(body)}\r\n\r\n"
            payload = body
        try:
            if conn is None:
                conn = RawConn(port, timeout=OP_TIMEOUT)
            conn.send(head.encode() + payload)
            r = conn.read_response(timeout=OP_TIMEOUT)
            doc = json.loads(r.body) if r.status == 200 else {}
            good = (doc.get("bytes") == len(body)
                    and doc.get("sha256") == hashlib.sha256(body).hexdigest())
            tally.record("post_upload", good, r.describe()[:200])
            if not good or (r.header("Connection") or "").lower() == "close":
                conn.close()
                conn = None
        except Exception as e:  # noqa: BLE001 - counted
            tally.record("post_upload", False, repr(e))
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()


def connect_tls(port, env, tally, stop, rng):
    nginx = env["nginx"]
    ctx = ssl.create_default_context(cafile=str(nginx.cert))
    small = nginx.files["small.bin"].path.read_bytes()
    target = f"127.0.0.1:{nginx.tls_port}"
    while not stop.wait(PAUSE):
        c = None
        try:
            c = RawConn(port, timeout=OP_TIMEOUT)
            c.send(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            r = c.read_response("CONNECT", timeout=OP_TIMEOUT)
            if r.status != 200:
                tally.record("connect_tls", False, r.describe()[:200])
                continue
            c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
            good = True
            for _ in range(3):
                r = _get(c, "/small.bin", f"localhost:{nginx.tls_port}")
                good = good and r.status == 200 and r.body == small
            tally.record("connect_tls", good, r.describe()[:200])
        except Exception as e:  # noqa: BLE001 - counted
            tally.record("connect_tls", False, repr(e))
        finally:
            if c is not None:
                c.close()


def client_abort(port, env, tally, stop, rng):
    """Asks for 256 KB and goes away after the head and a few KB: a plain close or a reset."""
    host = f"127.0.0.1:{env['nginx'].http_port}"
    n = 0
    while not stop.is_set():
        n += 1
        try:
            c = RawConn(port, timeout=OP_TIMEOUT)
            c.send(f"GET http://{host}/medium.bin HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            deadline = time.monotonic() + OP_TIMEOUT
            while b"\r\n\r\n" not in c.buf or len(c.buf) < 8192:
                if not c._fill(deadline):
                    break
            good = bytes(c.buf).startswith(b"HTTP/1.1 200 ")
            if n % 2:
                abort(c.sock)
            c.close()
            tally.record("client_abort", good, bytes(c.buf[:100]).decode("latin-1"))
        except Exception as e:  # noqa: BLE001 - counted
            tally.record("client_abort", False, repr(e))
        stop.wait(0.05)


def fault_loop(port, env, tally, stop, rng):
    conn = None
    i = 0
    while not stop.is_set():
        case, expected = FAULT_CYCLE[i % len(FAULT_CYCLE)]
        i += 1
        outcome = ""
        try:
            if conn is None:
                conn = RawConn(port, timeout=OP_TIMEOUT)
            try:
                r = _get(conn, f"http://fault.test/{case}/{i}", "fault.test")
                outcome = str(r.status) if r.body == FAULT_BODY or r.status != 200 else "200-bad"
                closes = (r.header("Connection") or "").lower() == "close"
            except ConnectionClosed:
                outcome, closes = "cut", True
            if closes:
                conn.close()
                conn = None
        except Exception as e:  # noqa: BLE001 - counted
            outcome = repr(e)
            if conn is not None:
                conn.close()
            conn = None
        if expected is None:
            tally.record(f"fault_path_{case}", outcome == "200", outcome)
        else:
            tally.fault(case, outcome == expected, f"expected {expected}, got {outcome}")


# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def soak_env(tmp_root, nginx, pyorigin, fakes_module, start_authshim_module, secrets_dir):
    nginx.add_file("small.bin", 1024)
    nginx.add_file("medium.bin", 256 * 1024)
    secrets.register(USER, PASSWORD)
    with basic_squid(tmp_root, "squid-soak", {USER: PASSWORD},
                     options=["casesensitive on", "credentialsttl 5 minutes"]) as squid:
        pw = write_secret(secrets_dir / "soak.pw", PASSWORD)
        main = start_authshim_module(make_config(
            squid.address, upstream_name="corp",
            upstreams=[{"name": "corp", "address": squid.address, "credentials": "machine",
                        "schemes": ["basic"]}],
            credentials={"machine": {"username": USER, "password": {"file": str(pw)}}},
            access={"connect_ports": [443, nginx.tls_port]},
            # trace, as every instance with credentials (the secrets scan reads it), into a
            # file that rotates at 10 MB x 5, so the output stays bounded however long it runs
            log={"level": "trace", "file": "authshim.log"}), "soak-main")
        fake = fakes_module.scripted(fault_script(), "soak-faults")
        faults = start_authshim_module(make_config(
            fake.address, upstream_name="faulty",
            timeouts={"upstream_response": "1s", "connect": "2s"},
            log={"level": "info"}), "soak-faults")
        yield {"nginx": nginx, "pyorigin": pyorigin, "squid": squid, "main": main,
               "faults": faults}


def test_soak(soak_env, capsys):
    main, faults = soak_env["main"], soak_env["faults"]
    tally = Tally()
    stop = threading.Event()
    loops = {"keepalive_get": keepalive_get, "new_connection": new_connection,
             "post_upload": post_upload, "connect_tls": connect_tls,
             "client_abort": client_abort}
    threads = []
    seed = 0
    for name, count in MAIN_WORKERS.items():
        for _ in range(count):
            seed += 1
            threads.append(threading.Thread(
                target=loops[name], args=(main.port, soak_env, tally, stop, random.Random(seed)),
                name=f"soak-{name}", daemon=True))
    for _ in range(FAULT_WORKERS):
        seed += 1
        threads.append(threading.Thread(
            target=fault_loop, args=(faults.port, soak_env, tally, stop, random.Random(seed)),
            name="soak-faults", daemon=True))

    samples = []  # (t, main rss, main fds, faults rss, faults fds, ok, errors, faults, mismatches)
    dead = []

    def sample(t):
        row = [round(t)]
        for inst in (main, faults):
            if not inst.proc.running():
                dead.append(f"{inst.name} exited with {inst.proc.poll()} at {t:.0f}s")
                row += [None, None]
                continue
            row += [rss_kb(inst.pid), fd_count(inst.pid)]
        row += list(tally.totals())
        samples.append(tuple(row))

    t0 = time.monotonic()
    for t in threads:
        t.start()
    next_sample = 0.0
    while True:
        now = time.monotonic() - t0
        if now >= next_sample:
            sample(now)
            next_sample += SAMPLE_EVERY
            if dead:
                break
        if now >= SOAK_SECONDS:
            break
        time.sleep(min(0.5, max(0.0, next_sample - now)))
    if not dead and samples[-1][0] < round(time.monotonic() - t0):
        sample(time.monotonic() - t0)
    stop.set()
    for t in threads:
        t.join(OP_TIMEOUT + 5)
    stuck = [t.name for t in threads if t.is_alive()]
    served = {inst.name: admin.status(inst)["clients"]["requests"] for inst in (main, faults)
              if inst.proc.running()}

    # The end: SIGTERM, exit code 0, no error or sanitizer lines.
    ends = {}
    for inst in (main, faults):
        status, took, killed = inst.stop()
        ends[inst.name] = (status, round(took, 2), killed)
    log_problems = []
    for inst in (main, faults):
        for text in log_texts(inst):
            log_problems += [f"{inst.name}: {m}" for m in SANITIZER_MARKERS if m in text]
            log_problems += [f"{inst.name}: {l}" for l in text.splitlines()
                             if " error " in l or " critical " in l][:5]

    header = ("   t s | main RSS kB | main fds | faults RSS kB | faults fds |   ok req | errors "
              "| faults ok | fault mismatches")
    lines = [header] + [
        f"{s[0]:>7} | {s[1]!s:>11} | {s[2]!s:>8} | {s[3]!s:>13} | {s[4]!s:>10} | {s[5]:>8} | "
        f"{s[6]:>6} | {s[7]:>9} | {s[8]:>16}" for s in samples]
    summary = (f"soak {SOAK_SECONDS:g}s (warm-up {WARMUP:g}s): ok {dict(tally.ok)}; "
               f"errors {dict(tally.errors)}; faults injected {dict(tally.faults)}; fault "
               f"mismatches {dict(tally.fault_mismatches)}; requests counted by authshim "
               f"{served}; SIGTERM (exit, s, killed) {ends}")
    with capsys.disabled():
        print("\n" + "\n".join(lines) + "\n" + summary)
    report = os.environ.get("AUTHSHIM_SOAK_REPORT")
    if report:
        Path(report).write_text(json.dumps({
            "seconds": SOAK_SECONDS, "warmup": WARMUP, "columns": header.split("|"),
            "samples": samples, "ok": tally.ok, "errors": tally.errors, "faults": tally.faults,
            "fault_mismatches": tally.fault_mismatches, "served": served, "ends": ends,
            "examples": tally.examples}, indent=1))

    assert not dead, dead
    assert not stuck, f"client threads still running: {stuck}"
    assert all(e == (0, e[1], False) for e in ends.values()), f"SIGTERM: {ends}"
    assert not log_problems, log_problems
    assert not tally.errors, f"failed non-faulted requests: {dict(tally.errors)}\n" \
                             + "\n".join(tally.examples)
    assert not tally.fault_mismatches, f"faults with an unexpected outcome: " \
                                       f"{dict(tally.fault_mismatches)}\n" + "\n".join(tally.examples)
    for kind in ("keepalive_get", "new_connection_get", "head", "post_upload", "connect_tls",
                 "client_abort", "fault_path_ok"):
        assert tally.ok[kind] >= 5, f"only {tally.ok[kind]} {kind} requests: no real load"
    for case, expected in FAULT_CYCLE:
        if expected:
            assert tally.faults[case] >= 2, f"fault {case} injected {tally.faults[case]} times"

    # Growth after the warm-up.
    after = [s for s in samples if s[0] >= WARMUP]
    assert len(after) >= 2, f"too few samples after the warm-up: {samples}"
    base = after[0]
    main_clients, fault_clients = sum(MAIN_WORKERS.values()), FAULT_WORKERS
    growth = []
    for col, what, slack in ((1, "main RSS", RSS_SLACK_KB), (2, "main fds", 2 * main_clients),
                             (3, "faults RSS", RSS_SLACK_KB), (4, "faults fds", 2 * fault_clients)):
        limit = base[col] * (1 + GROWTH) + slack
        worst = max(after, key=lambda s: s[col])
        if worst[col] > limit:
            growth.append(f"{what}: {worst[col]} at {worst[0]}s > {limit:.0f} "
                          f"(base {base[col]} at {base[0]}s + 10 % + {slack})")
    assert not growth, "; ".join(growth)
    took = time.monotonic() - MODULE_START
    assert took <= SOAK_SECONDS + 60, f"the soak module took {took:.0f}s"
